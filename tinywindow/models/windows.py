"""FEATURES tables as the arrays the agents learn from: per-symbol series, windows, scaling.

Every agent is a function of the last ``window`` feature rows of one symbol.  This module
turns a FEATURES table into:

* ``Series``: one symbol's rows in time order, its raw features and its *forward* return
  (close t -> close t+1, from the next row's ``ret_1``; NaN on the last row);
* ``Normalizer``: per-feature mean / std fitted on training rows only and stored with the
  model, so a model never sees statistics of the period it is evaluated on;
* ``WindowIndex``: for every row of a table, whether a full window of finite features ends
  there, and the windows themselves as a zero-copy strided view (no Python loop per row).

A window ending at row t holds rows t-window+1 .. t of the same symbol: nothing after t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from tinywindow.contracts import symbol_codes
from tinywindow.data.base import TimeLike, to_utc_ns
from tinywindow.errors import DataError

CLIP = 10.0  # standardized features are clipped to [-CLIP, CLIP]


def feature_names(table: pa.Table) -> list[str]:
    """The feature columns of a FEATURES table (every column after symbol and ts)."""
    return [n for n in table.column_names if n not in ("symbol", "ts")]


def symbol_strings(table: pa.Table) -> np.ndarray:
    col = table.column("symbol")
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)


def feature_matrix(table: pa.Table, names: Sequence[str]) -> np.ndarray:
    """[rows, features] float32 in the given column order (raises naming a missing one)."""
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise DataError(f"FEATURES: missing feature column {missing[0]!r}", column=missing[0])
    out = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        out[:, j] = table.column(name).to_numpy()
    return out


def symbol_major_order(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Row order grouping symbols together, time-ordered within each, and each row's code."""
    codes = symbol_codes(table)
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    order = np.lexsort((ts, codes))
    return order, codes


@dataclass(frozen=True)
class Series:
    """One symbol's rows in time order."""

    symbol: str
    ts: np.ndarray  # int64 ns, increasing
    x: np.ndarray  # [T, F] float32, raw features (NaN in warm-up)
    fwd_ret: np.ndarray  # [T] float64, simple return close t -> close t+1 (NaN on the last row)

    def between(self, start: TimeLike = None, end: TimeLike = None) -> Series:
        """Rows with start <= ts < end.

        When the range cuts the series, the last kept row's forward return is dropped (NaN):
        it would need the close of a bar outside the range, so labels come only from inside.
        """
        a, b = to_utc_ns(start), to_utc_ns(end)
        lo = 0 if a is None else int(np.searchsorted(self.ts, a, "left"))
        hi = len(self.ts) if b is None else int(np.searchsorted(self.ts, b, "left"))
        fwd = self.fwd_ret[lo:hi]
        if hi < len(self.ts) and hi > lo:
            fwd = fwd.copy()
            fwd[-1] = np.nan
        return Series(self.symbol, self.ts[lo:hi], self.x[lo:hi], fwd)

    def tail(self, n: int) -> Series:
        """The last ``n`` rows."""
        lo = max(len(self.ts) - n, 0)
        return Series(self.symbol, self.ts[lo:], self.x[lo:], self.fwd_ret[lo:])

    def __len__(self) -> int:
        return len(self.ts)


def to_series(table: pa.Table, names: Sequence[str] | None = None) -> list[Series]:
    """Split a FEATURES table into per-symbol series (sorted by symbol name).

    The forward return of row t is ``expm1(ret_1)`` of the symbol's next row, so the table
    must hold consecutive bars (as ``features.compute`` returns them).
    """
    if "ret_1" not in table.column_names:
        raise DataError("FEATURES: column 'ret_1' is needed for forward returns", column="ret_1")
    names = list(names) if names is not None else feature_names(table)
    if table.num_rows == 0:
        return []
    order, codes = symbol_major_order(table)
    x = feature_matrix(table, names)[order]
    ts = table.column("ts").cast(pa.int64()).to_numpy()[order]
    ret1 = table.column("ret_1").to_numpy().astype(np.float64)[order]
    symbols = symbol_strings(table)[order]
    codes = codes[order]
    cuts = np.flatnonzero(np.diff(codes)) + 1
    out = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(codes)], strict=True):
        fwd = np.full(b - a, np.nan)
        fwd[:-1] = np.expm1(ret1[a + 1 : b])
        out.append(Series(str(symbols[a]), ts[a:b], x[a:b], fwd))
    return sorted(out, key=lambda s: s.symbol)


