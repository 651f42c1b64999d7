"""Out-of-sample evaluation of agents and of their consensus, traded as the engine trades.

An agent's vote is a target exposure (-1 short, 0 flat, +1 long).  The consensus is the
``ConsensusBook`` the ConsensusActor runs (``voting.decide`` over each agent's latest vote,
weights learned online from realized outcomes in bar order, as the pipeline feeds them:
the outcome of the decision at bar t is learned after the decision at bar t+1).  A decided
signal is a target exposure; a "no decision" (SIGNALS ``decided`` False) does what
``portfolio.no_decision`` says: ``flat`` closes the position, ``keep`` holds the previous
target.

Scores (``scoring``): per symbol, p_t = a_t r_t - cost |a_t - a_(t-1)|; the book is the
equal-weight mean over the symbols trading that day; Sharpe, hit rate and turnover as in
``scoring``; max drawdown of the compounded book (a negative fraction); buy-and-hold is
a_t = +1 on the same bars.  Each row also carries the deflated Sharpe ratio of its book
returns for the number of configurations tried (``deflated``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tinywindow.backtest.metrics import max_drawdown
from tinywindow.consensus.config import ConsensusConfig
from tinywindow.consensus.state import ConsensusBook
from tinywindow.contracts import OUTCOMES, validate
from tinywindow.errors import DataError
from tinywindow.models.evaluation.deflated import Deflated, deflated_sharpe
from tinywindow.models.evaluation.scoring import Score, score, strategy_returns
from tinywindow.models.windows import Series

BUY_AND_HOLD = "buy_and_hold"
CONSENSUS = "consensus"
Exposures = dict[str, tuple[np.ndarray, np.ndarray]]  # symbol -> (ts ns, exposure) in time order


def _strings(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)


def decided_mask(signals: pa.Table) -> np.ndarray:
    """SIGNALS ``decided`` (a decision, possibly flat) vs a fallback; tables from before the
    column existed: a non-zero action or a hold majority (the agents voted flat)."""
    if "decided" in signals.column_names:
        return np.asarray(signals.column("decided").to_numpy(zero_copy_only=False), dtype=bool)
    action = signals.column("action").to_numpy()
    head = [str(r).split(";", 1)[0] for r in signals.column("reason").to_pylist()]
    return (action != 0) | np.array([not h.startswith("HOLD (") or h.startswith("HOLD (hold majority") for h in head], bool)


def targets(signals: pa.Table, no_decision: str = "flat", previous: Mapping[str, int] | None = None) -> dict[str, int]:
    """Target exposure per symbol of one decision time's SIGNALS."""
    if no_decision not in ("flat", "keep"):
        raise DataError(f"no_decision must be 'flat' or 'keep', got {no_decision!r}")
    prev = previous or {}
    dec = decided_mask(signals)
    out = {}
    for sym, act, d in zip(_strings(signals.column("symbol")), signals.column("action").to_pylist(), dec, strict=True):
        out[str(sym)] = int(act) if d else (int(prev.get(str(sym), 0)) if no_decision == "keep" else 0)
    return out


def vote_exposures(votes: pa.Table, agent: str) -> Exposures:
    """Each symbol's exposure series from one agent's VOTES (the vote is the target)."""
    sym = _strings(votes.column("symbol"))
    ts = votes.column("ts").cast(pa.int64()).to_numpy()
    act = votes.column("action").to_numpy().astype(np.int64)
    mine = _strings(votes.column("agent")) == agent
    out: Exposures = {}
    for s in sorted(set(sym[mine])):
        m = mine & (sym == s)
        order = np.argsort(ts[m], kind="stable")
        out[str(s)] = (ts[m][order], act[m][order])
    return out


@dataclass
class ConsensusRun:
    exposures: Exposures
    signals: pa.Table
    outcomes_learned: int
    weights: dict[str, float]


