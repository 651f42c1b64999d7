"""Scale out on several Ray nodes (``ray.cluster_utils.Cluster``, one machine), each actor kind
placed by the custom resources its config section names (``tinywindow.config.placement``).

Three nodes, each offering its own custom resources so that where an actor lands says which
setting put it there:

* head: the driver and the paper graph; ``one`` (everything of the one-node reference run) and a
  spare ``ledger`` (held by a placeholder until the ledger node is lost);
* feeds: ``sources`` (DataSourceActors) and ``agents`` (AgentActors);
* ledger: ``ledger`` (ConsensusActor, PortfolioActor, and in b one AgentActor), the node that
  is lost.

a. A backtest with every actor on the head, then with the actors spread by resource: each lands
   where its resource is, FEATURES and VOTES tables cross nodes intact, and the ledger (orders,
   final book, digest) is the same.
b. A paper run on the spread placement loses the ledger node in the middle: the consensus and
   the portfolio (and an agent placed there) restart on the head from their checkpoints and
   journals, the graph's calls are retried, the run finishes, and the ledger equals an
   undisturbed paper run's and the backtest's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors import pipeline
from actors.agent import remote_agent
from tests.raytools import COLD_START_S, poll, retry_once
from tinywindow.config import Config, SourceConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.engine.summary import LEDGER_KEYS, ledger_digest
from tinywindow.models.params import TEST_BUDGET

PASSPHRASE = "multinode test passphrase"
TRAIN_END, TRADE_START, TRADE_END = "2014-01-01", "2015-01-01", "2015-04-01"
SOURCES = ["sp500", "nasdaq"]
MOVED = "xgboost"  # b: the agent placed on the ledger node
OBJECT_STORE = 200 * 1024**2  # per node: three nodes share one machine's /dev/shm
SPARE_LEDGER = 3.0  # the head's spare "ledger" capacity: room for the consensus, the portfolio and one agent
# Logical CPUs: the one-node run puts 3 agents x 0.25 + 2 x 0.05 on the head; feeds holds the
# spread run's agents.  Two real cores carry all three nodes (the actors are mostly idle).
NODES: dict[str, dict[str, Any]] = {
    "head": {"num_cpus": 1, "resources": {"one": 100.0, "ledger": SPARE_LEDGER}},
    "feeds": {"num_cpus": 1, "resources": {"sources": 100.0, "agents": 100.0}},
    "ledger": {"num_cpus": 1, "resources": {"ledger": 100.0}},
}
ONE_NODE = {"data.resources": {"one": 1}, "agents.resources": {"one": 1},
            "consensus.resources": {"one": 1}, "portfolio.resources": {"one": 1}}
SPREAD = {"data.resources": {"sources": 1}, "agents.resources": {"agents": 1},
          "consensus.resources": {"ledger": 1}, "portfolio.resources": {"ledger": 1}}


@ray.remote(num_cpus=0)
class Slot:
    """Holds resources on one node (a placeholder) until killed."""

    def ready(self) -> bool:
        return True


def _cfg(root: Any, placement: dict[str, Any]) -> Config:
    cfg = (
        Config()
        .set("data_dir", str(root))
        .set("data.persist", False)
        .set("crypto.journal_fsync", False)
        .set("agents.retrain_every_bars", 0)  # the same models throughout: this compares placements
        # let the test budget's barely-sure agents decide, so the quarter trades
        .set("consensus.threshold", 0.0)
        .set("consensus.max_disagreement", 1.0)
        .set("consensus.quorum", 1)
        .set("risk.confidence_floor", 0.0)
        .set("run.name", "t")
    )
    for key, value in placement.items():
        cfg = cfg.set(key, value)
    return cfg


def _actor_info(actor: Any) -> dict[str, Any]:
    """The GCS's view of an actor: its node, state and restarts (no dashboard needed)."""
    from ray._private import state

    info: dict[str, Any] = state.actors(actor_id=actor._actor_id.hex())
    return info


def _node(actor: Any) -> str:
    return str(_actor_info(actor)["Address"]["NodeID"])


def _kill(*actors: Any) -> None:
    """Kill and wait until each is dead: an agent's or a ledger's journal is locked by its process."""
    for a in actors:
        ray.kill(a, no_restart=True)
    for a in actors:
        poll(lambda a=a: _actor_info(a)["State"], lambda s: s == "DEAD", COLD_START_S, "a killed actor's death")


