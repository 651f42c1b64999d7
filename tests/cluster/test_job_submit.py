"""`ray start` + `ray job submit` on this machine: the same code as a job on a running cluster,
with token authentication on for the cluster and the submitting client."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.raytools import RAY, RayHead, job_submit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def head() -> Iterator[RayHead]:
    """A head node of this test's own (``tests.raytools.RayHead``); stopping it stops exactly
    the processes it started (never ``ray stop``)."""
    node = RayHead(num_cpus=2)
    try:
        node.start()
        yield node
    finally:
        node.stop()


def test_a_job_runs_the_library_on_the_cluster_with_token_auth(head: RayHead) -> None:
    out = job_submit([RAY, "job", "submit", "--address", head.address, "--working-dir", str(ROOT), "--",
                      "python", "tests/cluster/job_entry.py"], head.env(), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result == {"rows": 2148, "feature_rows": 5, "nodes": 1, "auth": "token"}


def test_a_client_without_the_token_is_refused(head: RayHead) -> None:
    env = head.env()
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_AUTH_TOKEN_PATH"] = "/nonexistent"
    out = subprocess.run([RAY, "job", "list", "--address", head.address], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0
    assert "Missing authentication token" in out.stdout + out.stderr  # refused, not unreachable
