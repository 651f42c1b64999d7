"""A cluster that grows and shrinks with the demand: one head started exactly as the README says,
``RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=cluster/local-autoscale.yaml``
(Ray's fake_multinode provider: worker nodes are raylets on this machine, each offering
``{CPU: 1, agents: 1}``; the head offers no ``agents``), token auth on, jobs submitted with
``ray job submit``.  The head differs from the command in the config file's header in CLI flags
only: its own temp dir and token, the dashboard and its agent on free ports.  The GCS is on 6379, the one port the provider joins
workers to (the test is skipped when 6379 stays taken).  Jobs run in the checkout in place
(``--working-dir local://<repo>``): the fake nodes share one session folder, and each node's
runtime-env agent unpacks an uploaded working dir there again on first use, deleting the copy
that processes of the other nodes are running in.

c. A backtest job whose AgentActors ask for ``agents`` (``TW_AGENTS__RESOURCES`` in the job's
   runtime env), submitted while the cluster has no worker node: the autoscaler launches
   workers for the demand, the job succeeds, its agents ran on workers (not the head), its
   journal verifies; then the idle workers are removed.
d. A Tune sweep job whose trials ask for ``agents`` (``-s agents.resources=...``): the trials
   ran on at least two worker nodes, and the experiment and the sealed tuned parameters are in
   the storage root after the job has ended.

The seconds from demand to workers alive and from idle to removed are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.raytools import RAY, RayHead, job_submit, poll

ROOT = Path(__file__).resolve().parents[2]
AUTOSCALE = ROOT / "cluster" / "local-autoscale.yaml"  # used as committed
GCS_PORT = 6379  # fake_multinode joins workers to <this machine>:6379 (see the config file)
FAKE_HEAD = "fffffffffffffffffffffffffffffffffffffffffffffffffff00000"  # the provider's head node id
# a short backtest (as tests/cluster/test_job_run.py): one XGBoost agent on the test budget
AGENTS = ["xgboost"]
# the smallest sweep that needs two nodes: two trials at once, one `agents` each
TUNE = ["tune", "--agent", "xgboost", "--samples", "2", "--rounds", "8", "--concurrent", "2", "--data", "goog"]


class AutoscaleHead(RayHead):
    """A fake_multinode head holding the keystore passphrase and the serving token (jobs and
    the actors they start inherit them from `ray start`; they never travel in job arguments)."""

    def __init__(self) -> None:
        super().__init__(num_cpus=2, port=GCS_PORT, autoscaling_config=AUTOSCALE,
                         extra_env={"RAY_FAKE_CLUSTER": "1"})
        self.passphrase = secrets.token_urlsafe(16)
        self.serving_token = secrets.token_urlsafe(32)

    def env(self) -> dict[str, str]:
        return {**super().env(), "TW_PASSPHRASE": self.passphrase, "TW_SERVING__TOKEN": self.serving_token,
                "TW_NO_PROGRESS": "1", "PYTHONHASHSEED": "0"}

    def client_env(self) -> dict[str, str]:
        """A client shell: token auth, no secrets."""
        env = self.env()
        env.pop("TW_PASSPHRASE")
        env.pop("TW_SERVING__TOKEN")
        return env

    def api(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        """GET a dashboard endpoint (the state and jobs APIs) with this head's token."""
        url = self.address + path + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token_path.read_text().strip()}"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def state(self, kind: str, **filters: str) -> list[dict[str, Any]]:
        """``ray list <kind> --detail --filter key=value ...`` through the state API."""
        params = [("limit", "10000"), ("detail", "1")]
        for k, v in filters.items():
            params += [("filter_keys", k), ("filter_predicates", "="), ("filter_values", v)]
        return list(self.api(f"/api/v0/{kind}", params)["data"]["result"]["result"])

    def workers(self) -> set[str]:
        """Node ids of the alive worker nodes (all but the head)."""
        return {n["node_id"] for n in self.state("nodes") if n["state"] == "ALIVE" and not n["is_head_node"]}

    def job(self, submission_id: str) -> dict[str, Any]:
        return dict(self.api(f"/api/jobs/{submission_id}"))

    def job_logs(self, submission_id: str) -> str:
        return str(self.api(f"/api/jobs/{submission_id}/logs")["logs"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    """Nothing listens on ``port`` (connections of an earlier head lingering in TIME_WAIT do not
    stop the GCS binding it, and do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def head() -> Iterator[AutoscaleHead]:
    try:  # another Ray on the default port (another test's head finishing) may free it soon
        poll(lambda: _port_free(GCS_PORT), bool, 60, f"port {GCS_PORT} free", every_s=1.0)
    except TimeoutError:
        pytest.skip(f"port {GCS_PORT} is taken: the fake_multinode provider joins workers to a GCS there only")
    node = AutoscaleHead()
    try:
        t0 = time.monotonic()
        node.start()
        print(f"\nautoscale head up in {time.monotonic() - t0:.1f}s")
        yield node
    finally:
        node.stop()  # the head's session: its monitor and every worker node it launched


@pytest.fixture(scope="module")
def state(head: AutoscaleHead, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The universe file and the shared, absolute storage root (``data_dir``) of both jobs,
    with a keystore (a cheap scrypt) made by a client on the head's machine."""
    tmp = tmp_path_factory.mktemp("autoscale")
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
  name: scale
  agents: {json.dumps(AGENTS)}
  train: {{end: "2014-01-01"}}
  trade: {{start: "2015-01-01", end: "2015-04-01"}}
  budget: test
""")
    data = tmp / "state"
    init = subprocess.run([sys.executable, "-m", "tinywindow", "-s", f"data_dir={data}", "keys", "init",
                           "--scrypt-log2-n", "10"], cwd=ROOT, env=head.env(), capture_output=True, text=True,
                          timeout=300)
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
    return {"file": path, "data": data}


def _tw(state: dict[str, Path], *args: str) -> list[str]:
    return ["python", "-m", "tinywindow", "-c", str(state["file"]), "-s", f"data_dir={state['data']}", *args]


def _submit(head: AutoscaleHead, entrypoint: list[str], job_id: str, env_vars: dict[str, str] | None = None,
            wait: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [RAY, "job", "submit", "--address", head.address, "--working-dir", f"local://{ROOT}", "--submission-id", job_id]
    if env_vars:
        cmd += ["--runtime-env-json", json.dumps({"env_vars": env_vars})]
    if not wait:
        cmd.append("--no-wait")
    return job_submit([*cmd, "--", *entrypoint], head.client_env(), timeout=600)


@dataclass
class Scaling:
    """What a job's demand for ``agents`` did to the cluster, seen by polling the state API."""

    status: str = ""
    demand: float | None = None  # wall-clock s: the first actor or placement group asking for agents
    busy: dict[str, float] = field(default_factory=dict)  # worker node -> last seen hosting a live actor
    workers: list[dict[str, Any]] = field(default_factory=list)  # worker nodes started for the job
    removed_s: float = 0.0  # job ended -> every worker removed

    def up_s(self) -> tuple[float, float]:
        """Seconds from the demand to the first and to the last worker alive (GCS start times)."""
        assert self.demand is not None
        starts = [n["start_time_ms"] / 1000 for n in self.workers]
        return min(starts) - self.demand, max(starts) - self.demand

    def idle_s(self) -> float:
        """The longest a worker lived on after its last actor ended (GCS end time)."""
        return max(n["end_time_ms"] / 1000 - self.busy.get(n["node_id"], n["start_time_ms"] / 1000)
                   for n in self.workers)


def _asks_for_agents(resources: dict[str, Any]) -> bool:
    return any(k == "agents" or k.startswith("agents_group") for k in resources)  # a bundle's: agents_group_*


def _run_watched(head: AutoscaleHead, entrypoint: list[str], job: str, env_vars: dict[str, str] | None = None
                 ) -> tuple[Scaling, str]:
    """Submit ``job``, watch the cluster until it has ended and every worker is gone again, and
    return what the autoscaler did and the job's logs."""
    assert head.workers() == set(), "workers left from before"  # min_workers 0: nothing runs, nothing is up
    t_submit = time.time()
    sub = _submit(head, entrypoint, job, env_vars, wait=False)
    assert sub.returncode == 0, sub.stdout[-3000:] + sub.stderr[-3000:]
    seen = Scaling()
    deadline = time.monotonic() + 600
    while seen.status not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.monotonic() < deadline, f"job {job} did not end"
        now = time.time()
        actors = head.state("actors")
        groups = head.state("placement_groups")
        if seen.demand is None and (
                any(_asks_for_agents(a.get("required_resources") or {}) for a in actors)
                or any(_asks_for_agents(b.get("unit_resources") or {}) for g in groups for b in g.get("bundles") or [])):
            seen.demand = now
        for a in actors:
            if a["state"] == "ALIVE" and a["node_id"] != FAKE_HEAD:
                seen.busy[a["node_id"]] = now
        seen.status = head.job(job)["status"]
        time.sleep(0.5)
    logs = head.job_logs(job)
    t_end = time.monotonic()
    poll(head.workers, lambda w: not w, 180, f"idle workers removed after job {job}", every_s=0.5)
    seen.removed_s = time.monotonic() - t_end
    seen.workers = [n for n in head.state("nodes") if not n["is_head_node"] and n["start_time_ms"] >= t_submit * 1000]
    return seen, logs


def test_c_agents_demand_launches_workers_the_run_finishes_and_idle_workers_go(
        head: AutoscaleHead, state: dict[str, Path]) -> None:
    job = f"scale-backtest-{secrets.token_hex(4)}"
    scaling, logs = _run_watched(head, _tw(state, "run", "--mode", "backtest"), job,
                                 env_vars={"TW_AGENTS__RESOURCES": json.dumps({"agents": 1})})
    (state["data"].parent / "backtest-job.out").write_text(logs)
    assert scaling.status == "SUCCEEDED", scaling.status + "\n" + logs[-4000:]

    # the run asked for agents before any worker existed; the autoscaler launched workers for it
    assert scaling.demand is not None and scaling.workers, scaling
    first_up, all_up = scaling.up_s()
    assert first_up > 0, scaling  # started before the scale-up
    assert all(n["resources_total"].get("agents") == 1.0 for n in scaling.workers), scaling.workers

    # every AgentActor ran on one of those workers, none on the head
    agents = head.state("actors", class_name="AgentActor")
    assert len(agents) == len(AGENTS), agents
    assert {a["node_id"] for a in agents} <= {n["node_id"] for n in scaling.workers}, (agents, scaling.workers)

    # the run is right: it traded, and its journal verifies (public keys only, from a client)
    summary = json.loads((state["data"] / "summary.json").read_text())["backtest"]
    assert summary["bars"] > 0 and summary["orders"] > 0 and summary["journal_verified"], summary
    assert f"ledger digest {summary['ledger_digest']}" in logs
    verify = subprocess.run([sys.executable, "-m", "tinywindow", "-s", f"data_dir={state['data']}", "verify",
                             str(state["data"] / "journal")], cwd=ROOT, env=head.client_env(), capture_output=True,
                            text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]

    # the idle workers were removed (every one of them is dead: _run_watched waited for that)
    assert all(n["state"] == "DEAD" for n in scaling.workers), scaling.workers
    print(f"\nautoscale c (backtest, {len(AGENTS)} agent): demand -> first worker alive {first_up:.1f}s, "
          f"all {len(scaling.workers)} alive {all_up:.1f}s; last actor gone -> worker removed "
          f"{scaling.idle_s():.1f}s (idle_timeout_minutes 0.1 = 6s + the autoscaler's 5s loop); "
          f"job ended -> no worker left {scaling.removed_s:.1f}s")


def test_d_a_sweep_spreads_its_trials_over_workers_and_its_results_persist(
        head: AutoscaleHead, state: dict[str, Path]) -> None:
    job = f"scale-tune-{secrets.token_hex(4)}"
    scaling, logs = _run_watched(head, _tw(state, "-s", "agents.resources={agents: 1}", *TUNE), job)
    (state["data"].parent / "tune-job.out").write_text(logs)
    assert scaling.status == "SUCCEEDED", scaling.status + "\n" + logs[-4000:]

    # the results outlive the job, in the storage root: the experiment and the sealed parameters
    experiments = list((state["data"] / "tune").glob("xgboost-*"))
    assert len(experiments) == 1, experiments
    results = [json.loads(line) for f in experiments[0].rglob("result.json")
               for line in f.read_text().splitlines() if line.strip()]
    trials = {r["trial_id"]: r for r in results}
    assert len(trials) == 2, sorted(trials)
    tuned = state["data"] / "models" / "xgboost" / "tuned.json.twenc"
    assert tuned.is_file() and str(tuned) in logs
    verify = subprocess.run([sys.executable, "-m", "tinywindow", "-s", f"data_dir={state['data']}", "verify",
                             str(tuned)], cwd=ROOT, env=head.client_env(), capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]

    # each trial ran in a process (its `pid` in the results) on a worker launched for the sweep
    job_id = head.job(job)["job_id"]
    actors = {a["pid"]: a for a in head.state("actors", job_id=job_id)}
    nodes = {actors[r["pid"]]["node_id"] for r in trials.values()}
    assert len(nodes) >= 2 and nodes <= {n["node_id"] for n in scaling.workers}, (nodes, scaling.workers)
    first_up, all_up = scaling.up_s()
    print(f"\nautoscale d (sweep, {len(trials)} trials on {len(nodes)} workers): demand -> first worker alive "
          f"{first_up:.1f}s, all {len(scaling.workers)} alive {all_up:.1f}s; last trial gone -> worker removed "
          f"{scaling.idle_s():.1f}s; job ended -> no worker left {scaling.removed_s:.1f}s")