@dataclass(frozen=True)
class Normalizer:
    """Per-feature standardization fitted on training rows (stored with the model)."""

    names: tuple[str, ...]
    mean: np.ndarray  # [F] float32
    std: np.ndarray  # [F] float32

    @classmethod
    def fit(cls, names: Sequence[str], rows: np.ndarray) -> Normalizer:
        finite = rows[np.isfinite(rows).all(axis=1)]
        if len(finite) < 2:
            raise DataError("not enough finite feature rows to fit the scaler (need >= 2)")
        mean = finite.mean(axis=0, dtype=np.float64)
        std = finite.std(axis=0, dtype=np.float64)
        std[~(std > 1e-12)] = 1.0
        return cls(tuple(names), mean.astype(np.float32), std.astype(np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Standardized, clipped float32 (NaN stays NaN)."""
        z = (x - self.mean) / self.std
        return np.clip(z, -CLIP, CLIP).astype(np.float32, copy=False)

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Normalizer:
        return cls(
            tuple(data["names"]),
            np.asarray(data["mean"], dtype=np.float32),
            np.asarray(data["std"], dtype=np.float32),
        )


def fit_normalizer(series: Sequence[Series], names: Sequence[str]) -> Normalizer:
    return Normalizer.fit(names, np.concatenate([s.x for s in series], axis=0))


def full_window_mask(z: np.ndarray, pos: np.ndarray, window: int) -> np.ndarray:
    """True for rows that end a window of ``window`` finite rows of the same symbol.

    ``z`` is [rows, F] in symbol-major time order and ``pos`` each row's position within its
    symbol; counts of non-finite rows come from a cumulative sum (vectorized).
    """
    bad = (~np.isfinite(z).all(axis=1)).astype(np.int64)
    c = np.concatenate([[0], np.cumsum(bad)])
    n = len(bad)
    t = np.arange(n)
    lo = np.maximum(t - window + 1, 0)
    bad_in_window = c[t + 1] - c[lo]
    return (pos >= window - 1) & (bad_in_window == 0)


def windows_view(z: np.ndarray, window: int) -> np.ndarray:
    """Zero-copy [rows - window + 1, window, F] view: entry k is rows k .. k + window - 1."""
    if len(z) < window:
        return np.empty((0, window, z.shape[1]), dtype=z.dtype)
    return sliding_window_view(z, (window, z.shape[1]))[:, 0]


@dataclass(frozen=True)
class WindowIndex:
    """Windows for the rows of a FEATURES table, in symbol-major order.

    ``rows`` are the input-table row numbers of the windows that exist (one per row that ends
    a full window), ``ends`` the matching last row in the sorted array ``z``.
    """

    z: np.ndarray  # [rows, F] standardized, symbol-major time order
    rows: np.ndarray  # input row number of each usable window
    ends: np.ndarray  # index into z of each usable window's last row
    window: int

    @classmethod
    def build(
        cls,
        table: pa.Table,
        normalizer: Normalizer,
        window: int,
        latest_only: bool = False,
    ) -> WindowIndex:
        order, codes = symbol_major_order(table)
        z = normalizer.apply(feature_matrix(table, normalizer.names)[order])
        sorted_codes = codes[order]
        n = len(order)
        starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]] if n else np.zeros(0, bool)
        first = np.maximum.accumulate(np.where(starts, np.arange(n), 0)) if n else starts
        pos = np.arange(n) - first
        ok = full_window_mask(z, pos, window)
        if latest_only and n:
            last = np.r_[sorted_codes[1:] != sorted_codes[:-1], True]
            ok &= last
        ends = np.flatnonzero(ok)
        return cls(z, order[ends], ends, window)

    def __len__(self) -> int:
        return len(self.ends)

    def batch(self, lo: int, hi: int) -> np.ndarray:
        """Windows lo..hi as a contiguous [B, window, F] float32 array (one gather)."""
        view = windows_view(self.z, self.window)
        return np.ascontiguousarray(view[self.ends[lo:hi] - (self.window - 1)])


def series_windows(
    series: Sequence[Series], normalizer: Normalizer, window: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Standardized windows and forward returns of every labelled row of ``series``.

    Returns (windows [N, window, F] view-backed copy, forward returns [N], and for each series
    the row positions used), keeping only rows with a full finite window and a finite
    forward return.
    """
    xs, ys, used = [], [], []
    for s in series:
        z = normalizer.apply(s.x)
        pos = np.arange(len(s))
        ok = full_window_mask(z, pos, window) & np.isfinite(s.fwd_ret)
        idx = np.flatnonzero(ok)
        used.append(idx)
        if len(idx):
            xs.append(windows_view(z, window)[idx - (window - 1)])
            ys.append(s.fwd_ret[idx])
    if not xs:
        f = len(normalizer.names)
        return np.empty((0, window, f), np.float32), np.empty(0), used
    return np.concatenate(xs), np.concatenate(ys), used


def data_range(series: Sequence[Series]) -> dict[str, Any]:
    """First / last timestamp (ISO, UTC), rows and symbols: recorded in model manifests."""
    import pandas as pd

    lo = min((int(s.ts[0]) for s in series if len(s)), default=None)
    hi = max((int(s.ts[-1]) for s in series if len(s)), default=None)
    return {
        "start": None if lo is None else pd.Timestamp(lo, tz="UTC").isoformat(),
        "end": None if hi is None else pd.Timestamp(hi, tz="UTC").isoformat(),
        "rows": int(sum(len(s) for s in series)),
        "symbols": [s.symbol for s in series],
    }
