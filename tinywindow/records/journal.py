"""``load_run``: one run's journals (portfolio, consensus, agents) and the model registry as DataFrames.

The journals are the source of truth; ``RunRecords`` is what the report draws and the SQL store
keeps.  The portfolio journal is replayed into a fresh ``TradingEngine`` (the PortfolioActor's
start-up path, ``_replay``), so equity and positions are the engine's own numbers.  Journals
are read-only here (``_reader``): audited (chain, signatures, head), never locked or repaired;
reading needs the unlocked keystore, since payloads are encrypted.

Journal names are ``<journal_dir>/<run>-<mode>-portfolio.journal`` and ``...-consensus.journal``
(``RunConfig.actor_name``); a mode never contains ``-``, so ``<run>`` may.  The agents' own
journals (``<journal_dir>/agent-<name>.twj``) are shared by the runs of a data dir: the
explanations read from them are those of the run's orders (``_explanations``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tinywindow.consensus.events import (
    AgentOutcomesScored,
    ConsensusDecided,
    VotesRecorded,
    WeightsLearned,
)
from tinywindow.core.codec import CODEC
from tinywindow.core.money import dec_str
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import ConfigError
from tinywindow.execution.config import PortfolioConfig
from tinywindow.models.events import ExplanationsRecorded
from tinywindow.records._reader import read_records
from tinywindow.records._replay import PortfolioReplay, Rows
from tinywindow.risk.config import RiskConfig

__all__ = [
    "RunRecords",
    "equity_frame",
    "fills_frame",
    "find_runs",
    "journal_path",
    "load_run",
    "orders_frame",
    "positions_frame",
    "risk_frame",
]

MODES = ("backtest", "paper", "live")
_UTC = "datetime64[ns, UTC]"


@dataclass
class RunRecords:
    """One run/mode, as frames (column lists in ``docs``/the issue; money also as exact strings in
    ``*_exact`` columns; ``seq`` is the journal record a row came from)."""

    run: str
    mode: str
    orders: pd.DataFrame
    fills: pd.DataFrame
    equity: pd.DataFrame
    positions: pd.DataFrame
    signals: pd.DataFrame
    votes: pd.DataFrame
    outcomes: pd.DataFrame
    weights: pd.DataFrame
    risk_events: pd.DataFrame
    models: pd.DataFrame
    benchmark: pd.DataFrame
    explanations: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    journal_seq: int = -1  # the last portfolio journal record read (the projection's cursor)

    @property
    def run_id(self) -> str:
        return f"{self.run}-{self.mode}"


def journal_path(data_dir: Path, run: str, mode: str, role: str, journal_dir: str = "journal") -> Path:
    base = Path(journal_dir)
    return (base if base.is_absolute() else Path(data_dir) / base) / f"{run}-{mode}-{role}.journal"


def find_runs(data_dir: Path, journal_dir: str = "journal") -> list[tuple[str, str]]:
    """Every (run, mode) with a portfolio journal under ``data_dir``, sorted."""
    base = Path(journal_dir)
    folder = base if base.is_absolute() else Path(data_dir) / base
    out = []
    for p in sorted(folder.glob("*-portfolio.journal")) if folder.is_dir() else []:
        prefix = p.name.removesuffix("-portfolio.journal")
        run, _, mode = prefix.rpartition("-")
        if run and mode:
            out.append((run, mode))
    return out


# --------------------------------------------------------------------------- frames


def _ts(values: list[int]) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(values, dtype=np.int64), utc=True), dtype=_UTC)


def _money(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[str | None]]:
    vals = [r[key] for r in rows]
    return ([float(v) if v is not None else float("nan") for v in vals],
            [dec_str(v) if v is not None else None for v in vals])


def _frame(rows: list[dict[str, Any]], plain: list[str], money: list[str], columns: list[str]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for c in plain:
        data[c] = _ts([r[c] for r in rows]) if c == "ts" else [r[c] for r in rows]
    exact = {}
    for c in money:
        data[c], exact[f"{c}_exact"] = _money(rows, c)
    data.update(exact)
    df = pd.DataFrame(data, columns=[*columns, *exact])
    for c in money:
        df[c] = df[c].astype("float64")
    if "ts" in df:
        df["ts"] = df["ts"].astype(_UTC)
    return df


def orders_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ["order_id", "symbol", "ts", "side", "qty", "price", "limit_price", "reason", "seq"]
    return _frame(rows, ["order_id", "symbol", "ts", "side", "reason", "seq"], ["qty", "price", "limit_price"], cols)


def fills_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ["order_id", "symbol", "ts", "side", "qty", "price", "fee", "seq"]
    return _frame(rows, ["order_id", "symbol", "ts", "side", "seq"], ["qty", "price", "fee"], cols)


def equity_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return _frame(rows, ["ts", "seq"], ["equity"], ["ts", "equity", "seq"])


def risk_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ["ts", "symbol", "order_id", "reason", "action", "detail", "requested_qty", "allowed_qty", "seq"]
    return _frame(rows, cols, [], cols)


def positions_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    money = ["qty", "avg_price", "last_price", "market_value", "unrealized_pnl", "realized_pnl"]
    return _frame(rows, ["symbol"], money, ["symbol", *money])


def _plain(rows: list[tuple[Any, ...]], columns: list[str], floats: tuple[str, ...] = ()) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    if "ts" in df:
        df["ts"] = _ts([int(x) for x in df["ts"]]) if len(df) else pd.Series([], dtype=_UTC)
    for c in floats:
        df[c] = df[c].astype("float64")
    return df


# --------------------------------------------------------------------------- consensus


def _consensus(records: list[Any]) -> dict[str, pd.DataFrame]:
    signals: list[tuple[Any, ...]] = []
    votes: list[tuple[Any, ...]] = []
    outcomes: list[tuple[Any, ...]] = []
    weights: list[tuple[Any, ...]] = []
    for rec in records:
        if rec.kind not in ("decided", "votes", "agent_outcomes", "learned"):
            continue
        e = CODEC.decode(rec.kind, rec.payload)
        if isinstance(e, ConsensusDecided):
            signals.extend((s, e.at, a, d, c, g, n, sc, r) for s, a, c, g, n, r, d, sc in e.signals)
        elif isinstance(e, VotesRecorded):
            votes.extend(e.rows)
        elif isinstance(e, AgentOutcomesScored):
            outcomes.extend(e.rows)
        elif isinstance(e, WeightsLearned):
            times = [ts for _, ts in e.keys] or [ts for _, ts, _ in e.ic]
            at = max(times) if times else np.iinfo(np.int64).min
            weights.extend((at, a, w) for a, w in e.weights)
    return {
        "signals": _plain(signals, ["symbol", "ts", "action", "decided", "confidence", "agreement", "votes", "score",
                                    "reason"], ("confidence", "agreement", "score")),
        "votes": _plain(votes, ["symbol", "ts", "agent", "model_version", "action", "confidence", "score"],
                        ("confidence", "score")),
        "outcomes": _plain(outcomes, ["symbol", "ts", "agent", "model_version", "action", "confidence",
                                      "realized_return", "reward"], ("confidence", "realized_return", "reward")),
        "weights": _plain([w for w in weights if w[0] != np.iinfo(np.int64).min], ["ts", "agent", "weight"], ("weight",)),
    }


# --------------------------------------------------------------------------- models, benchmark, summary


def _summary(data_dir: Path, run: str, mode: str) -> dict[str, Any]:
    path = Path(data_dir) / "summary.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    sections = [v for v in doc.values() if isinstance(v, dict)]
    for s in sections:
        if s.get("run") == run and s.get("mode") == mode:
            return dict(s)
    got = doc.get(mode)
    return dict(got) if isinstance(got, dict) and got.get("run", run) == run else {}


MODEL_COLUMNS = ["agent", "version", "parent", "created", "served", "decision", "metric", "challenger", "champion"]


def _models(registry: Path, keys: KeyStore, summary: dict[str, Any]) -> pd.DataFrame:
    from tinywindow.models.registry import ModelRegistry

    reg = ModelRegistry(registry, keys)
    serving = {a: (v or {}).get("serving") for a, v in (summary.get("agents") or {}).items() if isinstance(v, dict)}
    rows = []
    for agent in reg.agents():
        for info in reg.versions(agent):
            if not info.ok:
                continue
            meta = info.metadata
            promo = meta.get("promotion") or {}
            gate = (meta.get("metrics") or {}).get("gate") or {}
            metric = promo.get("metric")
            decision = "trained" if "promote" not in promo else ("promoted" if promo["promote"] else "rejected")

            def value(side: str, metric: Any = metric, gate: Any = gate) -> float:
                got = (gate.get(side) or {}).get(metric) if metric else None
                return float(got) if isinstance(got, int | float) else float("nan")

            rows.append((agent, info.version, meta.get("parent"), pd.Timestamp(meta["created"]) if meta.get("created") else pd.NaT,
                         serving.get(agent) == info.version, decision, metric, value("challenger"), value("champion")))
    df = pd.DataFrame(rows, columns=MODEL_COLUMNS)
    df["created"] = pd.to_datetime(df["created"], utc=True)
    df["served"] = df["served"].astype(bool)
    return df


def _benchmark(closes: list[tuple[int, str, Decimal]], symbols: list[str], cash: float) -> pd.DataFrame:
    """Equal-weight buy-and-hold of ``symbols`` from the first bar where each has a close."""
    empty = pd.DataFrame({"ts": pd.Series([], dtype=_UTC), "equity": pd.Series([], dtype="float64")})
    if not closes or not symbols:
        return empty
    df = pd.DataFrame(closes, columns=["ts", "symbol", "close"])
    df = df[df["symbol"].isin(symbols)]
    wide = df.assign(close=df["close"].astype(float)).pivot_table(index="ts", columns="symbol", values="close",
                                                                   aggfunc="last").sort_index().ffill()
    wide = wide.dropna()
    if wide.empty:
        return empty
    shares = (cash / len(wide.columns)) / wide.iloc[0]
    equity = (wide * shares).sum(axis=1)
    return pd.DataFrame({"ts": _ts([int(t) for t in wide.index]), "equity": equity.to_numpy(dtype="float64")})


EXPLANATION_COLUMNS = ["symbol", "ts", "agent", "model_version", "feature", "lag", "contribution", "rank"]


def _explanations(folder: Path, keys: KeyStore, orders: pd.DataFrame, votes: pd.DataFrame) -> pd.DataFrame:
    """The explanations the agents journaled (``agent-<name>.twj`` in ``folder``, shared by every
    run of the data dir) of this run's orders' (symbol, ts): of the model version that voted
    there in this run when the run's votes name it."""
    wanted = set(zip(orders["symbol"], _ns(orders["ts"]), strict=True))
    voted = set(zip(votes["symbol"], _ns(votes["ts"]), votes["agent"], votes["model_version"], strict=True))
    voters = {k[:3] for k in voted}
    rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for path in sorted(folder.glob("agent-*.twj")) if wanted and folder.is_dir() else []:
        for rec in read_records(path, keys):
            if rec.kind != ExplanationsRecorded.KIND:
                continue
            e = CODEC.decode_as(ExplanationsRecorded, rec.payload)
            for s, ts, v, f, lag, c, rank in e.rows:
                if (s, ts) in wanted and ((s, ts, e.agent, v) in voted or (s, ts, e.agent) not in voters):
                    rows.setdefault((s, ts, e.agent, v, rank), (s, ts, e.agent, v, f, lag, c, rank))
    out = sorted(rows.values(), key=lambda r: (r[1], r[0], r[2], r[3], r[7]))
    df = _plain(out, EXPLANATION_COLUMNS, ("contribution",))
    return df.astype({"lag": "int64", "rank": "int64"})


