"""The main job under test: ``actors/pipeline.py`` end to end, as ``tinywindow demo`` runs it,
on a small configuration (bundled S&P 500 and NASDAQ, the test training budget, one quarter of
trading), with every figure the demo prints checked against the signed journals."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import ray

from actors import pipeline
from tests.raytools import COLD_START_S, poll
from tinywindow.cli.demo import _trading_table
from tinywindow.config import Config, SourceConfig
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.keystore import KeyStore
from tinywindow.durability.recovery import journal_file
from tinywindow.errors import TransientError
from tinywindow.models.params import TEST_BUDGET
from tinywindow.models.registry import ModelRegistry

pytestmark = pytest.mark.usefixtures("ray_cluster")

PASSPHRASE = "pipeline end-to-end test passphrase"
TRAIN_END, TRADE_START, TRADE_END = "2014-01-01", "2015-01-01", "2015-04-01"


def _records(cfg: Config, name: str, keys: KeyStore) -> list[Any]:
    """The journal's records, once the killed actor's process has let go of its lock."""

    def read() -> list[Any] | None:
        try:
            with Journal(journal_file(cfg.crypto, cfg.data_dir, name), keys, fsync=False) as j:
                return list(j.records())
        except TransientError:  # still open in the dying actor's process
            return None

    return poll(read, lambda r: r is not None, COLD_START_S, f"the {name} journal's lock")  # type: ignore[no-any-return]


def test_pipeline_end_to_end_on_one_quarter(tmp_path: Path) -> None:
    keys = KeyStore.init(tmp_path / "keys", PASSPHRASE, scrypt_log2_n=10)
    cfg = (
        Config()
        .set("data_dir", str(tmp_path))
        .set("data.persist", False)
        .set("crypto.journal_fsync", False)
        .set("agents.retrain_every_bars", 20)  # retrains start after bars 20 and 40 ...
        .set("agents.retrain_lag_bars", 3)  # ... and are decided at bars 23 and 43
        # a short gate window and embargo, so even the first retrain's training data reach
        # into the traded bars (bar 20: trained on bars < 9, gated on bars 10..19)
        .set("agents.promotion.eval_bars", 10)
        .set("agents.promotion.embargo_bars", 1)
        # the test budget trains agents that are barely sure of anything: let the consensus
        # decide on what they agree about, so the quarter trades
        .set("consensus.threshold", 0.0)
        .set("consensus.max_disagreement", 1.0)
        .set("consensus.quorum", 1)
        .set("risk.confidence_floor", 0.0)
    )
    # the passphrase reaches the actors the way it would on a cluster: in their environment
    opts: dict[str, Any] = {"runtime_env": {"env_vars": {cfg.crypto.passphrase_env: PASSPHRASE}}}
    sources = [SourceConfig(name="sp500", kind="bundled", datasets=["sp500"]),
               SourceConfig(name="nasdaq", kind="bundled", datasets=["nasdaq"])]
    data = pipeline.start_data(cfg, sources, actor_options=opts)
    features = pipeline.features_of(data, ["sp500", "nasdaq"], "2008-01-01", TRAIN_END)
    agents = pipeline.start_agents(cfg, features, {k: dict(v) for k, v in TEST_BUDGET.items()},
                                   actor_options=opts)
    assert set(agents.trained) == set(pipeline.AGENTS)
    try:
        report = pipeline.run_trading(cfg, data, agents, ["sp500", "nasdaq"], TRADE_START, TRADE_END,
                                      actor_options=opts)
        bars = pipeline.bars_of(data, ["sp500", "nasdaq"], TRADE_START, TRADE_END)
        printed = _trading_table(cfg, report)
        agent_status = report.retrains
    finally:
        for actor in agents.actors.values():
            ray.kill(actor)
    for actor in (report.consensus, report.portfolio):
        ray.kill(actor, no_restart=True)

    # one quarter of bars, every one traded through the graph; the journal verifies
    assert 55 <= len(report.times) <= 65 and len(report.equity) == len(report.times)
    assert report.journal["ok"], report.journal

    # every agent's votes reached the consensus (the consensus journal holds them)
    consensus = _records(cfg, "consensus", keys)
    voted = {row[2] for r in consensus if r.kind == "votes" for row in r.payload["rows"]}  # (symbol, ts, agent, ...)
    assert voted == set(pipeline.AGENTS)
    assert sum(report.signals.values()) > 0

    # outcomes reached the consensus weights and every agent
    assert report.outcomes > 0
    assert any(r.kind == "learned" for r in consensus)
    assert all(st["scored"] > 0 for st in report.agent_stats.values()), report.agent_stats
    assert report.weights != dict.fromkeys(pipeline.AGENTS, 1.0), report.weights  # moved from the start
    for agent, status in agent_status.items():
        assert status["experience"]["outcomes"] > 0, (agent, status)
        assert not status["last_error"], (agent, status)

    # every agent retrained twice at the scheduled bars, learned from its own outcomes, and
    # the gate decided each: a promoted version votes from the next bar on, a rejected never
    assert [(p["bar"], p["agent"]) for p in report.promotions] == [
        (bar, a) for bar in (23, 43) for a in pipeline.AGENTS]
    assert all(p["outcomes_matched"] > 0 for p in report.promotions), report.promotions
    for p in report.promotions:
        later = [v[p["agent"]] for ts, v in report.versions_by_bar if ts > report.times[p["bar"]]]
        assert (p["version"] in later) == p["promote"], p
        assert p["version"] not in [v[p["agent"]] for ts, v in report.versions_by_bar if ts <= report.times[p["bar"]]]
    # no look-ahead: each challenger saw the features up to its retrain bar, and no later one
    registry = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, keys, read_only=True)
    for p in report.promotions:
        meta = registry.metadata(p["agent"], p["version"])
        start_bar = p["bar"] - cfg.agents.retrain_lag_bars
        assert meta["data"]["retrain_point"] == pd.Timestamp(report.times[start_bar], tz="UTC").isoformat(), p
        assert meta["data"]["train"]["end"] < meta["data"]["validation"]["valid_start"]

    # orders were filled, and the printed figures agree with the ledger
    portfolio = _records(cfg, "portfolio", keys)
    orders = [r.payload for r in portfolio if r.kind == "order"]
    fills = [r.payload for r in portfolio if r.kind == "fill"]
    assert orders and fills, (report.signals, report.snapshot, sorted({r.kind for r in portfolio}))
    assert report.orders == len(orders)
    fees = sum((Decimal(f["fee"]) for f in fills), Decimal(0))
    assert Decimal(report.snapshot["fees"]) == fees
    m = re.search(r"; (\d+) orders \((\d+) buy, (\d+) sell\); (\d+) closed trades; fees ([\d,]+\.\d\d);", printed)
    assert m, printed
    assert int(m.group(1)) == len(orders) == int(m.group(2)) + int(m.group(3))
    assert int(m.group(3)) == sum(1 for o in orders if int(o["side"]) < 0)
    assert int(m.group(4)) == report.snapshot["closed_trades"]
    assert Decimal(m.group(5).replace(",", "")) == fees.quantize(Decimal("0.01"))

    # final equity = cash + positions at the last close (exact decimals)
    last = bars.filter(pc.equal(bars.column("ts").cast(pa.int64()), report.times[-1]))
    close = dict(zip(last.column("symbol").cast(pa.string()).to_pylist(), last.column("close").to_pylist(), strict=True))
    held = sum((Decimal(p["qty"]) * Decimal(repr(close[s])) for s, p in report.snapshot["positions"].items()),
               Decimal(0))
    equity = Decimal(report.snapshot["cash"]) + held
    assert abs(equity - Decimal(report.snapshot["equity"])) < Decimal("1e-6")
    assert report.equity[-1] == pytest.approx(float(equity), rel=1e-12)
    assert os.environ.get(cfg.crypto.passphrase_env) != PASSPHRASE  # never left in the driver


def _fingerprint(tmp: Path) -> dict[str, Any]:
    """One short pipeline with retrains; what must be equal between two runs of it."""
    keys = KeyStore.init(tmp / "keys", PASSPHRASE, scrypt_log2_n=10)
    cfg = (
        Config()
        .set("data_dir", str(tmp))
        .set("data.persist", False)
        .set("crypto.journal_fsync", False)
        .set("agents.retrain_every_bars", 15)
        .set("agents.retrain_lag_bars", 2)
        .set("agents.promotion.eval_bars", 10)
        .set("agents.promotion.embargo_bars", 1)
        .set("consensus.threshold", 0.0)
        .set("consensus.max_disagreement", 1.0)
        .set("consensus.quorum", 1)
        .set("risk.confidence_floor", 0.0)
    )
    opts: dict[str, Any] = {"runtime_env": {"env_vars": {cfg.crypto.passphrase_env: PASSPHRASE}}}
    data = pipeline.start_data(cfg, [SourceConfig(name="sp500", kind="bundled", datasets=["sp500"])], actor_options=opts)
    features = pipeline.features_of(data, ["sp500"], "2008-01-01", TRAIN_END)
    agents = pipeline.start_agents(cfg, features, {k: dict(v) for k, v in TEST_BUDGET.items()}, actor_options=opts)
    try:
        report = pipeline.run_trading(cfg, data, agents, ["sp500"], TRADE_START, "2015-03-01", actor_options=opts)
    finally:
        for actor in agents.actors.values():
            ray.kill(actor)
        for actor in data.actors.values():
            ray.kill(actor)
    for actor in (report.consensus, report.portfolio):
        ray.kill(actor, no_restart=True)
    return {
        "portfolio": [(r.kind, r.payload) for r in _records(cfg, "portfolio", keys)],
        "consensus": [(r.kind, r.payload) for r in _records(cfg, "consensus", keys)],
        "versions_by_bar": report.versions_by_bar,
        "promotions": [{k: v for k, v in p.items() if k != "seconds"} for p in report.promotions],
        "snapshot": report.snapshot,
        "equity": report.equity,
    }


def test_the_same_seed_trades_the_same_ledger_with_retrains(tmp_path: Path) -> None:
    first = _fingerprint(tmp_path / "a")
    second = _fingerprint(tmp_path / "b")
    assert [p["bar"] for p in first["promotions"]] == [17, 17, 17, 32, 32, 32]
    assert any(k == "fill" for k, _ in first["portfolio"])
    for key in first:
        assert first[key] == second[key], key
