"""AgentActors survive a crash (their node lost: agents get their own nodes, the likeliest
loss) and the learning loop loses no feedback across a restart of the consensus or an agent.

* A paper run whose agent is killed mid-run (``ray.kill(no_restart=False)``) finishes with the
  ledger of an undisturbed run and every agent's experience (its buffered outcomes, what
  retrains learn from) equal to the undisturbed run's.
* ``ConsensusActor.learn`` retried after a restart (its first attempt journaled, its reply
  lost) returns the first attempt's AGENT_OUTCOMES, and an agent's ``feedback`` retried after
  its own restart journals nothing twice.
* A retrain in flight when its agent restarts is decided "not promoted" (journaled).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import ray

from actors import pipeline
from actors.agent import RETRAIN_LOST, remote_agent
from actors.consensus import remote_consensus
from tests.ray.test_engine_graph import SOURCES, TRAIN_END, _cfg, _kill, _ledger
from tests.raytools import poll
from tinywindow.config import Config, SourceConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.params import TEST_BUDGET

pytestmark = pytest.mark.usefixtures("ray_cluster")

PASSPHRASE = "agent restart test passphrase"
AGENTS = ["lstm", "xgboost"]
VICTIM = "xgboost"  # the agent whose node is "lost"
TRADE_START, TRADE_END = "2015-01-01", "2015-03-01"  # ~40 bars
KILL_AT_BAR = 10
DAY = 86_400 * 10**9
BACK_S = 60.0  # a restarted actor answers within this


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Data sources and one trained version per agent in the registry; each run starts its
    own agents (``retrain=False``) journaling under its own directory, so each run's
    experience is its own."""
    root = tmp_path_factory.mktemp("agent-restart")
    KeyStore.init(root / "keys", PASSPHRASE, scrypt_log2_n=10)
    cfg = _cfg(root)
    opts: dict[str, Any] = {"runtime_env": {"env_vars": {cfg.crypto.passphrase_env: PASSPHRASE}}}
    data = pipeline.start_data(cfg, [SourceConfig(name=s, kind="bundled", datasets=[s]) for s in SOURCES],
                               actor_options=opts)
    features = pipeline.features_of(data, SOURCES, "2008-01-01", TRAIN_END)
    trained = pipeline.start_agents(cfg, features, {k: dict(v) for k, v in TEST_BUDGET.items()}, agents=AGENTS,
                                    actor_options=opts)
    _kill(*trained.actors.values())  # the versions stay in the registry
    try:
        yield {"root": root, "cfg": cfg, "data": data, "features": features, "opts": opts}
    finally:
        _kill(*data.actors.values())


def _run_cfg(world: dict[str, Any], name: str) -> Config:
    return world["cfg"].set("run.name", name).set("crypto.journal_dir", str(world["root"] / name))


def _agents(world: dict[str, Any], cfg: Config) -> pipeline.AgentStage:
    return pipeline.start_agents(cfg, world["features"], {}, agents=AGENTS, retrain=False,
                                 actor_options=world["opts"])


def _pid(actor: Any) -> int:
    return int(ray.get(actor.__ray_call__.remote(lambda _self: os.getpid()), timeout=30))


def _restarted(actor: Any, old_pid: int) -> int:
    """Poll (with a deadline) until the actor answers from a new process; its pid."""
    def pid() -> int | None:
        try:
            return _pid(actor)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return None
    got = poll(pid, lambda p: p is not None and p != old_pid, BACK_S, "the restarted agent")
    assert got is not None
    return got


