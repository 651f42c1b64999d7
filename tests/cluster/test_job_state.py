"""State that outlives a job: on a `ray start` cluster, a job submitted with `--working-dir` runs
in Ray's own copy of that folder, which the next job never sees.  A sweep whose state would land
there is refused; with `data_dir` on storage the jobs share, the next job reads what it stored."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.raytools import RAY, RayHead, job_submit

ROOT = Path(__file__).resolve().parents[2]
# the smallest sweep that runs: one XGBoost trial of 5 rounds on one bundled dataset
TUNE = ["tune", "--agent", "xgboost", "--samples", "1", "--rounds", "5", "--concurrent", "1", "--data", "goog"]


class SecretHead(RayHead):
    """A head whose processes hold the keystore passphrase (jobs inherit it from `ray start`;
    it never travels in job arguments)."""

    def __init__(self, passphrase: str) -> None:
        super().__init__(num_cpus=2)
        self.passphrase = passphrase

    def env(self) -> dict[str, str]:
        return {**super().env(), "TW_PASSPHRASE": self.passphrase}

    def client_env(self) -> dict[str, str]:
        env = self.env()
        env.pop("TW_PASSPHRASE")
        return env


@pytest.fixture(scope="module")
def head() -> Iterator[SecretHead]:
    node = SecretHead(secrets.token_urlsafe(16))
    try:
        node.start()
        yield node
    finally:
        node.stop()


def _submit(head: SecretHead, *entrypoint: str) -> subprocess.CompletedProcess[str]:
    return job_submit([RAY, "job", "submit", "--address", head.address, "--working-dir", str(ROOT), "--", *entrypoint],
                      head.client_env(), timeout=400)


def _tw(*args: str) -> list[str]:
    return ["python", "-m", "tinywindow", *args]


def test_a_sweep_writing_into_the_jobs_working_dir_is_refused(head: SecretHead) -> None:
    out = _submit(head, *_tw(*TUNE))
    logs = out.stdout + out.stderr
    assert out.returncode != 0, logs[-3000:]
    assert "ConfigError" in logs and "runtime_resources/working_dir_files/_ray_pkg_" in logs, logs[-3000:]
    assert "storage.allow_ephemeral=true" in logs


def test_state_on_shared_storage_outlives_the_job(head: SecretHead, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    init = _submit(head, *_tw("-s", f"data_dir={shared}", "keys", "init", "--scrypt-log2-n", "10"))
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]

    tune = _submit(head, *_tw("-s", f"data_dir={shared}", *TUNE))
    assert tune.returncode == 0, tune.stdout[-3000:] + tune.stderr[-3000:]
    tuned = shared / "models" / "xgboost" / "tuned.json.twenc"
    assert tuned.is_file()
    experiments = list((shared / "tune").glob("xgboost-*"))
    assert len(experiments) == 1 and list(experiments[0].rglob("progress.csv"))  # Tune's storage_path too

    read = _submit(head, "python", "tests/cluster/job_read_tuned.py", str(shared))  # the next job
    assert read.returncode == 0, read.stdout[-3000:] + read.stderr[-3000:]
    line = next(x for x in read.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["file"] == str(tuned)
    assert set(result["params"]) == {"max_depth", "eta", "subsample", "colsample_bytree", "min_child_weight"}
    assert result["experiment"] == str(experiments[0])
