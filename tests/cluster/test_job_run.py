"""`tinywindow run` as a Ray job on a `ray start` cluster with token auth, and `tinywindow
status|stop` attaching to it from other processes.

One small universe (the bundled S&P 500 index, one XGBoost agent on the test budget, half a
year traded, consensus and risk permissive so that it trades), one head of this module's own
holding the secrets in the environment of `ray start` (jobs and actors read them there; they
never travel in job arguments), and one shared absolute ``data_dir``:

1. a backtest job: succeeds, its summary has orders and the ledger digest;
2. a paper job replayed slowly, seen ``running`` by ``tinywindow status --json`` and stopped by
   ``tinywindow stop`` from other processes: the job ends well, with a partial, stopped run;
3. the same paper job again: it resumes after the stopped run's last bar and finishes; every bar
   is traded once, and the ledger equals the backtest's (the same bars and models: backtest and
   paper trade the same ledger), so no order was lost or doubled;
4. a driver attached to the cluster (not a job) stopped by SIGTERM: it exits 0 with a stopped
   run, and no engine is left running.

The tests run in this order and build on each other (step 3 compares with step 1's backtest).
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.raytools import RAY, RayHead, job_submit, poll

ROOT = Path(__file__).resolve().parents[2]
NAME = "jobrun"  # run.name of the job runs
TERM_NAME = "jobterm"  # run.name of the driver stopped by SIGTERM
TRADE_BARS = 124  # the bar times of sp500 in [2015-01-01, 2015-07-01)
SLOW = 86400 * 2  # market seconds per wall second: two daily bars a second, slow enough to attach


class SecretHead(RayHead):
    """A head whose processes hold the keystore passphrase and the serving token (jobs and
    actors inherit them from `ray start`); ``gcs`` is its address for drivers (``ray.init``)."""

    def __init__(self) -> None:
        super().__init__(num_cpus=2)
        self.passphrase = secrets.token_urlsafe(16)
        self.serving_token = secrets.token_urlsafe(32)
        self.gcs = ""

    def env(self) -> dict[str, str]:
        return {**super().env(), "TW_PASSPHRASE": self.passphrase, "TW_SERVING__TOKEN": self.serving_token,
                "TW_NO_PROGRESS": "1", "PYTHONHASHSEED": "0"}

    def client_env(self) -> dict[str, str]:
        """A client shell: token auth and the cluster's address, no secrets."""
        env = self.env()
        env.pop("TW_PASSPHRASE")
        env.pop("TW_SERVING__TOKEN")
        env["RAY_ADDRESS"] = self.gcs
        return env

    def start(self) -> str:
        super().start()
        m = re.search(r"--address='([0-9.]+:\d+)'", self.output())
        assert m, self.output()[-2000:]
        self.gcs = m.group(1)
        return self.address


@pytest.fixture(scope="module")
def head() -> Iterator[SecretHead]:
    node = SecretHead()
    try:
        node.start()
        yield node
    finally:
        node.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def universe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The universe file and the shared, absolute state root every job writes under."""
    tmp = tmp_path_factory.mktemp("jobrun")
    path = tmp / "universe.yaml"
    path.write_text(f"""\
data:
  sources:
    - {{name: sp500, kind: bundled, datasets: [sp500]}}
crypto:
  journal_fsync: false
agents:
  valid_bars: 100
consensus: {{threshold: 0, quorum: 1, max_disagreement: 1}}
risk: {{confidence_floor: 0}}
serving: {{http_port: {_free_port()}, grpc_port: {_free_port()}}}
run:
  name: {NAME}
  agents: [xgboost]
  train: {{end: "2014-01-01"}}
  trade: {{start: "2015-01-01", end: "2015-07-01"}}
  budget: test
  paper: {{speed: {SLOW}, max_inflight: 4}}
