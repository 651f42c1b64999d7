"""Walk-forward evaluation: train on [start, t1), skip an embargo, score the next window.

Folds tile the out-of-sample period on one calendar (the union of the symbols' bar times):
fold k trains on everything before its t1 (expanding window), leaves ``embargo`` bars
unused, and validates on the next ``valid_bars`` bars; the next fold's t1 is the end of
this fold's validation.  With the default embargo of ``window`` bars the first validation
decision's observation window holds no training-period row, and no training label uses a
close at or after t1.  The scaler of each fold is fitted on its training rows only.

Every agent is scored next to buy-and-hold on the same decision bars (see ``scoring``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tinywindow.data.base import TimeLike, to_utc_ns
from tinywindow.errors import DataError
from tinywindow.models.evaluation.scoring import Score, pooled, score
from tinywindow.models.predictor import Predictor
from tinywindow.models.windows import Normalizer, Series, full_window_mask, windows_view

ALL = "ALL"  # the equal-weight book over every symbol
BUY_AND_HOLD = "buy_and_hold"


def _iso(ns: int | None) -> str | None:
    return None if ns is None else pd.Timestamp(ns, tz="UTC").date().isoformat()


@dataclass(frozen=True)
class Split:
    """Train on ts < train_end; decide on valid_start <= ts < valid_end."""

    train_end: int
    valid_start: int
    valid_end: int

    def to_json(self) -> dict[str, Any]:
        return {"train_end": _iso(self.train_end), "valid_start": _iso(self.valid_start), "valid_end": _iso(self.valid_end)}

    @property
    def label(self) -> str:
        return f"{_iso(self.valid_start)}..{_iso(self.valid_end)}"


def calendar(series: Sequence[Series]) -> np.ndarray:
    return np.unique(np.concatenate([s.ts for s in series])) if series else np.empty(0, np.int64)


def make_splits(
    series: Sequence[Series],
    first_train_end: TimeLike,
    folds: int = 1,
    valid_bars: int = 504,
    embargo_bars: int = 32,
) -> list[Split]:
    """Consecutive folds starting at ``first_train_end`` (fewer when the data runs out)."""
    cal = calendar(series)
    t1 = to_utc_ns(first_train_end)
    if t1 is None or not len(cal):
        raise DataError("walk-forward needs data and a first training end")
    i1 = int(np.searchsorted(cal, t1, "left"))
    out = []
    for _ in range(folds):
        vs = i1 + embargo_bars
        if vs >= len(cal) - 1:
            break
        ve = vs + valid_bars
        end = int(cal[ve]) if ve < len(cal) else int(cal[-1]) + 1
        out.append(Split(int(cal[i1]) if i1 < len(cal) else int(t1), int(cal[vs]), end))
        if ve >= len(cal):
            break
        i1 = ve
    if not out:
        raise DataError(f"no validation bars after {first_train_end!r} (data ends {_iso(int(cal[-1]))})")
    return out


def training_part(series: Sequence[Series], split: Split) -> list[Series]:
    """Every symbol's rows before ``train_end`` (symbols without any are left out)."""
    out = [s.between(None, split.train_end) for s in series]
    return [s for s in out if len(s)]


@dataclass(frozen=True)
class ValidationSet:
    """Raw windows and forward returns of every decision bar of a split, per symbol."""

    split: Split
    window: int
    symbols: tuple[str, ...]
    ts: tuple[np.ndarray, ...]
    windows: tuple[np.ndarray, ...]  # raw (unscaled) [n, window, F] float32
    fwd: tuple[np.ndarray, ...]

    @classmethod
    def build(cls, series: Sequence[Series], split: Split, window: int) -> ValidationSet:
        syms, tss, wins, fwds = [], [], [], []
        for s in series:
            part = s.between(None, split.valid_end)  # the row at valid_end's close stays unread
            pos = np.arange(len(part))
            ok = (
                full_window_mask(part.x, pos, window)
                & (part.ts >= split.valid_start)
                & np.isfinite(part.fwd_ret)
            )
            idx = np.flatnonzero(ok)
            if not len(idx):
                continue
            syms.append(s.symbol)
            tss.append(part.ts[idx])
            wins.append(np.ascontiguousarray(windows_view(part.x, window)[idx - (window - 1)]))
            fwds.append(part.fwd_ret[idx])
        if not syms:
            raise DataError(f"no symbol has decision bars in {split.label}")
        return cls(split, window, tuple(syms), tuple(tss), tuple(wins), tuple(fwds))

    def actions(self, predictor: Predictor) -> list[np.ndarray]:
        """The predictor's exposure on every decision bar (its scaler applied here).  A ranker
        (``ranks_across_symbols``) is ranked among the symbols of each bar as it votes."""
        if predictor.ranks_across_symbols:
            return self._ranked_actions(predictor)
        out = []
        for w in self.windows:
            probs = predictor.probabilities(predictor.normalizer.apply(w))
            out.append(probs.argmax(axis=1).astype(np.int64) - 1)
        return out

    def _ranked_actions(self, predictor: Predictor) -> list[np.ndarray]:
        from tinywindow.models.xgb.xs import xs_decisions

        scores = [predictor.window_scores(predictor.normalizer.apply(w)) for w in self.windows]
        ts = np.concatenate(self.ts) if self.ts else np.zeros(0, np.int64)
        action, _, _ = xs_decisions(ts, np.concatenate(scores) if scores else np.zeros(0))
        cuts = np.cumsum([len(x) for x in scores])[:-1]
        return [a.astype(np.int64) for a in np.split(action, cuts)]

    def evaluate(self, predictor: Predictor, cost: float) -> dict[str, Score]:
        return self._scores(self.actions(predictor), cost)

    def buy_and_hold(self, cost: float) -> dict[str, Score]:
        return self._scores([np.ones(len(f), dtype=np.int64) for f in self.fwd], cost)

    def _scores(self, actions: list[np.ndarray], cost: float) -> dict[str, Score]:
        per = {sym: (ts, a, r) for sym, ts, a, r in zip(self.symbols, self.ts, actions, self.fwd, strict=True)}
        out = {sym: score(a, r, cost) for sym, (_ts, a, r) in per.items()}
        out[ALL] = pooled(per, cost)
        return out


