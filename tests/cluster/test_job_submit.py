"""`ray start` + `ray job submit` on this machine: the same code as a job on a running cluster,
with token authentication on for the cluster and the submitting client."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the venv's python
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="module")
def head() -> Iterator[str]:
    """A head node started with ``ray start --block`` in its own session; stopping the block
    process stops exactly the processes it started (never ``ray stop``)."""
    temp = tempfile.mkdtemp(prefix="twjob-", dir="/tmp")  # Unix socket paths stay short
    dashboard = _free_port()
    proc = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--num-cpus=2", f"--port={_free_port()}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--temp-dir={temp}",
         "--include-dashboard=true"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 90
        while True:
            ok = subprocess.run([RAY, "job", "list", "--address", address], env=_env(),
                                capture_output=True, timeout=30).returncode == 0
            if ok:
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the head node did not come up")
            time.sleep(1)
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_job_runs_the_library_on_the_cluster_with_token_auth(head: str) -> None:
    out = subprocess.run(
        [RAY, "job", "submit", "--address", head, "--working-dir", str(ROOT), "--",
         "python", "tests/cluster/job_entry.py"],
        env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result == {"rows": 2148, "feature_rows": 5, "nodes": 1, "auth": "token"}


def test_a_client_without_the_token_is_refused(head: str) -> None:
    env = _env()
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_AUTH_TOKEN_PATH"] = "/nonexistent"
    out = subprocess.run([RAY, "job", "list", "--address", head], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0
    assert "Missing authentication token" in out.stdout + out.stderr  # refused, not unreachable
