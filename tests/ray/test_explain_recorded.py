"""Explained decisions are recorded: the trading paths (the actor graph of a paper run, the
backtest's ``run_trading``) have every agent that voted on a decision that traded journal why
(``AgentActor.explain_and_record``), once per (symbol, ts, model version), and ``load_run``
reads back the explanations of a run's orders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import ray

from actors import pipeline
from tinywindow.config import Config, SourceConfig
from tinywindow.core.codec import CODEC
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.events import ExplanationsRecorded
from tinywindow.models.params import TEST_BUDGET
from tinywindow.records._reader import read_records
from tinywindow.records.journal import load_run

pytestmark = pytest.mark.usefixtures("ray_cluster")

PASSPHRASE = "explain test passphrase"
TRAIN_END, TRADE_START, PAPER_END, BACKTEST_END = "2014-01-01", "2015-01-01", "2015-04-01", "2015-05-01"
SOURCES = ["sp500", "nasdaq"]
Key = tuple[str, int]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("explain")
    keys = KeyStore.init(root / "keys", PASSPHRASE, scrypt_log2_n=10)
    cfg = (
        Config()
        .set("data_dir", str(root))
        .set("data.persist", False)
        .set("crypto.journal_fsync", False)
        .set("agents.retrain_every_bars", 0)
        .set("consensus.threshold", 0.0)
        .set("consensus.max_disagreement", 1.0)
        .set("consensus.quorum", 1)
        .set("risk.confidence_floor", 0.0)
    )
    opts: dict[str, Any] = {"runtime_env": {"env_vars": {cfg.crypto.passphrase_env: PASSPHRASE}}}
    data = pipeline.start_data(cfg, [SourceConfig(name=s, kind="bundled", datasets=[s]) for s in SOURCES],
                               actor_options=opts)
    features = pipeline.features_of(data, SOURCES, "2008-01-01", TRAIN_END)
    agents = pipeline.start_agents(cfg, features, {k: dict(v) for k, v in TEST_BUDGET.items()}, actor_options=opts)
    try:
        yield {"root": root, "keys": keys, "cfg": cfg, "data": data, "agents": agents, "opts": opts}
    finally:
        for actor in [*agents.actors.values(), *data.actors.values()]:
            ray.kill(actor)


def _journaled(world: dict[str, Any]) -> pd.DataFrame:
    """Every explanation row in the agents' journals (one row per journaled row: none twice)."""
    rows = []
    for path in sorted((world["root"] / world["cfg"].crypto.journal_dir).glob("agent-*.twj")):
        for rec in read_records(path, world["keys"]):
            if rec.kind == ExplanationsRecorded.KIND:
                e = CODEC.decode_as(ExplanationsRecorded, rec.payload)
                rows.extend((e.agent, *r) for r in e.rows)
    return pd.DataFrame(rows, columns=["agent", "symbol", "ts", "model_version", "feature", "lag", "contribution",
                                       "rank"])


def _load(world: dict[str, Any], run: str, mode: str) -> Any:
    cfg = world["cfg"]
    return load_run(Path(cfg.data_dir), run, mode, world["keys"], risk=cfg.risk, portfolio=cfg.portfolio)


def _keys(df: pd.DataFrame) -> set[Key]:
    return set(zip(df["symbol"], pd.to_datetime(df["ts"], utc=True).astype("int64"), strict=True))


def _check_run(rec: Any) -> None:
    """Every order's decision is explained by each agent that voted on it, and nothing else is."""
    assert len(rec.orders), "the run must trade for the check to mean anything"
    ex = rec.explanations
    assert list(ex.columns)[:8] == ["symbol", "ts", "agent", "model_version", "feature", "lag", "contribution", "rank"]
    assert _keys(ex) == _keys(rec.orders)
    votes = rec.votes.assign(ts=pd.to_datetime(rec.votes["ts"], utc=True).astype("int64"))
    ex_ns = ex.assign(ts=pd.to_datetime(ex["ts"], utc=True).astype("int64"))
    for (symbol, ts), group in ex_ns.groupby(["symbol", "ts"]):
        voted = votes[(votes["symbol"] == symbol) & (votes["ts"] == ts)]
        assert set(group["agent"]) == set(voted["agent"]), (symbol, ts)
        assert set(zip(group["agent"], group["model_version"], strict=True)) <= set(
            zip(voted["agent"], voted["model_version"], strict=True))
        for _, per_agent in group.groupby("agent"):
            assert sorted(per_agent["rank"]) == list(range(1, len(per_agent) + 1))
            assert len(per_agent) == 5  # top_k