def _hold_spare(cluster: Cluster) -> Any:
    """A placeholder holding the head's spare ``ledger``: the ledger actors start on the ledger node."""
    slot = Slot.options(resources={"ledger": SPARE_LEDGER}, scheduling_strategy=NodeAffinitySchedulingStrategy(
        cluster.head_node.node_id, soft=False)).remote()
    ray.get(slot.ready.remote(), timeout=COLD_START_S)
    return slot


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The three-node cluster, the sources loaded on the head, the agents trained there (the
    one-node setup); the spread setup is made by the tests (``_spread``)."""
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=False)

    def start_head() -> None:
        cluster.add_node(**NODES["head"], object_store_memory=OBJECT_STORE, include_dashboard=False,
                         _system_config={"worker_maximum_startup_concurrency": 4})
        cluster.wait_for_nodes(timeout=COLD_START_S)
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)

    def reset() -> None:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()

    try:
        retry_once(start_head, "the Cluster head node", cleanup=reset)
        nodes = {"head": cluster.head_node.node_id}
        workers = {}
        for name in ("feeds", "ledger"):
            workers[name] = cluster.add_node(**NODES[name], object_store_memory=OBJECT_STORE)
            nodes[name] = workers[name].node_id
        cluster.wait_for_nodes(timeout=COLD_START_S)
        spare = _hold_spare(cluster)
        root = tmp_path_factory.mktemp("multinode")
        KeyStore.init(root / "keys", PASSPHRASE, scrypt_log2_n=10)
        one = _cfg(root, ONE_NODE)
        opts: dict[str, Any] = {"runtime_env": {"env_vars": {one.crypto.passphrase_env: PASSPHRASE}}}
        sources = [SourceConfig(name=s, kind="bundled", datasets=[s]) for s in SOURCES]
        data = pipeline.start_data(one, sources, actor_options=opts)
        features = pipeline.features_of(data, SOURCES, "2008-01-01", TRAIN_END)
        agents = pipeline.start_agents(one, features, {k: dict(v) for k, v in TEST_BUDGET.items()},
                                       actor_options=opts)
        yield {"cluster": cluster, "nodes": nodes, "workers": workers, "spare": spare, "root": root,
               "opts": opts, "sources": sources, "one": {"cfg": one, "data": data, "agents": agents}}
    finally:
        reset()


def _spread(world: dict[str, Any]) -> dict[str, Any]:
    """The spread setup: sources on feeds, the agents (from the registry, not trained again)
    on feeds; the one-node agents are stopped first (an agent's journal has one writer)."""
    if "spread" not in world:
        one = world["one"]
        _kill(*one["agents"].actors.values())
        cfg = _cfg(world["root"], SPREAD)
        data = pipeline.start_data(cfg, world["sources"], actor_options=world["opts"])
        agents = pipeline.start_agents(cfg, pa.table({}), {k: dict(v) for k, v in TEST_BUDGET.items()},
                                       actor_options=world["opts"], retrain=False)
        assert not any(t["trained"] for t in agents.trained.values()), agents.trained
        world["spread"] = {"cfg": cfg, "data": data, "agents": agents}
    return dict(world["spread"])


def _ledger(portfolio: Any) -> dict[str, Any]:
    snap = ray.get(portfolio.snapshot.remote())
    orders = ray.get(portfolio.orders.remote())
    return {"orders": orders, "snapshot": {k: snap[k] for k in LEDGER_KEYS},
            "digest": ledger_digest(orders, snap)}


def _backtest(setup: dict[str, Any], opts: dict[str, Any], name: str) -> tuple[dict[str, Any], Any]:
    report = pipeline.run_trading(setup["cfg"], setup["data"], setup["agents"], SOURCES, TRADE_START, TRADE_END,
                                  actor_options=opts,
                                  actor_names={"consensus": f"{name}-consensus", "portfolio": f"{name}-portfolio"})
    return _ledger(report.portfolio), report


def test_actors_land_by_resource_and_a_backtest_spread_over_three_nodes_trades_the_same_ledger(
        world: dict[str, Any]) -> None:
    nodes, opts, one = world["nodes"], world["opts"], world["one"]
    # a features table put on the driver's node, and the one-node agents' votes on it
    feats = pipeline.features_of(one["data"], SOURCES, "2008-01-01", TRADE_END)
    assert feats.nbytes > 100 * 1024, "large enough to travel through the object store, not inlined"
    feats_ref = ray.put(feats)
    votes_here = {a: ray.get(h.predict.remote(feats_ref)) for a, h in one["agents"].actors.items()}
    for actor in [*one["data"].actors.values(), *one["agents"].actors.values()]:
        assert _node(actor) == nodes["head"]
    reference, report = _backtest(one, opts, "one")
    assert _node(report.consensus) == _node(report.portfolio) == nodes["head"]
    _kill(report.consensus, report.portfolio)
    assert reference["orders"], "the quarter must trade for the comparison to mean anything"

    spread = _spread(world)
    for actor in [*spread["data"].actors.values(), *spread["agents"].actors.values()]:
        assert _node(actor) == nodes["feeds"]
    assert all(ray.get(a.describe.remote())["node"] == nodes["feeds"] for a in spread["data"].actors.values())
    # FEATURES computed on feeds arrive on the driver (head) intact
    assert pipeline.features_of(spread["data"], SOURCES, "2008-01-01", TRADE_END).equals(feats)
    # the table put on the head reaches the agents on feeds, and their VOTES come back intact
    for a, h in spread["agents"].actors.items():
        assert ray.get(h.predict.remote(feats_ref)).equals(votes_here[a]), a

    ledger, report = _backtest(spread, opts, "spread")
    assert _node(report.consensus) == _node(report.portfolio) == nodes["ledger"]
    _kill(report.consensus, report.portfolio)
    assert ledger["orders"] == reference["orders"]  # ids, times, sides, quantities
    assert ledger["snapshot"] == reference["snapshot"]  # exact decimals
    assert ledger["digest"] == reference["digest"]
    world["backtest"] = reference


def _paper(world: dict[str, Any], setup: dict[str, Any], name: str,
           on_status: Any = lambda s: None) -> tuple[dict[str, Any], Any]:
    cfg = setup["cfg"].set("run.name", name)
    stream = pipeline.start_stream(cfg, setup["data"], setup["agents"], SOURCES, TRADE_START, TRADE_END,
                                   actor_options=world["opts"])
    status = pipeline.watch_stream(stream, on_status=on_status, poll_s=0.05)
    return status, stream


def test_a_paper_run_survives_the_loss_of_its_ledger_node(world: dict[str, Any]) -> None:
    nodes, cluster = world["nodes"], world["cluster"]
    spread = _spread(world)

    whole, stream = _paper(world, spread, "calm")
    assert whole["state"] == "finished", whole
    expected = _ledger(stream.portfolio)
    assert _node(stream.consensus) == _node(stream.portfolio) == nodes["ledger"]
    assert _node(stream.graph) == nodes["head"]  # beside its driver: not lost with a worker node
    _kill(stream.graph, stream.consensus, stream.portfolio)
    if "backtest" in world:
        assert expected == world["backtest"]

    # one agent on the ledger node too (agents get their own nodes: the likeliest node loss)
    _kill(spread["agents"].actors[MOVED])  # an agent's journal has one writer
    doc = spread["cfg"].model_dump(mode="json", exclude={"serving": {"token"}})
    moved = remote_agent(num_cpus=0.25, resources={"ledger": 1}, **world["opts"]).remote(MOVED, doc)
    assert ray.get(moved.version.remote()) == spread["agents"].trained[MOVED]["version"]
    assert _node(moved) == nodes["ledger"]
    stage = pipeline.AgentStage({a: moved if a == MOVED else h for a, h in spread["agents"].actors.items()},
                                spread["agents"].trained, spread["agents"].seconds)
    world["spread"]["agents"] = spread["agents"] = stage

    lost: dict[str, Any] = {}

    def lose_the_ledger_node(status: dict[str, Any]) -> None:
        if not lost and status["bars"] >= 20:
            lost["at_bar"] = status["bars"]
            ray.kill(world.pop("spare"))  # the head's spare ledger capacity: where they can restart
            cluster.remove_node(world["workers"]["ledger"])

    status, stream = _paper(world, spread, "storm", on_status=lose_the_ledger_node)
    assert lost, "the node was never removed"
    assert status["state"] == "finished", status
    assert lost["at_bar"] < whole["bars"]
    assert status["bars"] == whole["bars"]  # every bar once
    # a retried call answers as its first attempt did: the same decisions and orders
    assert status["signals"] == whole["signals"] and status["orders"] == whole["orders"]
    for actor in (stream.consensus, stream.portfolio, moved):
        info = _actor_info(actor)
        assert info["NumRestarts"] >= 1 and info["Address"]["NodeID"] == nodes["head"], info
    recovery = ray.get(stream.portfolio.recovery.remote())
    assert recovery["journal_seq"] > 0, recovery  # restored from its journal, not started empty
    assert _ledger(stream.portfolio) == expected  # orders (reasons with their confidences), book, digest
    with contextlib.suppress(Exception):
        _kill(stream.graph, stream.consensus, stream.portfolio)
