"""Cross-sectional (XS) view of FEATURES: one bar across the whole universe at once.

* ``xs_normalize``: each feature replaced, per timestamp, by its cross-sectional
  rank-gaussian value (average ranks among the finite values of that ts,
  ``ndtri((rank - 0.5) / n)``).  Only rows of the same ts are read (no look-ahead); the
  transform is idempotent (ranks of rank-gaussian values are the same ranks) and the output
  is marked (schema metadata ``tw.xs = rank-gauss``) so a marked table is passed through.
* ``to_panel``: FEATURES as dense [T, N, F] arrays plus each row's forward return.
* ``information_coefficient`` / ``table_ic``: the per-bar Spearman rank correlation of a
  score with the next bar's return, its mean, spread and t-statistic.

Every kernel is vectorised: one sort per feature, no loop per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.special import ndtri

from tinywindow.errors import DataError
from tinywindow.models.windows import (
    feature_matrix,
    feature_names,
    symbol_major_order,
    symbol_strings,
)

XS_KEY = b"tw.xs"
XS_RANK_GAUSS = b"rank-gauss"


def group_ranks(groups: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties averaged) of ``values`` within each group, and the number
    of finite values of the row's group.  Non-finite values get rank NaN and are not counted.

    ``groups`` are non-negative integer codes (any order); one lexsort, no loop.
    """
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    n = len(values)
    ranks = np.full(n, np.nan)
    finite = np.isfinite(values)
    counts = np.zeros(n, dtype=np.int64)
    idx = np.flatnonzero(finite)
    if len(idx) == 0:
        return ranks, counts
    g, v = groups[idx], values[idx]
    order = np.lexsort((v, g))
    gs, vs = g[order], v[order]
    m = len(order)
    pos = np.arange(m)
    new_group = np.r_[True, gs[1:] != gs[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, pos, 0))
    new_tie = new_group | np.r_[True, vs[1:] != vs[:-1]]
    tie_start = np.maximum.accumulate(np.where(new_tie, pos, 0))
    end_tie = np.r_[new_tie[1:], True]
    tie_end = np.minimum.accumulate(np.where(end_tie, pos, m)[::-1])[::-1]
    rank_sorted = (tie_start + tie_end) / 2.0 - group_start + 1.0
    group_count = np.bincount(gs, minlength=int(gs.max()) + 1)
    out = np.empty(m)
    out[order] = rank_sorted
    ranks[idx] = out
    counts[idx] = group_count[g]
    return ranks, counts