def consensus_exposures(
    votes: pa.Table,
    agents: Sequence[str],
    cfg: ConsensusConfig,
    series: Sequence[Series],
    no_decision: str = "flat",
    learn: bool = True,
) -> ConsensusRun:
    """Replay VOTES bar by bar through a ``ConsensusBook`` (see the module docstring)."""
    fwd = {s.symbol: pd.Series(s.fwd_ret, index=s.ts) for s in series}
    book = ConsensusBook(cfg, list(agents))
    ts_all = votes.column("ts").cast(pa.int64()).to_numpy()
    order = np.argsort(ts_all, kind="stable")
    times, starts = np.unique(ts_all[order], return_index=True)
    bounds = [*starts[1:], len(order)]
    rows: dict[str, tuple[list[int], list[int]]] = {}
    last: dict[str, int] = {}
    parts, pending = [], None
    learned = 0
    for at, lo, hi in zip(times, starts, bounds, strict=True):
        book.submit_votes(votes.take(pa.array(order[lo:hi])))
        sig = book.decide(int(at))
        parts.append(sig)
        tg = targets(sig, no_decision, last)
        for sym, a in tg.items():
            t_list, a_list = rows.setdefault(sym, ([], []))
            t_list.append(int(at))
            a_list.append(a)
            last[sym] = a
        if learn and pending is not None:
            learned += _learn(book, pending, fwd)
        pending = sig
    exposures = {s: (np.asarray(t, np.int64), np.asarray(a, np.int64)) for s, (t, a) in sorted(rows.items())}
    signals = pa.concat_tables(parts) if parts else pa.table({})
    return ConsensusRun(exposures, signals, learned, dict(book.weights))