def _ns(ts: pd.Series) -> list[int]:
    return [int(t) for t in pd.to_datetime(ts, utc=True).astype("int64")] if len(ts) else []


# --------------------------------------------------------------------------- load_run


def load_run(
    data_dir: Path,
    run: str,
    mode: str,
    keys: KeyStore,
    *,
    risk: RiskConfig | None = None,
    portfolio: PortfolioConfig | None = None,
    journal_dir: str = "journal",
    registry_dir: str = "models",
) -> RunRecords:
    """One run/mode's records (module docstring).  ``keys``: the unlocked keystore (payloads are
    encrypted).  ``risk``/``portfolio``: the sections the run traded with (the starting cash
    comes from ``portfolio``; defaults: the config defaults).  ``ConfigError`` when the run has
    no portfolio journal; ``IntegrityError`` when a journal fails its audit."""
    data_dir = Path(data_dir)
    p_path = journal_path(data_dir, run, mode, "portfolio", journal_dir)
    if not p_path.is_file():
        known = ", ".join(f"{r}/{m}" for r, m in find_runs(data_dir, journal_dir)) or "none"
        raise ConfigError(f"unknown run {run!r} mode {mode!r}: no journal {p_path} (runs found: {known})", key="run")
    replay = PortfolioReplay(risk, portfolio)
    rows = Rows()
    replay.apply_records(read_records(p_path, keys), rows)
    c_path = journal_path(data_dir, run, mode, "consensus", journal_dir)
    consensus = _consensus(read_records(c_path, keys) if c_path.is_file() else [])
    summary = _summary(data_dir, run, mode)
    reg = Path(registry_dir)
    models = _models(reg if reg.is_absolute() else data_dir / reg, keys, summary)
    traded = sorted({f["symbol"] for f in rows.fills}) or sorted({s for _, s, _ in rows.closes})
    orders = orders_frame(rows.orders)
    base = Path(journal_dir)
    explanations = _explanations(base if base.is_absolute() else data_dir / base, keys, orders, consensus["votes"])
    return RunRecords(
        run=run, mode=mode,
        orders=orders, fills=fills_frame(rows.fills), equity=equity_frame(rows.equity),
        positions=positions_frame(replay.positions()),
        signals=consensus["signals"], votes=consensus["votes"], outcomes=consensus["outcomes"],
        weights=consensus["weights"], risk_events=risk_frame(rows.risk_events), models=models,
        benchmark=_benchmark(rows.closes, traded, float(replay.initial_cash)),
        explanations=explanations, summary=summary, journal_seq=replay.seq,
    )