def test_paper_and_backtest_record_the_explanations_of_their_orders(world: dict[str, Any]) -> None:
    cfg, agents = world["cfg"], world["agents"]
    # a paper run through the actor graph: nothing explained before it
    stream = pipeline.start_stream(cfg.set("run.name", "p"), world["data"], agents, SOURCES, TRADE_START, PAPER_END,
                                   actor_options=world["opts"])
    status = pipeline.watch_stream(stream, poll_s=0.05)
    for a in (stream.graph, stream.consensus, stream.portfolio):
        ray.kill(a, no_restart=True)
    assert status["state"] == "finished", status
    paper = _load(world, "p", "paper")
    _check_run(paper)
    after_paper = _journaled(world)
    assert {(s, int(t)) for s, t in zip(after_paper["symbol"], after_paper["ts"], strict=True)} == _keys(paper.orders)

    # a backtest of the same bars and one month more: the same decisions are not journaled again,
    # the new month's are (by run_trading)
    report = pipeline.run_trading(cfg.set("run.name", "b"), world["data"], agents, SOURCES, TRADE_START,
                                  BACKTEST_END, actor_options=world["opts"],
                                  actor_names={"consensus": "b-backtest-consensus", "portfolio": "b-backtest-portfolio"})
    ray.kill(report.consensus, no_restart=True)
    ray.kill(report.portfolio, no_restart=True)
    backtest = _load(world, "b", "backtest")
    _check_run(backtest)
    journaled = _journaled(world)
    dupes = journaled.duplicated(["agent", "symbol", "ts", "model_version", "rank"])
    assert not dupes.any(), journaled[dupes]
    assert {(s, int(t)) for s, t in zip(journaled["symbol"], journaled["ts"], strict=True)} == (
        _keys(paper.orders) | _keys(backtest.orders))  # none for a bar without an order
    new = journaled.iloc[len(after_paper):]
    assert (pd.to_datetime(new["ts"], utc=True) >= pd.Timestamp(PAPER_END, tz="UTC")).any()  # run_trading records

    # the same bars, the same explanations in both runs
    cutoff = pd.Timestamp(PAPER_END, tz="UTC")
    cols = ["symbol", "ts", "agent", "model_version", "feature", "lag", "rank"]
    shared = backtest.explanations[backtest.explanations["ts"] < cutoff]
    # (an agent may vote on a bar in the backtest and not in the graph: the backtest adds its rows)
    assert set(map(tuple, paper.explanations[cols].to_numpy().tolist())) <= set(map(tuple, shared[cols].to_numpy().tolist()))

    # what the graph journaled (on each bar's features) is what the agents explain on the
    # backtest's period features
    keys = sorted(_keys(paper.orders))
    lead = np.datetime64(TRADE_START) - np.timedelta64(180, "D")
    period = ray.put(pipeline.features_of(world["data"], SOURCES, str(lead), PAPER_END))
    for name, actor in agents.actors.items():
        fresh = ray.get(actor.explain.remote(period, keys)).to_pandas()
        mine = after_paper[after_paper["agent"] == name]
        got = {(s, int(t), f, int(g), int(r)): float(c) for s, t, f, g, r, c in
               zip(fresh["symbol"], fresh["ts"].astype("int64"), fresh["feature"], fresh["lag"], fresh["rank"],
                   fresh["contribution"], strict=True)}
        journal = {(s, int(t), f, int(g), int(r)): float(c) for s, t, f, g, r, c in
                   zip(mine["symbol"], mine["ts"], mine["feature"], mine["lag"], mine["rank"], mine["contribution"],
                       strict=True)}
        assert got.keys() == journal.keys(), name
        for k, c in journal.items():
            assert got[k] == pytest.approx(c, rel=1e-3, abs=1e-6), (name, k)
        assert ray.get(actor.explain_and_record.remote(period, keys)) == 0  # journaled already: idempotent
