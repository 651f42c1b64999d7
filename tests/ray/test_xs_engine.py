"""A cross-sectional universe through the engine: agents that score every symbol of a bar
against the others, the consensus over their scores, portfolio construction to target
weights, risk-checked orders; the backtest (``pipeline.run_trading``) and the paper actor
graph (``pipeline.start_stream``) trade the same WEIGHTS into the same ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import ray

from actors import pipeline
from tinywindow.config import Config, SourceConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.params import TEST_BUDGET

pytestmark = pytest.mark.usefixtures("ray_cluster")

PASSPHRASE = "xs test passphrase"
SOURCE = "xs"
N_SYMBOLS, N_BARS = 12, 420


def _cfg(root: Path) -> Config:
    return (
        Config()
        .set("data_dir", str(root))
        .set("data.persist", False)
        .set("crypto.journal_fsync", False)
        .set("agents.retrain_every_bars", 0)
        .set("agents.cross_sectional", True)
        .set("agents.window", 8)
        .set("agents.valid_bars", 60)
        .set("consensus.mode", "score")
        .set("consensus.quorum", 2)
        .set("risk.confidence_floor", 0.0)
        .set("risk.max_position", 0.5)
        .set("portfolio.construction.method", "mean_variance")
        .set("portfolio.construction.long_only", False)
        .set("portfolio.construction.net_min", -0.1)
        .set("portfolio.construction.net_max", 0.1)
        .set("portfolio.construction.max_weight", 0.2)
        .set("portfolio.construction.turnover_penalty", 0.0005)
        .set("portfolio.construction.lookback", 40)
        .set("run.name", "xs")
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("xs")
    KeyStore.init(root / "keys", PASSPHRASE, scrypt_log2_n=10)
    cfg = _cfg(root)
    opts: dict[str, Any] = {"runtime_env": {"env_vars": {cfg.crypto.passphrase_env: PASSPHRASE}}}
    src = SourceConfig(name=SOURCE, kind="synthetic", n_symbols=N_SYMBOLS, n_bars=N_BARS, seed=3, planted={})
    data = pipeline.start_data(cfg, [src], actor_options=opts)
    cal = np.unique(pipeline.bars_of(data, [SOURCE]).column("ts").cast(pa.int64()).to_numpy())
    day = [str(np.datetime64(int(t), "ns").astype("datetime64[D]")) for t in cal]
    train_end, trade_start, trade_end = day[330], day[345], day[385]
    features = pipeline.features_of(data, [SOURCE], None, train_end)
    agents = pipeline.start_agents(cfg, features, {k: dict(v) for k, v in TEST_BUDGET.items()}, actor_options=opts)
    try:
        yield {"cfg": cfg, "data": data, "agents": agents, "opts": opts, "window": (trade_start, trade_end)}
    finally:
        for actor in [*agents.actors.values(), *data.actors.values()]:
            ray.kill(actor)


def _ledger(portfolio: Any) -> dict[str, Any]:
    snap = ray.get(portfolio.snapshot.remote())
    return {"orders": ray.get(portfolio.orders.remote()),
            "snapshot": {k: snap[k] for k in ("cash", "equity", "realized_pnl", "fees", "positions", "closed_trades")}}


def test_cross_sectional_backtest_and_paper_trade_the_same_weights(world: dict[str, Any]) -> None:
    cfg = world["cfg"]
    start, end = world["window"]
    # the agents score all symbols of a bar: their votes carry per-bar standardised scores
    feats = pipeline.features_of(world["data"], [SOURCE], None, end)
    votes = ray.get(world["agents"].actors["xgboost"].predict.remote(ray.put(feats)))
    last = votes.filter(pa.compute.equal(votes.column("ts"), votes.column("ts")[votes.num_rows - 1]))
    assert last.num_rows == N_SYMBOLS
    assert abs(float(np.mean(last.column("score").to_numpy()))) < 1e-4  # z-scored across the bar

    report = pipeline.run_trading(cfg, world["data"], world["agents"], [SOURCE], start, end,
                                  actor_options=world["opts"],
                                  actor_names={"consensus": "xs-backtest-consensus", "portfolio": "xs-backtest-portfolio"})
    backtest = _ledger(report.portfolio)
    weights = ray.get(report.portfolio.weights.remote())
    ray.kill(report.consensus, no_restart=True)
    ray.kill(report.portfolio, no_restart=True)
    orders = backtest["orders"]
    assert orders, "the window must trade for the comparison to mean anything"
    per_bar: dict[int, set[str]] = {}
    for o in orders:
        per_bar.setdefault(int(o["ts"]), set()).add(o["symbol"])
    assert max(len(s) for s in per_bar.values()) >= 3  # one rebalance moves several names at once
    assert weights.num_rows == N_SYMBOLS  # the last bar's WEIGHTS: one target per symbol
    w = weights.column("weight").to_numpy()
    assert np.abs(w).max() <= 0.2 + 1e-6 and np.abs(w).sum() <= 1.0 + 1e-6 and -0.1 - 1e-6 <= w.sum() <= 0.1 + 1e-6
    assert (w > 0).any() and (w < 0).any()  # long-short

    stream = pipeline.start_stream(cfg.set("run.name", "xs-paper"), world["data"], world["agents"], [SOURCE], start, end,
                                   actor_options=world["opts"])
    status = pipeline.watch_stream(stream, should_stop=lambda: False, poll_s=0.05)
    assert status["state"] == "finished", status
    paper = _ledger(stream.portfolio)
    for a in (stream.graph, stream.consensus, stream.portfolio):
        ray.kill(a, no_restart=True)
    assert paper["orders"] == backtest["orders"]
    assert paper["snapshot"] == backtest["snapshot"]
