"""Look-ahead analysis: does any feature, vote or signal at time t change when the data after
some later time c is taken away?

The decision path (BARS -> FEATURES -> each agent's VOTES -> consensus SIGNALS) runs once on
the full history and once per *cut*: the history truncated after a seeded random bar time c
(rows with ts <= c kept).  Every value stamped at or before c is then compared between the
cut run and the full run.  A causal pipeline gives the same values; any difference is a row
that would change if future data were absent, i.e. look-ahead (the same idea as freqtrade's
``lookahead-analysis``, applied to every stage).

Tolerances: features are float32 computed from float64 bars; recursive filters (EMAs,
Wilder smoothing) and rolling sums from cumulative sums run over a shorter array in the cut
run, which may round differently in the last float32 bits.  Values are equal when
``|cut - full| <= atol + rtol |full|`` with rtol 1e-5 (about 80 float32 ulps) and atol 1e-6
(for values near 0); NaN equals NaN.  A look-ahead moves a value by the size of a market
move (1e-3 and more), far above these.  Vote actions and signal actions / vote counts must
match exactly; confidences and agreements use the same tolerance.

Signals are compared for the last ``signal_bars`` decision times up to each cut (deciding
at every bar of a long history per cut would be slow; the consensus reads only each
agent's latest vote, so a short stretch shows whether it reads votes after ``at``).  The
full run hands ``decide`` every vote of the full history, so a decider that read votes
stamped after ``at`` would be caught.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tinywindow.consensus.config import ConsensusConfig
from tinywindow.consensus.voting import decide
from tinywindow.data import features as feats
from tinywindow.errors import DataError
from tinywindow.models.predictor import Predictor
from tinywindow.models.windows import symbol_strings

RTOL = 1e-5
ATOL = 1e-6
MAX_LISTED = 200  # differences kept per stage and cut (all are counted)

FeatureFn = Callable[[pa.Table], pa.Table]
Decider = Callable[[pa.Table, int], pa.Table]  # (VOTES, at ns) -> SIGNALS


@dataclass(frozen=True)
class Leak:
    """One value at ``ts`` <= ``cut`` that differs between the cut and the full run."""

    stage: str  # "feature" | "vote" | "signal"
    cut: int
    symbol: str
    ts: int
    column: str  # feature name, "<agent>.action" / "<agent>.confidence", or a SIGNALS column
    full: Any
    truncated: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "cut": _iso(self.cut), "symbol": self.symbol, "ts": _iso(self.ts),
            "column": self.column, "full": _plain(self.full), "truncated": _plain(self.truncated),
        }


@dataclass
class Report:
    """What was compared and every difference found."""

    cuts: list[int]
    rtol: float
    atol: float
    compared: dict[str, int] = field(default_factory=lambda: {"feature": 0, "vote": 0, "signal": 0})
    found: dict[str, int] = field(default_factory=lambda: {"feature": 0, "vote": 0, "signal": 0})
    leaks: list[Leak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.found.values())

    def by_column(self) -> list[tuple[str, str, int, str]]:
        """(stage, column, differences, first time) for every leaking column."""
        out: dict[tuple[str, str], list[int]] = {}
        for leak in self.leaks:
            out.setdefault((leak.stage, leak.column), []).append(leak.ts)
        return [(s, c, len(v), _iso(min(v))) for (s, c), v in sorted(out.items())]

    def table(self, rows: int = 20) -> str:
        lines = [
            f"look-ahead check: {len(self.cuts)} cut(s) at " + ", ".join(_iso(c) for c in self.cuts),
            f"tolerance |cut - full| <= {self.atol:g} + {self.rtol:g} |full| (NaN == NaN); actions exact",
            "",
            f"{'stage':<8} {'values compared':>16} {'differences':>12}",
        ]
        for stage in ("feature", "vote", "signal"):
            lines.append(f"{stage:<8} {self.compared[stage]:>16,} {self.found[stage]:>12,}")
        if self.ok:
            lines += ["", "no look-ahead found"]
            return "\n".join(lines)
        lines += ["", "LOOK-AHEAD FOUND (values at or before the cut that change without the future):",
                  f"{'stage':<8} {'column':<28} {'listed':>7}  first ts"]
        lines += [f"{s:<8} {c:<28} {n:>7}  {t}" for s, c, n, t in self.by_column()]
        lines += ["", f"{'stage':<8} {'cut':<10} {'symbol':<8} {'ts':<10} {'column':<24} {'full':>14} {'cut run':>14}"]
        for leak in self.leaks[:rows]:
            lines.append(
                f"{leak.stage:<8} {_iso(leak.cut):<10} {leak.symbol:<8} {_iso(leak.ts):<10} {leak.column:<24} "
                f"{_fmt(leak.full):>14} {_fmt(leak.truncated):>14}"
            )
        if len(self.leaks) > rows:
            lines.append(f"... {len(self.leaks) - rows} more listed ({sum(self.found.values())} in all)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "cuts": [_iso(c) for c in self.cuts], "rtol": self.rtol, "atol": self.atol,
            "compared": self.compared, "found": self.found, "leaks": [leak.to_json() for leak in self.leaks],
        }


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").date().isoformat()


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and not np.isfinite(v) else v


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float | np.floating) else str(v)


def _ts(table: pa.Table) -> np.ndarray:
    return table.column("ts").cast(pa.int64()).to_numpy()


def choose_cuts(bars: pa.Table, cuts: int, seed: int, min_bars: int = 2 * feats.WARMUP_BARS) -> list[int]:
    """``cuts`` distinct bar times drawn with ``seed`` from the calendar, leaving ``min_bars``
    of history before the first possible cut and at least one bar after the last."""
    cal = np.unique(_ts(bars))
    lo, hi = max(min_bars, 0), len(cal) - 1  # a cut keeps cal[:i + 1] and drops the rest
    if cuts < 1 or hi - lo < 1:
        raise DataError(f"look-ahead check needs >= 1 cut and more than {lo + 1} bar times (have {len(cal)})")
    rng = np.random.default_rng(seed)
    idx = rng.choice(np.arange(lo, hi), size=min(cuts, hi - lo), replace=False)
    return [int(cal[i]) for i in sorted(idx)]


def close(full: np.ndarray, cut: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Elementwise equality within tolerance, NaN == NaN."""
    f = np.asarray(full, dtype=np.float64)
    c = np.asarray(cut, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isclose(c, f, rtol=rtol, atol=atol, equal_nan=True)


def _keyed(table: pa.Table) -> pd.DataFrame:
    df = table.drop_columns([n for n in ("symbol", "ts") if n in table.column_names]).to_pandas()
    df.index = pd.MultiIndex.from_arrays([symbol_strings(table), _ts(table)], names=["symbol", "ts"])
    return df


def compare_tables(
    stage: str, cut: int, full: pa.Table, truncated: pa.Table, exact: Sequence[str], approx: Sequence[str],
    rtol: float, atol: float, prefix: str = "",
) -> tuple[int, int, list[Leak]]:
    """Compare rows keyed by (symbol, ts) with ts <= ``cut``; a key in only one run counts
    as a difference (column "<row>").  Returns (values compared, differences, listed)."""
    f = _keyed(full.filter(pc.less_equal(full.column("ts").cast(pa.int64()), cut)))
    t = _keyed(truncated.filter(pc.less_equal(truncated.column("ts").cast(pa.int64()), cut)))
    leaks: list[Leak] = []
    found = 0
    only = f.index.symmetric_difference(t.index)
    for sym, ts in only[:MAX_LISTED]:
        leaks.append(Leak(stage, cut, str(sym), int(ts), f"{prefix}<row>", (sym, ts) in f.index, (sym, ts) in t.index))
    found += len(only)
    both = f.index.intersection(t.index)
    f, t = f.loc[both], t.loc[both]
    compared = len(both) * (len(exact) + len(approx))
    for col in [*exact, *approx]:
        a, b = f[col].to_numpy(), t[col].to_numpy()
        same = (a == b) if col in exact else close(a, b, rtol, atol)
        bad = np.flatnonzero(~same)
        found += len(bad)
        for i in bad[: max(0, MAX_LISTED - len(leaks))]:
            sym, ts = both[i]
            leaks.append(Leak(stage, cut, str(sym), int(ts), prefix + col, a[i], b[i]))
    return compared, found, leaks


def consensus_decider(agents: Sequence[str], cfg: ConsensusConfig, weights: Mapping[str, float] | None = None) -> Decider:
    """``voting.decide`` with fixed weights (1 each by default)."""
    w = dict(weights or {a: 1.0 for a in agents})

    def run(votes: pa.Table, at: int) -> pa.Table:
        return decide(votes, at, list(agents), w, cfg)[0]

    return run


def _signals(decider: Decider, votes: pa.Table, times: Sequence[int] | np.ndarray) -> pa.Table:
    parts = [decider(votes, int(at)) for at in times]
    parts = [p for p in parts if p.num_rows]
    if not parts:
        return pa.table({"symbol": pa.array([], pa.string()), "ts": pa.array([], pa.int64())})
    return pa.concat_tables(parts)


def check(
    bars: pa.Table,
    predictors: Sequence[Predictor] = (),
    *,
    cuts: int = 5,
    seed: int = 0,
    consensus: ConsensusConfig | Decider | None = None,
    feature_fn: FeatureFn = feats.compute,
    rtol: float = RTOL,
    atol: float = ATOL,
    signal_bars: int = 20,
    min_bars: int = 2 * feats.WARMUP_BARS,
    cut_times: Sequence[int] | None = None,
) -> Report:
    """Run the decision path on ``bars`` and on ``cuts`` truncated copies and compare.

    ``predictors`` vote on the features (none: features only); signals are compared when
    there are predictors, decided by ``consensus`` (a ``ConsensusConfig`` for
    ``voting.decide`` with equal weights, default config when None, or any decider).
    ``cut_times`` replaces the seeded draw.
    """
    cut_list = list(cut_times) if cut_times is not None else choose_cuts(bars, cuts, seed, min_bars)
    report = Report(cut_list, rtol, atol)
    ts_all = _ts(bars)
    full_f = feature_fn(bars)
    names = [n for n in full_f.column_names if n not in ("symbol", "ts")]
    full_v = {p.agent: p.predict(full_f) for p in predictors}
    decider: Decider | None = None
    if predictors:
        decider = consensus if callable(consensus) else consensus_decider(
            [p.agent for p in predictors], consensus if isinstance(consensus, ConsensusConfig) else ConsensusConfig()
        )
    all_votes = pa.concat_tables(full_v.values()) if full_v else None
    cal = np.unique(ts_all)
    for cut in cut_list:
        part = bars.filter(pa.array(ts_all <= cut))
        cut_f = feature_fn(part)
        _add(report, "feature", compare_tables("feature", cut, full_f, cut_f, [], names, rtol, atol))
        cut_v = {}
        for p in predictors:
            cut_v[p.agent] = p.predict(cut_f)
            _add(report, "vote", compare_tables(
                "vote", cut, full_v[p.agent], cut_v[p.agent], ["action"], ["confidence"], rtol, atol,
                prefix=f"{p.agent}.",
            ))
        if decider is not None and all_votes is not None:
            times = cal[cal <= cut][-signal_bars:]
            full_s = _signals(decider, all_votes, times)
            cut_s = _signals(decider, pa.concat_tables(cut_v.values()), times)
            exact = [c for c in ("action", "votes", "decided") if c in full_s.column_names]
            approx = [c for c in ("confidence", "agreement") if c in full_s.column_names]
            _add(report, "signal", compare_tables("signal", cut, full_s, cut_s, exact, approx, rtol, atol))
    return report


def _add(report: Report, stage: str, result: tuple[int, int, list[Leak]]) -> None:
    compared, found, leaks = result
    report.compared[stage] += compared
    report.found[stage] += found
    report.leaks.extend(leaks)
