"""The promotion gate (champion / challenger): pure domain code, no Ray, no clock.

A retrain at bar t produces a *challenger* trained on data ending ``embargo`` bars before
the gate's evaluation window, the most recent ``eval_bars`` decision bars up to t
(``gate_split``): the challenger has never seen them, and with the default embargo of one
observation window no training label or window overlaps them.  The serving version (the
*champion*) and the challenger are scored on that window the same way
(``walkforward.ValidationSet`` actions, ``scoring.pooled`` over the equal-weight book, plus
the book's max drawdown: ``score``).  ``decide`` promotes the challenger only if

    challenger.metric > champion.metric + margin    and
    challenger.max_drawdown <= champion.max_drawdown + max_drawdown_worsening

(with no champion, the challenger is promoted; a tie keeps the champion: no churn for
nothing).  The decision carries both scores, so the caller journals them whatever the
outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from tinywindow.errors import DataError
from tinywindow.models.config import AgentConfig, PromotionConfig
from tinywindow.models.evaluation import walkforward as wf
from tinywindow.models.evaluation.scoring import pooled, strategy_returns
from tinywindow.models.predictor import Predictor
from tinywindow.models.windows import Series


def embargo(agents: AgentConfig) -> int:
    """Bars between a challenger's training data and the gate window (default: the window)."""
    e = agents.promotion.embargo_bars
    return agents.window if e is None else e


def gate_split(series: Sequence[Series], agents: AgentConfig) -> wf.Split:
    """The gate window: the last ``eval_bars`` bars of the calendar with a known next
    return, after ``embargo`` bars that follow the challenger's training data."""
    cal = wf.calendar(series)
    p = agents.promotion
    need = p.eval_bars + embargo(agents) + 1  # + the last bar, whose next return is unknown
    if len(cal) < need + agents.window * 4:
        raise DataError(f"{len(cal)} bars are too few for a gated retrain (need > {need + agents.window * 4})")
    valid_start = len(cal) - 1 - p.eval_bars
    return wf.Split(int(cal[valid_start - embargo(agents)]), int(cal[valid_start]), int(cal[-1]) + 1)


@dataclass(frozen=True)
class GateScore:
    """One model on the gate window (the equal-weight book over its symbols)."""

    version: str | None
    sharpe: float
    total_return: float
    max_drawdown: float  # fraction of peak equity, >= 0
    hit_rate: float | None
    turnover: float
    bars: int

    def metric(self, name: str) -> float:
        return float(getattr(self, name))

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def max_drawdown(returns: np.ndarray) -> float:
    equity = np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))
    if not len(equity):
        return 0.0
    peak = np.maximum.accumulate(np.maximum(equity, 1.0))
    return float(np.max(1.0 - equity / peak))


def score(vset: wf.ValidationSet, predictor: Predictor, cost: float) -> GateScore:
    """``predictor`` on the gate window, as the walk-forward scores it."""
    actions = vset.actions(predictor)
    per = {sym: (ts, a, r) for sym, ts, a, r in zip(vset.symbols, vset.ts, actions, vset.fwd, strict=True)}
    sc = pooled(per, cost)
    book = pd.concat(
        [pd.Series(strategy_returns(a, r, cost), index=pd.Index(ts)) for ts, a, r in per.values()], axis=1
    ).mean(axis=1).sort_index().to_numpy()
    hit = sc.hit_rate if np.isfinite(sc.hit_rate) else None
    return GateScore(predictor.version, sc.sharpe, sc.total_return, max_drawdown(book), hit, sc.turnover, sc.bars)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    metric: str
    champion: GateScore | None
    challenger: GateScore

    def to_json(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "metric": self.metric,
            "champion": None if self.champion is None else self.champion.to_json(),
            "challenger": self.challenger.to_json(),
        }


def decide(champion: GateScore | None, challenger: GateScore, cfg: PromotionConfig) -> Decision:
    """Promote ``challenger`` over ``champion`` or not (see the module docstring)."""
    m = cfg.metric
    if champion is None:
        return Decision(True, "no champion", m, None, challenger)
    need = champion.metric(m) + cfg.margin
    if not challenger.metric(m) > need:
        return Decision(False, f"{m} {challenger.metric(m):.4f} <= champion {champion.metric(m):.4f} + margin {cfg.margin}",
                        m, champion, challenger)
    worst = champion.max_drawdown + cfg.max_drawdown_worsening
    if challenger.max_drawdown > worst:
        return Decision(False, f"max drawdown {challenger.max_drawdown:.4f} > champion {champion.max_drawdown:.4f} "
                        f"+ bound {cfg.max_drawdown_worsening}", m, champion, challenger)
    return Decision(True, f"{m} {challenger.metric(m):.4f} > champion {champion.metric(m):.4f} + margin {cfg.margin}",
                    m, champion, challenger)