def _paper(world: dict[str, Any], name: str, kill: str | None = None) -> dict[str, Any]:
    """A paper run with its own agents; ``kill``: that agent is killed (and restarts) once
    ``KILL_AT_BAR`` bars are done.  Returns the run's ledger and each agent's experience."""
    cfg = _run_cfg(world, name).set("run.paper.max_inflight", 4)
    agents = _agents(world, cfg)
    pid = _pid(agents.actors[kill]) if kill else None
    stream = pipeline.start_stream(cfg, world["data"], agents, SOURCES, TRADE_START, TRADE_END,
                                   actor_options=world["opts"])
    killed: list[int] = []

    def on_status(status: dict[str, Any]) -> None:
        if kill and not killed and status["bars"] >= KILL_AT_BAR:
            ray.kill(agents.actors[kill], no_restart=False)  # a crash: Ray restarts it
            killed.append(status["bars"])

    try:
        status = pipeline.watch_stream(stream, on_status=on_status, poll_s=0.05)
        if status["state"] != "finished":
            return {"status": status, "killed": killed}  # the caller's first assertion says why
        out = {
            "status": status, "ledger": _ledger(stream.portfolio), "killed": killed,
            "experience": {a: ray.get(h.experience.remote()) for a, h in agents.actors.items()},
            "stats": {a: ray.get(h.status.remote())["experience"] for a, h in agents.actors.items()},
            "consensus": {a: ray.get(stream.consensus.agent_outcomes.remote(a)) for a in AGENTS},
        }
        if kill:
            out["restarted"] = _pid(agents.actors[kill]) != pid
        return out
    finally:
        _kill(stream.graph, stream.consensus, stream.portfolio, *agents.actors.values())


def test_an_agent_killed_mid_paper_run_restarts_with_the_same_experience_and_ledger(world: dict[str, Any]) -> None:
    calm = _paper(world, "calm")
    assert calm["status"]["state"] == "finished", calm["status"]
    assert calm["ledger"]["orders"], "the run must trade for the comparison to mean anything"
    assert all(calm["experience"][a].num_rows > 0 for a in AGENTS)

    hit = _paper(world, "hit", kill=VICTIM)
    assert hit["killed"] and hit["killed"][0] < calm["status"]["bars"], "the kill must land mid-run"
    assert hit["status"]["state"] == "finished", hit["status"]
    assert hit["restarted"], "the agent must have restarted (a new process)"
    assert hit["status"]["bars"] == calm["status"]["bars"]
    assert hit["ledger"] == calm["ledger"]  # the same orders and final ledger, exact decimals
    for a in AGENTS:
        # what the consensus gave this agent, it has, once: the same experience as undisturbed
        assert hit["experience"][a].equals(calm["experience"][a]), a
        assert hit["stats"][a] == calm["stats"][a], a  # "received" counts journaled rows: none twice
        assert hit["experience"][a].num_rows == hit["consensus"][a].num_rows, a