@dataclass
class Report:
    """Walk-forward results: one row per (fold, agent or buy-and-hold, symbol or ALL)."""

    cost: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    folds: list[dict[str, Any]] = field(default_factory=list)

    def add(self, fold: int, split: Split, agent: str, scores: dict[str, Score], **extra: Any) -> None:
        for symbol, sc in scores.items():
            self.rows.append({"fold": fold, "period": split.label, "agent": agent, "symbol": symbol, **sc.to_json(), **extra})

    def summary(self) -> list[dict[str, Any]]:
        """Per agent, the ALL rows averaged over folds."""
        frame = pd.DataFrame([r for r in self.rows if r["symbol"] == ALL])
        if frame.empty:
            return []
        g = frame.groupby("agent", sort=False)
        out = g[["sharpe", "hit_rate", "turnover", "total_return"]].mean().reset_index()
        out["folds"] = g.size().to_numpy()
        return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in out.to_dict("records")]

    def to_json(self) -> dict[str, Any]:
        return {"cost": self.cost, "folds": self.folds, "rows": self.rows, "summary": self.summary()}

    def markdown(self, symbols: bool = True) -> str:
        """The report as Markdown tables (per fold and symbol, then the fold average)."""
        lines = [
            "| period | agent | symbol | Sharpe | hit rate | turnover/yr | return | long | short |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            if not symbols and r["symbol"] != ALL:
                continue
            lines.append(
                f"| {r['period']} | {r['agent']} | {r['symbol']} | {_f(r['sharpe'], 2)} | {_pct(r['hit_rate'])} "
                f"| {_f(r['turnover'], 1)} | {_pct(r['total_return'])} | {_pct(r['long'])} | {_pct(r['short'])} |"
            )
        lines += ["", "| agent | folds | mean Sharpe (ALL) | mean hit rate | mean turnover/yr | mean return |", "|---|---:|---:|---:|---:|---:|"]
        for r in self.summary():
            lines.append(
                f"| {r['agent']} | {r['folds']} | {_f(r['sharpe'], 2)} | {_pct(r['hit_rate'])} | {_f(r['turnover'], 1)} | {_pct(r['total_return'])} |"
            )
        return "\n".join(lines)


def _f(v: Any, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def _pct(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{100 * v:.1f}%"


Trainer = Callable[[int, str, list[Series], Normalizer, Split, "ValidationSet"], Predictor]


def run(
    series: Sequence[Series],
    agents: Sequence[str],
    splits: Sequence[Split],
    window: int,
    cost: float,
    trainer: Trainer,
    fit_normalizer: Callable[[list[Series]], Normalizer],
    on_fold: Callable[[int, str, Predictor, dict[str, Score]], None] | None = None,
) -> Report:
    """Train every agent on every fold with ``trainer`` and score it out of sample."""
    report = Report(cost)
    for k, split in enumerate(splits, start=1):
        train = training_part(series, split)
        normalizer = fit_normalizer(train)
        vset = ValidationSet.build(series, split, window)
        report.folds.append({"fold": k, **split.to_json(), "symbols": list(vset.symbols)})
        report.add(k, split, BUY_AND_HOLD, vset.buy_and_hold(cost))
        for agent in agents:
            predictor = trainer(k, agent, train, normalizer, split, vset)
            scores = vset.evaluate(predictor, cost)
            report.add(k, split, agent, scores)
            if on_fold is not None:
                on_fold(k, agent, predictor, scores)
    return report
