"""``tinywindow agents evaluate``'s logic: stored versions scored out of sample, per agent and
for their consensus, next to buy-and-hold, with the deflated Sharpe ratio.

Out of sample: every version's signed manifest records its training data range
(``data.train.end``, the last training row).  The evaluation period starts ``embargo`` bars
after the latest of these (so no evaluated agent has seen a label, nor has a training row
in its first observation window) and runs to the end of the data.  All rows are scored on
the same bars (``decisions.book``): the agents' votes as target exposures, the consensus
replayed bar by bar with online weights and ``no_decision`` (``decisions``), buy-and-hold
long every bar.

Deflated Sharpe ratio: the number of configurations tried, N, is every stored version of
every agent (each was a model someone could have picked) plus every Tune trial stored
under ``agents.tune_dir`` (one ``params.json`` per trial); the variance of the trials'
Sharpe ratios is that of the versions' signed validation Sharpe ratios (equal-weight book,
annualised, turned per-day).  With fewer than two, the variance is unknown and taken as 0:
the DSR is then the PSR against 0 (said in the report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tinywindow.backtest import decisions as dec
from tinywindow.consensus.config import ConsensusConfig
from tinywindow.core.time import to_utc_ns
from tinywindow.errors import DataError
from tinywindow.models.evaluation.deflated import trial_sharpe_variance
from tinywindow.models.predictor import Predictor
from tinywindow.models.windows import to_series


@dataclass(frozen=True)
class Trials:
    """The configurations tried (for the deflated Sharpe ratio) and how they were counted."""

    versions: int
    tune_trials: int
    sharpes: tuple[float, ...]  # annualised validation Sharpe ratios of the versions

    @property
    def n(self) -> int:
        return max(1, self.versions + self.tune_trials)

    @property
    def sr_variance(self) -> float:
        return trial_sharpe_variance(list(self.sharpes))

    def describe(self) -> str:
        var = (f"variance of {len(self.sharpes)} validation Sharpe ratios {self.sr_variance:.2e}/day"
               if len(self.sharpes) > 1 else "variance unknown (< 2 validation Sharpe ratios): 0, DSR = PSR")
        return f"N = {self.n} configurations tried ({self.versions} stored versions + {self.tune_trials} Tune trials); {var}"


def count_trials(version_metadata: Sequence[Mapping[str, Any]], tune_dir: Path | None) -> Trials:
    sharpes = []
    for m in version_metadata:
        s = (((m.get("metrics") or {}).get("validation") or {}).get("ALL") or {}).get("sharpe")
        if isinstance(s, int | float) and np.isfinite(s):
            sharpes.append(float(s))
    tune = sum(1 for _ in tune_dir.rglob("params.json")) if tune_dir is not None and tune_dir.is_dir() else 0
    return Trials(len(version_metadata), tune, tuple(sharpes))


def train_end(metadata: Mapping[str, Any]) -> int:
    """The last training bar of a version (ns), from its signed manifest."""
    end = ((metadata.get("data") or {}).get("train") or {}).get("end")
    ns = to_utc_ns(end) if end else None
    if ns is None:
        raise DataError(f"version {metadata.get('agent')} {metadata.get('version')} records no training end (data.train.end)")
    return int(ns)


@dataclass
class Evaluation:
    start: int
    end: int
    results: list[dec.BookResult]
    trials: Trials
    versions: dict[str, str]
    train_ends: dict[str, str]
    outcomes_learned: int
    weights: dict[str, float]
    no_decision: str
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        period = f"{_iso(self.start)}..{_iso(self.end - 1)}"
        head = [
            f"out of sample: {period} (after the latest training end + embargo; "
            + ", ".join(f"{a} {v} trained to {self.train_ends[a]}" for a, v in self.versions.items()) + ")",
            f"consensus: online weights from {self.outcomes_learned} outcomes "
            + ", ".join(f"{a} {w:.2f}" for a, w in self.weights.items()) + f"; no decision -> {self.no_decision}",
            self.trials.describe(),
            "",
        ]
        return "\n".join(head + [dec.markdown(self.results)] + [f"\n{n}" for n in self.notes])

    def to_json(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start), "end": _iso(self.end - 1), "versions": self.versions, "train_ends": self.train_ends,
            "trials": {"n": self.trials.n, "versions": self.trials.versions, "tune_trials": self.trials.tune_trials,
                       "sr_variance_per_day": self.trials.sr_variance},
            "consensus": {"outcomes_learned": self.outcomes_learned, "weights": self.weights, "no_decision": self.no_decision},
            "rows": [_json_row(r.row()) for r in self.results],
        }


def _json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").date().isoformat()


def evaluate(
    features: pa.Table,
    predictors: Mapping[str, Predictor],
    train_ends: Mapping[str, int],
    consensus: ConsensusConfig,
    cost: float,
    trials: Trials,
    *,
    embargo_bars: int,
    no_decision: str = "flat",
    end: int | None = None,
) -> Evaluation:
    """Score each predictor and their consensus out of sample (see the module docstring)."""
    if not predictors:
        raise DataError("nothing to evaluate: no agent has a version")
    series = to_series(features)
    cal = np.unique(np.concatenate([s.ts for s in series]))
    last_train = max(train_ends.values())
    i0 = int(np.searchsorted(cal, last_train, "right")) + embargo_bars
    stop = int(cal[-1]) + 1 if end is None else int(end)
    if i0 >= len(cal) or int(cal[i0]) >= stop:
        raise DataError(f"no bars after the latest training end {_iso(last_train)} (+{embargo_bars} bars embargo)")
    start = int(cal[i0])
    lead = int(cal[max(0, i0 - 2 * max(p.window for p in predictors.values()) - 1)])
    ts = features.column("ts").cast(pa.int64()).to_numpy()
    part = features.filter(pa.array((ts >= lead) & (ts < stop)))
    votes = {a: p.predict(part) for a, p in predictors.items()}
    votes = {a: v.filter(pa.array(v.column("ts").cast(pa.int64()).to_numpy() >= start)) for a, v in votes.items()}
    n, var = trials.n, trials.sr_variance
    results = [dec.book(a, dec.vote_exposures(v, a), series, start, stop, cost, n, var) for a, v in votes.items()]
    run = dec.consensus_exposures(pa.concat_tables(votes.values()), list(predictors), consensus, series, no_decision)
    results.append(dec.book(dec.CONSENSUS, run.exposures, series, start, stop, cost, n, var))
    ones = {s.symbol: (s.ts, np.ones(len(s.ts), np.int64)) for s in series}
    results.append(dec.book(dec.BUY_AND_HOLD, ones, series, start, stop, cost, n, var))
    notes = []
    if len(predictors) < consensus.quorum:
        notes.append(f"note: {len(predictors)} agent(s) cannot reach the consensus quorum of {consensus.quorum}: "
                     "the consensus never decides")
    return Evaluation(
        start, stop, results, trials, {a: p.version for a, p in predictors.items()},
        {a: _iso(t) for a, t in train_ends.items()}, run.outcomes_learned, run.weights, no_decision, notes,
    )