""")
    return {"file": path, "data": tmp / "state"}


def _tw(universe: dict[str, Path], *args: str) -> list[str]:
    return ["python", "-m", "tinywindow", "-c", str(universe["file"]), "-s", f"data_dir={universe['data']}", *args]


def _submit(head: SecretHead, *entrypoint: str, submission_id: str | None = None,
            wait: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [RAY, "job", "submit", "--address", head.address, "--working-dir", str(ROOT)]
    if submission_id:
        cmd += ["--submission-id", submission_id]
    if not wait:
        cmd.append("--no-wait")
    return job_submit([*cmd, "--", *entrypoint], head.client_env(), timeout=400)


def _job(head: SecretHead, what: str, job_id: str) -> str:
    out = subprocess.run([RAY, "job", what, "--address", head.address, job_id], env=head.client_env(),
                         capture_output=True, text=True, timeout=120)
    return out.stdout + out.stderr


def _status(head: SecretHead) -> list[dict[str, Any]]:
    """``tinywindow status --json`` from a process of its own (a client shell: no secrets)."""
    out = subprocess.run([sys.executable, "-m", "tinywindow", "status", "--json"], cwd=ROOT, env=head.client_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return list(json.loads(out.stdout))


def _running(head: SecretHead, graph: str, alive: Callable[[], None], orders: bool = False) -> dict[str, Any]:
    """Poll ``tinywindow status`` until ``graph`` runs and has traded a bar (``orders``: and
    placed an order); ``alive()`` raises when the run it watches has ended meanwhile."""
    def seen() -> dict[str, Any] | None:
        alive()
        return next((g for g in _status(head) if g["name"] == graph), None)

    def ok(g: dict[str, Any] | None) -> bool:
        return g is not None and g["state"] == "running" and g["bars"] > 0 and (g["orders"] > 0 or not orders)

    got = poll(seen, ok, 240, f"{graph} running with bars > 0" + (" and orders > 0" if orders else ""), every_s=0.5)
    assert got is not None
    return got


def _summary(universe: dict[str, Path]) -> dict[str, Any]:
    return dict(json.loads((universe["data"] / "summary.json").read_text()))


def test_a_backtest_runs_as_a_job(head: SecretHead, universe: dict[str, Path]) -> None:
    out = _submit(head, *_tw(universe, "run", "--mode", "backtest"))
    logs = out.stdout + out.stderr
    (universe["data"].parent / "backtest-job.out").write_text(logs)
    assert out.returncode == 0, logs[-4000:]
    backtest = _summary(universe)["backtest"]
    assert f"ledger digest {backtest['ledger_digest']}" in logs
    assert backtest["orders"] > 0 and backtest["bars"] == TRADE_BARS, backtest
    assert backtest["journal_verified"]


def test_a_paper_job_stopped_from_another_shell_resumes_with_no_order_lost_or_doubled(
        head: SecretHead, universe: dict[str, Path]) -> None:
    job = f"{NAME}-paper-{secrets.token_hex(4)}"
    sub = _submit(head, *_tw(universe, "run", "--mode", "paper"), submission_id=job, wait=False)
    assert sub.returncode == 0, sub.stdout[-3000:] + sub.stderr[-3000:]
    graph = f"{NAME}-paper-graph"
    ended = re.compile(rf"Job '{job}' (succeeded|failed|stopped)")

    def alive() -> None:
        state = _job(head, "status", job)
        if ended.search(state):
            raise AssertionError(f"job {job} ended before it was stopped: {state}\n{_job(head, 'logs', job)[-4000:]}")

    seen = _running(head, graph, alive, orders=True)  # stopped with orders journaled: the resume restores them
    assert seen["namespace"] == "tinywindow" and seen["bars"] < TRADE_BARS, seen

    stop = subprocess.run([sys.executable, "-m", "tinywindow", "stop"], cwd=ROOT, env=head.client_env(),
                          capture_output=True, text=True, timeout=180)
    assert stop.returncode == 0, stop.stdout[-2000:] + stop.stderr[-2000:]
    assert stop.stdout.strip().endswith(": stopped"), stop.stdout

    state = poll(lambda: _job(head, "status", job), lambda s: ended.search(s) is not None, 240,
                 f"job {job} to end", every_s=1.0)
    logs = _job(head, "logs", job)
    (universe["data"].parent / "paper-job.out").write_text(logs)
    m = ended.search(state)
    assert m is not None and m.group(1) == "succeeded", state + logs[-4000:]
    first = _summary(universe)["paper"]
    assert first["state"] == "stopped" and 0 < first["bars"] < TRADE_BARS and first["orders"] > 0, first
    assert f"ledger digest {first['ledger_digest']}" in logs
    assert not [g for g in _status(head) if g["name"] == graph]  # the job tore its actors down

    # the same run again, as fast as the graph takes the bars: it resumes after the last bar traded
    again = _submit(head, *_tw(universe, "-s", "run.paper.speed=0", "run", "--mode", "paper"))
    (universe["data"].parent / "resume-job.out").write_text(again.stdout + again.stderr)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    second = _summary(universe)["paper"]
    assert second["state"] == "finished" and second["resumed_after"] is not None, second
    assert second["first"] > first["last"], (first["last"], second["first"])
    assert first["bars"] + second["bars"] == TRADE_BARS  # every bar once
    assert second["journal_verified"]
    # the same bars and models as the backtest: the same orders and ledger, none lost or doubled
    backtest = _summary(universe)["backtest"]
    assert second["orders"] == backtest["orders"], (first["orders"], second["orders"], backtest["orders"])
    assert second["ledger_digest"] == backtest["ledger_digest"]


def test_sigterm_stops_an_attached_driver_cleanly(head: SecretHead, universe: dict[str, Path]) -> None:
    env = {**head.env(), "PYTHONUNBUFFERED": "1"}  # an operator's shell on the cluster: it holds the secrets
    log = universe["data"].parent / "term.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tinywindow", "-c", str(universe["file"]), "-s", f"data_dir={universe['data']}",
             "-s", f"ray.address={head.gcs}", "-s", f"run.name={TERM_NAME}", "run", "--mode", "paper"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def alive() -> None:
        if proc.poll() is not None:
            raise AssertionError(f"the driver exited with {proc.returncode} before SIGTERM: {log.read_text()[-4000:]}")

    try:
        _running(head, f"{TERM_NAME}-paper-graph", alive)
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = proc.wait(timeout=90)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text(errors="replace")
    assert rc == 0, text[-4000:]
    assert took < 60, (took, text[-2000:])
    assert "stopped by SIGTERM" in text, text[-2000:]
    paper = _summary(universe)["paper"]
    assert paper["run"] == TERM_NAME and paper["state"] == "stopped" and 0 < paper["bars"] < TRADE_BARS, paper
    assert _status(head) == []  # no engine left running: its actors were torn down
    named = subprocess.run([sys.executable, "-c", "import ray, json; ray.init(); print(json.dumps("
                            "ray.util.list_named_actors(all_namespaces=True)))"],
                           env=head.client_env(), capture_output=True, text=True, timeout=120)
    assert named.returncode == 0, named.stderr[-2000:]
    left = [a for a in json.loads(named.stdout.strip().splitlines()[-1]) if a["name"].startswith((NAME, TERM_NAME))]
    assert left == [], left