def _learn(book: ConsensusBook, signals: pa.Table, fwd: Mapping[str, pd.Series]) -> int:
    """Feed the realized outcome (close t -> close t+1) of each decision in ``signals``."""
    if signals.num_rows == 0:
        return 0
    sym = _strings(signals.column("symbol"))
    ts = signals.column("ts").cast(pa.int64()).to_numpy()
    ret = np.array([float(fwd[s].get(t, np.nan)) if s in fwd else np.nan for s, t in zip(sym, ts, strict=True)])
    ok = np.isfinite(ret)
    if not ok.any():
        return 0
    table = validate(pa.table({
        "symbol": pa.array([str(s) for s in sym[ok]], pa.string()),
        "ts": pa.array(ts[ok], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "action": pa.array(signals.column("action").to_numpy()[ok], pa.int8()),
        "realized_return": pa.array(ret[ok], pa.float64()),
    }), OUTCOMES, source="evaluation")
    book.learn(table)
    return int(ok.sum())


@dataclass(frozen=True)
class BookResult:
    """One strategy's out-of-sample book."""

    name: str
    score: Score
    max_drawdown: float
    returns: np.ndarray  # the book's per-bar returns
    deflated: Deflated | None = None

    def row(self) -> dict[str, Any]:
        d = self.deflated
        return {
            "name": self.name, "sharpe": self.score.sharpe, "max_drawdown": self.max_drawdown,
            "turnover": self.score.turnover, "hit_rate": self.score.hit_rate, "total_return": self.score.total_return,
            "bars": self.score.bars, "long": self.score.long, "short": self.score.short,
            "psr": None if d is None else d.psr, "dsr": None if d is None else d.dsr,
        }


def book(
    name: str, exposures: Exposures, series: Sequence[Series], start: int, end: int, cost: float,
    trials: int | None = None, sr_variance: float = 0.0,
) -> BookResult:
    """Score ``exposures`` on every bar of ``series`` with start <= ts < end and a known
    forward return (exposure 0 where the strategy had no target)."""
    frames, acts, fwds = [], [], []
    for s in series:
        m = (s.ts >= start) & (s.ts < end) & np.isfinite(s.fwd_ret)
        if not m.any():
            continue
        ts, r = s.ts[m], s.fwd_ret[m]
        a = np.zeros(len(ts))
        if s.symbol in exposures:
            et, ea = exposures[s.symbol]
            pos = np.searchsorted(et, ts)
            hit = (pos < len(et)) & (et[np.minimum(pos, len(et) - 1)] == ts)
            a[hit] = ea[pos[hit]]
        frames.append(pd.Series(strategy_returns(a, r, cost), index=ts))
        acts.append(a)
        fwds.append(r)
    if not frames:
        raise DataError(f"no bars to evaluate {name} on between {pd.Timestamp(start, tz='UTC')} and {pd.Timestamp(end, tz='UTC')}")
    returns = pd.concat(frames, axis=1).mean(axis=1).sort_index().to_numpy()
    a_all, r_all = np.concatenate(acts), np.concatenate(fwds)
    per = score(a_all, r_all, cost)  # hit rate, long/short over every (symbol, bar)
    book_score = score(np.ones(len(returns)), returns, 0.0)  # Sharpe / return of the book itself
    sc = Score(
        sharpe=book_score.sharpe, hit_rate=per.hit_rate,
        turnover=float(np.mean([score(a, r, cost).turnover for a, r in zip(acts, fwds, strict=True)])),
        total_return=book_score.total_return, bars=len(returns), long=per.long, short=per.short,
    )
    dfl = None
    if trials is not None:
        try:
            dfl = deflated_sharpe(returns, trials, sr_variance)
        except DataError:
            dfl = None  # a flat book has no Sharpe ratio to deflate
    return BookResult(name, sc, max_drawdown(returns), returns, dfl)


def markdown(results: Sequence[BookResult]) -> str:
    lines = [
        "| strategy | Sharpe | max drawdown | turnover/yr | hit rate | return | long | short | PSR | DSR |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        r = res.row()
        lines.append(
            f"| {r['name']} | {_f(r['sharpe'])} | {_pct(r['max_drawdown'])} | {_f(r['turnover'], 1)} | {_pct(r['hit_rate'])} "
            f"| {_pct(r['total_return'])} | {_pct(r['long'])} | {_pct(r['short'])} | {_f(r['psr'], 3)} | {_f(r['dsr'], 3)} |"
        )
    return "\n".join(lines)


def _f(v: Any, digits: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def _pct(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{100 * v:.1f}%"


# --------------------------------------------------------------------------- the engine path


@dataclass
class EngineRun:
    """What one strategy did through ``TradingEngine``: equity at each bar's close."""

    name: str
    ts: np.ndarray
    equity: np.ndarray
    orders: int
    decisions: dict[str, int]  # long / short / flat / no decision
    outcomes_learned: int
    weights: dict[str, float]
    signals: pa.Table | None = None  # every SIGNALS table decided, when ``trade`` was asked to keep them

    @property
    def returns(self) -> np.ndarray:
        e = np.asarray(self.equity, dtype=np.float64)
        return e[1:] / e[:-1] - 1.0 if len(e) > 1 else np.zeros(0)


def solo(cfg: ConsensusConfig) -> ConsensusConfig:
    """A consensus of one agent that passes its vote through (quorum 1, no thresholds)."""
    return cfg.model_copy(update={"quorum": 1, "threshold": 0.0, "max_disagreement": 1.0})


def trade(
    name: str,
    bars: pa.Table,
    votes: pa.Table,
    agents: Sequence[str],
    consensus: ConsensusConfig,
    engine: Any,
    start: int,
    end: int,
    learn: bool = True,
    keep_signals: bool = False,
) -> EngineRun:
    """Replay ``bars`` (warm-up before ``start``: marks and volatility only) and, from
    ``start`` to ``end``, each bar's VOTES -> ``ConsensusBook.decide`` -> the engine's
    ``apply_signals`` (as the PortfolioActor: the bar first, then the signals), feeding the
    engine's realized outcomes back to the book's weights as the pipeline does.

    ``engine`` is a fresh ``execution.engine.TradingEngine`` (passed in: this layer does not
    choose the account's configuration)."""
    from tinywindow.execution.tables import bar_rows, outcomes_table, signal_rows

    book_ = ConsensusBook(consensus, list(agents))
    vts = votes.column("ts").cast(pa.int64()).to_numpy()
    rows = bar_rows(bars, "evaluation")
    by_ts: dict[int, list[Any]] = {}
    for r in rows:
        if r.ts < end:
            by_ts.setdefault(r.ts, []).append(r)
    v_order = np.argsort(vts, kind="stable")
    v_times, v_start = np.unique(vts[v_order], return_index=True)
    v_at = {int(t): v_order[lo:hi] for t, lo, hi in zip(v_times, v_start, [*v_start[1:], len(v_order)], strict=True)}
    ts_out, eq_out = [], []
    orders = learned = seq = 0
    counts = {"long": 0, "short": 0, "flat": 0, "no decision": 0}
    kept: list[pa.Table] = []
    for ts in sorted(by_ts):
        if ts < start:
            engine.on_bars(by_ts[ts])
            continue
        idx = v_at.get(ts)
        if idx is not None and len(idx):
            book_.submit_votes(votes.take(pa.array(idx)))
            sig = book_.decide(ts)
            if keep_signals:
                kept.append(sig)
            engine.on_bars(by_ts[ts])
            dec = decided_mask(sig)
            for a, d in zip(sig.column("action").to_pylist(), dec, strict=True):
                counts["no decision" if not d else "long" if a > 0 else "short" if a < 0 else "flat"] += 1
            events = engine.apply_signals(signal_rows(sig, "evaluation"))
            orders += sum(1 for e in events if type(e).__name__ == "OrderSubmitted")
        else:
            engine.on_bars(by_ts[ts])
        realized = engine.outcomes_since(seq)
        if realized:
            seq = max(o.seq for o in realized) + 1
            if learn:
                book_.learn(outcomes_table(realized))
                learned += len(realized)
        ts_out.append(ts)
        eq_out.append(float(engine.portfolio.equity()))
    return EngineRun(name, np.asarray(ts_out, np.int64), np.asarray(eq_out), orders, counts, learned, dict(book_.weights),
                     pa.concat_tables(kept) if kept else None)