# ---------------------------------------------------------------------- learn and feedback retried
def _votes(ts: int, rows: list[tuple[str, str, int, float]]) -> pa.Table:
    """VOTES at ``ts``: (symbol, agent, action, confidence) per row."""
    return pa.table({
        "symbol": [r[0] for r in rows], "ts": pa.array([ts] * len(rows), pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "agent": [r[1] for r in rows], "model_version": ["v0001"] * len(rows),
        "action": pa.array([r[2] for r in rows], pa.int8()), "confidence": pa.array([r[3] for r in rows], pa.float32()),
    })


def _outcomes(rows: list[tuple[str, int, float]]) -> pa.Table:
    return pa.table({
        "symbol": [r[0] for r in rows], "ts": pa.array([r[1] for r in rows], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "action": pa.array([0] * len(rows), pa.int8()), "realized_return": [r[2] for r in rows],
    })


def _consensus_back(handle: Any) -> None:
    """Poll until the *restarted* consensus answers (its start-up replayed the journal)."""
    def rec() -> dict[str, int] | None:
        try:
            got: dict[str, int] = ray.get(handle.recovery.remote(), timeout=5)
            return got
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return None
    poll(rec, lambda r: r is not None and r["replayed"] > 0, BACK_S, "the restarted consensus")


def test_a_retried_learn_and_a_retried_feedback_lose_and_double_nothing(tmp_path: Path) -> None:
    KeyStore.init(tmp_path / "keys", PASSPHRASE, scrypt_log2_n=10)
    cfg = (Config().set("data_dir", str(tmp_path)).set("crypto.journal_fsync", False)
           .set("consensus.threshold", 0.0).set("consensus.quorum", 1).set("consensus.max_disagreement", 1.0))
    doc = cfg.model_dump(mode="json")
    env = {"runtime_env": {"env_vars": {cfg.crypto.passphrase_env: PASSPHRASE}}}
    consensus = remote_consensus(live=False, **env).remote(doc, AGENTS, "retry-consensus")
    agents = {a: remote_agent(num_cpus=0.05).remote(a, doc, passphrase=PASSPHRASE) for a in AGENTS}
    try:
        for d in range(1, 6):
            ray.get(consensus.on_votes.remote(_votes(d * DAY, [
                ("AAA", "lstm", 1, 0.7), ("AAA", "xgboost", -1 if d % 2 else 1, 0.6),
                ("BBB", "lstm", -1, 0.8), ("BBB", "xgboost", 1, 0.9)])))
        outcomes = _outcomes([(s, d * DAY, r) for d in range(1, 5) for s, r in (("AAA", 0.01 * d), ("BBB", -0.02))])
        first = ray.get(consensus.learn.remote(outcomes))
        assert first.num_rows == 2 * 2 * 4  # each agent's own row per decision
        # xgboost got the first reply; lstm's was lost with the consensus (killed after journaling)
        ray.get(agents["xgboost"].feedback_own.remote(first))

        ray.kill(consensus, no_restart=False)
        _consensus_back(consensus)
        retried = ray.get(consensus.learn.remote(outcomes))  # Ray's retry of the same call
        assert retried.equals(first)  # the same AGENT_OUTCOMES: the agents miss nothing

        pid = _pid(agents["xgboost"])
        ray.kill(agents["xgboost"], no_restart=False)  # its feedback is delivered again after it
        _restarted(agents["xgboost"], pid)
        again = ray.get(agents["xgboost"].feedback_own.remote(retried))
        assert again["new"] == 0
        ray.get(agents["lstm"].feedback_own.remote(retried))

        for a, h in agents.items():
            own = first.filter(pc.equal(first.column("agent"), a))
            got = ray.get(h.experience.remote())
            assert got.num_rows == own.num_rows == 8, a
            assert sorted(got.to_pylist(), key=lambda r: (r["ts"], r["symbol"])) == \
                sorted(own.to_pylist(), key=lambda r: (r["ts"], r["symbol"])), a
            stats = ray.get(h.status.remote())["experience"]
            assert stats["received"] == stats["outcomes"] == 8, (a, stats)  # journaled once
    finally:
        _kill(consensus, *agents.values())


def test_a_retrain_lost_with_its_agent_is_decided_not_promoted(world: dict[str, Any]) -> None:
    cfg = _run_cfg(world, "retrain-lost")
    actor = _agents(world, cfg).actors[VICTIM]
    try:
        serving = ray.get(actor.version.remote())
        pid = _pid(actor)
        ray.get(actor.start_retrain.remote(ray.put(world["features"])))
        ray.kill(actor, no_restart=False)  # the node is lost while the challenger trains
        _restarted(actor, pid)
        assert ray.get(actor.status.remote())["retrain_lost"]
        t0 = time.monotonic()
        decided = ray.get(actor.finish_retrain.remote(), timeout=BACK_S)
        assert time.monotonic() - t0 < BACK_S
        assert decided["promote"] is False and decided["reason"] == RETRAIN_LOST
        assert decided["version"] is None and decided["serving"] == serving
        assert ray.get(actor.history.remote())[-1]["reason"] == RETRAIN_LOST  # journaled like a rejection
        status = ray.get(actor.status.remote())
        assert not status["retraining"] and not status["retrain_lost"] and status["version"] == serving
    finally:
        _kill(actor)
