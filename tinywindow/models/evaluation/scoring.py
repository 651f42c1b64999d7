"""Out-of-sample scores of a sequence of exposures (pure numpy; the walk-forward report).

For decisions a_t in {-1, 0, +1} taken at the close of bar t and the bar's forward return
r_t (close t -> close t+1):

* strategy return  p_t = a_t r_t - cost |a_t - a_(t-1)|   (a_(-1) = 0: start flat)
* Sharpe           mean(p) / std(p) x sqrt(252), 0 when p has no variance
* hit rate         share of bars with a_t != 0 where a_t r_t > 0 (NaN when never exposed)
* turnover         sum |a_t - a_(t-1)| per year (1.0 = the whole book traded once a year)

Buy-and-hold is the same with a_t = +1 throughout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 252


def strategy_returns(actions: np.ndarray, fwd: np.ndarray, cost: float) -> np.ndarray:
    a = np.asarray(actions, dtype=np.float64)
    change = np.abs(np.diff(a, prepend=0.0))
    return a * np.asarray(fwd, dtype=np.float64) - cost * change


def sharpe(returns: np.ndarray, periods: int = PERIODS_PER_YEAR) -> float:
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return 0.0
    sd = r.std(ddof=1)
    return 0.0 if not sd > 1e-12 else float(r.mean() / sd * np.sqrt(periods))


def hit_rate(actions: np.ndarray, fwd: np.ndarray) -> float:
    a = np.asarray(actions, dtype=np.float64)
    exposed = a != 0
    if not exposed.any():
        return float("nan")
    return float(np.mean(a[exposed] * np.asarray(fwd)[exposed] > 0))


def turnover(actions: np.ndarray, periods: int = PERIODS_PER_YEAR) -> float:
    a = np.asarray(actions, dtype=np.float64)
    if len(a) == 0:
        return 0.0
    return float(np.abs(np.diff(a, prepend=0.0)).sum() / (len(a) / periods))


@dataclass(frozen=True)
class Score:
    sharpe: float
    hit_rate: float
    turnover: float
    total_return: float  # compounded strategy return over the period
    bars: int
    long: float  # share of bars long / short
    short: float

    def to_json(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else (round(v, 4) if isinstance(v, float) else v))
            for k, v in self.__dict__.items()
        }


def score(actions: np.ndarray, fwd: np.ndarray, cost: float) -> Score:
    a = np.asarray(actions, dtype=np.float64)
    p = strategy_returns(a, fwd, cost)
    return Score(
        sharpe=sharpe(p),
        hit_rate=hit_rate(a, fwd),
        turnover=turnover(a),
        total_return=float(np.expm1(np.log1p(p).sum())) if len(p) else 0.0,
        bars=len(a),
        long=float(np.mean(a > 0)) if len(a) else 0.0,
        short=float(np.mean(a < 0)) if len(a) else 0.0,
    )


def pooled(
    per_symbol: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], cost: float
) -> Score:
    """An equal-weight book over symbols: per bar, the mean strategy return of the symbols
    trading that day (keyed by timestamp); hit rate and long/short shares over all bars,
    turnover the mean of the symbols'."""
    frames, acts, fwds = [], [], []
    for ts, a, r in per_symbol.values():
        frames.append(pd.Series(strategy_returns(a, r, cost), index=pd.Index(ts)))
        acts.append(np.asarray(a, dtype=np.float64))
        fwds.append(np.asarray(r, dtype=np.float64))
    if not frames:
        return Score(0.0, float("nan"), 0.0, 0.0, 0, 0.0, 0.0)
    book = pd.concat(frames, axis=1).mean(axis=1).sort_index().to_numpy()
    a_all, r_all = np.concatenate(acts), np.concatenate(fwds)
    return Score(
        sharpe=sharpe(book),
        hit_rate=hit_rate(a_all, r_all),
        turnover=float(np.mean([turnover(a) for a in acts])),
        total_return=float(np.expm1(np.log1p(book).sum())),
        bars=len(book),
        long=float(np.mean(a_all > 0)),
        short=float(np.mean(a_all < 0)),
    )


def mean_of(scores: Sequence[Score]) -> dict[str, float]:
    """Average of fold scores (Sharpe, hit rate, turnover)."""
    if not scores:
        return {}
    return {
        "sharpe": float(np.mean([s.sharpe for s in scores])),
        "hit_rate": float(np.nanmean([s.hit_rate for s in scores])) if any(np.isfinite(s.hit_rate) for s in scores) else float("nan"),
        "turnover": float(np.mean([s.turnover for s in scores])),
    }
