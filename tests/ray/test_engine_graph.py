"""The actor graph of paper and live runs (``actors/graph.py``) against the backtest
(``actors/pipeline.run_trading``): the same bars and models trade the same orders and the same
final ledger; a stopped run resumes with nothing lost or doubled; a slow stage makes the
source wait (the queue stays bounded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import ray

from actors import pipeline
from tests.raytools import COLD_START_S, poll
from tinywindow.config import Config, SourceConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.params import TEST_BUDGET

pytestmark = pytest.mark.usefixtures("ray_cluster")

PASSPHRASE = "graph test passphrase"
TRAIN_END, TRADE_START, TRADE_END = "2014-01-01", "2015-01-01", "2015-04-01"
SOURCES = ["sp500", "nasdaq"]


def _cfg(root: Path) -> Config:
    return (
        Config()
        .set("data_dir", str(root))
        .set("data.persist", False)
        .set("crypto.journal_fsync", False)
        .set("agents.retrain_every_bars", 0)  # the same models throughout: this compares the engines
        # let the test budget's barely-sure agents decide, so the quarter trades
        .set("consensus.threshold", 0.0)
        .set("consensus.max_disagreement", 1.0)
        .set("consensus.quorum", 1)
        .set("risk.confidence_floor", 0.0)
        .set("run.name", "t")
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("graph")
    KeyStore.init(root / "keys", PASSPHRASE, scrypt_log2_n=10)
    cfg = _cfg(root)
    opts: dict[str, Any] = {"runtime_env": {"env_vars": {cfg.crypto.passphrase_env: PASSPHRASE}}}
    data = pipeline.start_data(cfg, [SourceConfig(name=s, kind="bundled", datasets=[s]) for s in SOURCES],
                               actor_options=opts)
    features = pipeline.features_of(data, SOURCES, "2008-01-01", TRAIN_END)
    agents = pipeline.start_agents(cfg, features, {k: dict(v) for k, v in TEST_BUDGET.items()}, actor_options=opts)
    try:
        yield {"cfg": cfg, "data": data, "agents": agents, "opts": opts}
    finally:
        for actor in [*agents.actors.values(), *data.actors.values()]:
            ray.kill(actor)


def _ledger(portfolio: Any) -> dict[str, Any]:
    snap = ray.get(portfolio.snapshot.remote())
    return {"orders": ray.get(portfolio.orders.remote()),
            "snapshot": {k: snap[k] for k in ("cash", "equity", "realized_pnl", "fees", "positions", "closed_trades")}}


def _kill(*actors: Any) -> None:
    for a in actors:
        ray.kill(a, no_restart=True)


def _paper(world: dict[str, Any], name: str, stop_after: int | None = None, max_inflight: int = 4) -> tuple[dict[str, Any], Any]:
    cfg = world["cfg"].set("run.name", name).set("run.paper.max_inflight", max_inflight)
    stream = pipeline.start_stream(cfg, world["data"], world["agents"], SOURCES, TRADE_START, TRADE_END,
                                   actor_options=world["opts"])
    seen: list[dict[str, Any]] = []
    status = pipeline.watch_stream(stream, should_stop=lambda: stop_after is not None and bool(seen)
                                   and seen[-1]["bars"] >= stop_after, on_status=seen.append, poll_s=0.05)
    return status, stream


def test_backtest_and_paper_trade_the_same_ledger(world: dict[str, Any]) -> None:
    cfg = world["cfg"]
    report = pipeline.run_trading(cfg, world["data"], world["agents"], SOURCES, TRADE_START, TRADE_END,
                                  actor_options=world["opts"],
                                  actor_names={"consensus": "t-backtest-consensus", "portfolio": "t-backtest-portfolio"})
    backtest = _ledger(report.portfolio)
    _kill(report.consensus, report.portfolio)
    assert backtest["orders"], "the quarter must trade for the comparison to mean anything"

    status, stream = _paper(world, "t")
    assert status["state"] == "finished", status
    assert status["bars"] == len(report.times)
    paper = _ledger(stream.portfolio)
    curve = ray.get(stream.graph.equity_curve.remote())
    _kill(stream.graph, stream.consensus, stream.portfolio)

    assert paper["orders"] == backtest["orders"]  # the same orders: ids, times, sides, quantities
    assert paper["snapshot"] == backtest["snapshot"]  # the same final ledger, exact decimals
    assert [float(e) for _, e in curve] == report.equity
    assert status["signals"] == report.signals and status["orders"] == report.orders


def test_a_stopped_run_resumes_with_no_order_lost_or_doubled(world: dict[str, Any]) -> None:
    whole, stream = _paper(world, "whole")
    expected = _ledger(stream.portfolio)
    _kill(stream.graph, stream.consensus, stream.portfolio)

    first, stream = _paper(world, "resumed", stop_after=20)
    assert first["state"] == "stopped", first
    assert 20 <= first["bars"] < whole["bars"], (first["bars"], whole["bars"])
    _kill(stream.graph, stream.consensus, stream.portfolio)
    poll(lambda: ray.util.list_named_actors(all_namespaces=True),
         lambda named: not any(e["name"].startswith("resumed-") for e in named), COLD_START_S, "the killed actors' names")

    second, stream = _paper(world, "resumed")
    assert second["state"] == "finished", second
    assert stream.resumed_after is not None
    assert first["bars"] + second["bars"] == whole["bars"]  # every bar once
    resumed = _ledger(stream.portfolio)
    _kill(stream.graph, stream.consensus, stream.portfolio)
    assert resumed == expected


def test_a_slow_stage_makes_the_source_wait(world: dict[str, Any]) -> None:
    """The sources publish as fast as they can (far more than 10x what the graph takes); the
    graph never holds more than ``max_inflight`` bars, and every bar is traded once."""
    status, stream = _paper(world, "burst", max_inflight=2)
    _kill(stream.graph, stream.consensus, stream.portfolio)
    assert status["state"] == "finished", status
    assert status["max_inflight_seen"] <= 2
    assert status["inflight"] == 0


def test_a_live_feed_bursts_through_the_graph_and_a_bad_bar_is_quarantined(world: dict[str, Any]) -> None:
    """A gRPC feed sends every bar at once (a burst far above 10x the rate the graph takes),
    one of them invalid (low above high).  The stream pump waits while more than
    ``max_inflight`` bars are unpublished, so the burst waits in the feed, not in memory; the
    bad bar is quarantined and counted; every good bar is traded once."""
    from actors.data_source import remote_data_source
    from tinywindow.contracts import BARS
    from tinywindow.data.base import select
    from tinywindow.data.feed.server import FeedServer
    from tinywindow.data.sources import build_source

    bars = select(build_source(SourceConfig(name="s", kind="bundled", datasets=["sp500"])).fetch(), None,
                  "2014-01-01", "2015-04-01")
    df = bars.to_pandas()
    bad = len(df) - 20
    df.loc[bad, "low"] = df.loc[bad, "high"] * 2  # invalid: low above high
    table = pa.Table.from_pandas(df, schema=BARS, preserve_index=False)
    traded_times = int((df["ts"] >= pd.Timestamp("2015-01-01", tz="UTC")).sum()) - 1

    cfg = world["cfg"].set("run.name", "feed").set("run.paper.max_inflight", 2)
    with FeedServer(table, batch_rows=1) as server:
        actor = remote_data_source(**world["opts"]).remote(
            {"name": "feed", "kind": "grpc", "address": server.address}, {"on_bad_rows": "quarantine"})
        stream = pipeline.start_stream(cfg, pipeline.DataStage(actors={"feed": actor}), world["agents"], ["feed"],
                                       "2015-01-01", None, follow=["feed"], actor_options=world["opts"])
        status = pipeline.watch_stream(stream)
        desc = ray.get(actor.describe.remote())
    _kill(stream.graph, stream.consensus, stream.portfolio, actor)
    assert status["state"] == "finished", status
    assert desc["quarantined"] == 1 and desc["rejected_batches"] == 0, desc
    assert status["bars"] == traded_times  # every good bar once, the bad one never
    assert status["orders"] > 0
    assert desc["max_backlog"] <= 3, desc["max_backlog"]  # max_inflight + the batch being ingested
    assert status["max_inflight_seen"] <= 2


def test_a_stopped_backtest_resumes_with_no_order_lost_or_doubled(world: dict[str, Any]) -> None:
    cfg = world["cfg"]

    def backtest(name: str, stop_after: int | None = None) -> Any:
        done = [0]

        def on_bar(bar: int, n: int) -> None:
            done[0] += 1

        return pipeline.run_trading(
            cfg, world["data"], world["agents"], SOURCES, TRADE_START, TRADE_END, actor_options=world["opts"],
            actor_names={"consensus": f"{name}-consensus", "portfolio": f"{name}-portfolio"}, on_bar=on_bar,
            should_stop=lambda: stop_after is not None and done[0] >= stop_after)

    whole = backtest("bt-whole")
    expected = _ledger(whole.portfolio)
    _kill(whole.consensus, whole.portfolio)

    first = backtest("bt-resumed", stop_after=25)
    assert first.stopped and len(first.times) == 25
    _kill(first.consensus, first.portfolio)
    second = backtest("bt-resumed")
    assert not second.stopped and second.resumed_after == first.times[-1]
    assert first.times + second.times == whole.times  # every bar once
    resumed = _ledger(second.portfolio)
    _kill(second.consensus, second.portfolio)
    assert resumed == expected