def rank_gauss(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-group rank-gaussian values (NaN stays NaN; a group with < 2 finite values -> 0)."""
    ranks, counts = group_ranks(groups, values)
    out = np.full(len(ranks), np.nan)
    ok = np.isfinite(ranks)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[ok] = ndtri((ranks[ok] - 0.5) / counts[ok])
    out[ok & (counts < 2)] = 0.0
    return out


def ts_codes(table: pa.Table) -> np.ndarray:
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    return np.unique(ts, return_inverse=True)[1].reshape(-1)


def is_xs_normalized(table: pa.Table) -> bool:
    meta = table.schema.metadata or {}
    return meta.get(XS_KEY) == XS_RANK_GAUSS


def xs_normalize(features: pa.Table, names: Sequence[str] | None = None) -> pa.Table:
    """Each feature column (``names``, default all) replaced per ts by its cross-sectional
    rank-gaussian value, as float32; same schema and row order, marked ``tw.xs``.

    Non-finite inputs (NaN, +-inf) come out NaN.  Idempotent: a marked table is returned as
    it is, and re-ranking unmarked output gives the same values (to float32 precision).
    """
    if is_xs_normalized(features):
        return features
    cols = list(names) if names is not None else feature_names(features)
    missing = [n for n in cols if n not in features.column_names]
    if missing:
        raise DataError(f"FEATURES: missing feature column {missing[0]!r}", column=missing[0])
    groups = ts_codes(features) if features.num_rows else np.zeros(0, np.int64)
    out = features
    for name in cols:
        i = out.schema.get_field_index(name)
        field = out.schema.field(i)
        values = np.asarray(features.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)
        z = rank_gauss(groups, values).astype(np.float32)
        out = out.set_column(i, pa.field(name, pa.float32(), field.nullable, field.metadata), pa.array(z))
    meta = dict(features.schema.metadata or {})
    meta[XS_KEY] = XS_RANK_GAUSS
    return out.replace_schema_metadata(meta)


@dataclass(frozen=True)
class Panel:
    """FEATURES as dense arrays: bars x symbols (x features)."""

    ts: np.ndarray  # [T] int64 ns, increasing
    symbols: list[str]  # [N], sorted
    x: np.ndarray  # [T, N, F] float32, NaN where a symbol has no row at that ts
    fwd: np.ndarray  # [T, N] float64, close t -> close of the symbol's next row; NaN when missing
    names: tuple[str, ...] = ()


def panel_index(table: pa.Table) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Unique ts, sorted symbols, and each row's (ts index, symbol index)."""
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    uts, ti = np.unique(ts, return_inverse=True)
    syms = symbol_strings(table).astype(str)
    usym, si = np.unique(syms, return_inverse=True)
    return uts, [str(s) for s in usym], ti.reshape(-1), si.reshape(-1)


def forward_returns(table: pa.Table) -> np.ndarray:
    """Each row's simple return to the symbol's next row (``expm1`` of its ``ret_1``), NaN on
    a symbol's last row."""
    if "ret_1" not in table.column_names:
        raise DataError("FEATURES: column 'ret_1' is needed for forward returns", column="ret_1")
    order, codes = symbol_major_order(table)
    ret1 = np.asarray(table.column("ret_1").to_numpy(zero_copy_only=False), dtype=np.float64)[order]
    c = codes[order]
    fwd_sorted = np.full(len(order), np.nan)
    if len(order) > 1:
        same = c[1:] == c[:-1]
        fwd_sorted[:-1] = np.where(same, np.expm1(ret1[1:]), np.nan)
    fwd = np.empty(len(order))
    fwd[order] = fwd_sorted
    return fwd


def to_panel(features: pa.Table, names: Sequence[str] | None = None) -> Panel:
    """Dense [T, N, F] features and [T, N] forward returns of a FEATURES table."""
    cols = tuple(names) if names is not None else tuple(feature_names(features))
    uts, syms, ti, si = panel_index(features)
    x = np.full((len(uts), len(syms), len(cols)), np.nan, dtype=np.float32)
    x[ti, si] = feature_matrix(features, cols)
    fwd = np.full((len(uts), len(syms)), np.nan)
    fwd[ti, si] = forward_returns(features)
    return Panel(uts.astype(np.int64), syms, x, fwd, cols)


@dataclass(frozen=True)
class ICResult:
    """Per-bar Spearman IC: mean, standard deviation, t-statistic, bars used, per bar (NaN
    where a bar had fewer than ``min_names`` names)."""

    mean: float
    std: float
    t_stat: float
    n_bars: int
    per_bar: np.ndarray


def information_coefficient(score: np.ndarray, fwd: np.ndarray, min_names: int = 5) -> ICResult:
    """Per-bar Spearman rank correlation of ``score`` [T, N] with ``fwd`` [T, N] over the
    names where both are finite (average ranks for ties, as ``scipy.stats.spearmanr``)."""
    score = np.asarray(score, dtype=np.float64)
    fwd = np.asarray(fwd, dtype=np.float64)
    if score.shape != fwd.shape or score.ndim != 2:
        raise DataError(f"information_coefficient: shapes {score.shape} and {fwd.shape} must be equal [T, N]")
    t, n = score.shape
    both = np.isfinite(score) & np.isfinite(fwd)
    groups = np.repeat(np.arange(t), n)
    ra, _ = group_ranks(groups, np.where(both, score, np.nan).ravel())
    rb, _ = group_ranks(groups, np.where(both, fwd, np.nan).ravel())
    ra, rb = ra.reshape(t, n), rb.reshape(t, n)
    count = both.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # ranks run 1..k over the k valid names of a bar: their mean is (k + 1) / 2
        ma = mb = ((count + 1) / 2.0)[:, None]
        da = np.where(both, ra - ma, 0.0)
        db = np.where(both, rb - mb, 0.0)
        cov = (da * db).sum(axis=1)
        var = np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
        per_bar = np.where((count >= max(min_names, 2)) & (var > 0), cov / var, np.nan)
    ok = per_bar[np.isfinite(per_bar)]
    k = len(ok)
    mean = float(ok.mean()) if k else float("nan")
    std = float(ok.std(ddof=1)) if k > 1 else float("nan")
    t_stat = mean / std * np.sqrt(k) if k > 1 and std > 0 else float("nan")
    return ICResult(mean, std, float(t_stat), k, per_bar)


def table_ic(votes_or_signals: pa.Table, features: pa.Table, column: str = "score", min_names: int = 5) -> ICResult:
    """IC of ``column`` of a (symbol, ts, score) table against the next-bar returns in
    ``features``; rows whose (symbol, ts) is not in ``features`` are ignored."""
    uts, syms, ti, si = panel_index(features)
    fwd = np.full((len(uts), len(syms)), np.nan)
    fwd[ti, si] = forward_returns(features)
    vts = votes_or_signals.column("ts").cast(pa.int64()).to_numpy()
    vsym = symbol_strings(votes_or_signals).astype(str)
    a = np.clip(np.searchsorted(uts, vts), 0, max(len(uts) - 1, 0))
    sym_arr = np.asarray(syms, dtype=str)
    b = np.clip(np.searchsorted(sym_arr, vsym), 0, max(len(syms) - 1, 0))
    known = np.zeros(len(vts), dtype=bool)
    if len(uts) and len(syms):
        known = (uts[a] == vts) & (sym_arr[b] == vsym)
    score = np.full_like(fwd, np.nan)
    values = np.asarray(votes_or_signals.column(column).to_numpy(zero_copy_only=False), dtype=np.float64)
    score[a[known], b[known]] = values[known]
    return information_coefficient(score, fwd, min_names)
