"""A small real run's journals, built without Ray: a TradingEngine and a ConsensusBook, each
journaled through its own ``DurableState`` (the actors' start-up and commit path)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tinywindow.consensus.config import ConsensusConfig
from tinywindow.consensus.state import ConsensusBook
from tinywindow.crypto.config import CryptoConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.durability.recovery import open_durable
from tinywindow.execution.config import PortfolioConfig
from tinywindow.execution.engine import BarRow, TradingEngine
from tinywindow.execution.tables import outcomes_table, signal_rows
from tinywindow.risk.config import RiskConfig

PASS = "records test passphrase"
SYMBOLS = ["AAA", "BBB"]
AGENTS = ["a1", "a2", "a3"]
T0 = pd.Timestamp("2024-01-02T21:00:00Z").value
DAY = 86_400 * 10**9


def keystore(tmp: Path) -> KeyStore:
    return KeyStore.init(tmp / "keys", PASS, scrypt_log2_n=10)


def votes_at(ts: int, rng: np.random.Generator) -> pa.Table:
    rows = [(s, a, int(rng.choice([-1, 1, 1])), float(rng.uniform(0.55, 0.95))) for s in SYMBOLS for a in AGENTS]
    return pa.table({
        "symbol": [r[0] for r in rows],
        "ts": pa.array([ts] * len(rows), pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "agent": [r[1] for r in rows],
        "model_version": ["v0001"] * len(rows),
        "action": pa.array([r[2] for r in rows], pa.int8()),
        "confidence": pa.array([r[3] for r in rows], pa.float32()),
    })


def build_run(data_dir: Path, keys: KeyStore, run: str = "t", mode: str = "backtest", bars: int = 40,
              seed: int = 1, after_commit: Callable[[Any, list[Any]], None] | None = None,
              stop_at: int | None = None) -> dict[str, Any]:
    """Drive ``bars`` bars; ``after_commit(durable, events)`` runs after each portfolio commit
    (what the PortfolioActor's store hook sees).  Returns the engine and its journals' state."""
    crypto = CryptoConfig(journal_fsync=False)
    risk, port = RiskConfig(), PortfolioConfig(commission_bps=1.5, slippage_bps=2.5)
    engine = TradingEngine(risk, port)
    durable, _ = open_durable(crypto, data_dir, f"{run}-{mode}-portfolio", engine, 10_000, keystore=keys,
                              clock=lambda: T0)

    def commit(events: list[Any]) -> None:
        durable.commit(events)
        if after_commit is not None:
            after_commit(durable, events)

    engine.on_commit = commit
    book = ConsensusBook(ConsensusConfig(quorum=2, threshold=0.1, max_disagreement=1.0), AGENTS)
    cons, _ = open_durable(crypto, data_dir, f"{run}-{mode}-consensus", book, 10_000, keystore=keys,
                           clock=lambda: T0)
    book.on_commit = cons.commit
    rng = np.random.default_rng(seed)
    price = {s: 100.0 + 10 * i for i, s in enumerate(SYMBOLS)}
    seen = 0
    for i in range(bars if stop_at is None else stop_at):
        ts = T0 + i * DAY
        rows = []
        for s in SYMBOLS:
            o = price[s] * float(np.exp(rng.normal(0, 0.004)))
            price[s] = o * float(np.exp(rng.normal(0, 0.015)))
            rows.append(BarRow(s, ts, round(o, 4), round(price[s], 4)))
        engine.on_bars(rows)
        got = engine.outcomes_since(seen)
        seen = engine.outcome_seq
        if got:
            book.learn(outcomes_table(got))
        book.submit_votes(votes_at(ts, rng))
        engine.apply_signals(signal_rows(book.decide(ts)))
    out = {"engine": engine, "durable": durable, "consensus": cons}
    return out
