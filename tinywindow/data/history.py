"""An append-only, per-symbol-ordered history of bars with fast tails and ranges.

History is kept as a symbol-major *base* table plus a *tail* of batches appended since the
last compaction, so a streaming append costs O(batch) and queries compact lazily.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from tinywindow.contracts import BARS, symbol_codes
from tinywindow.data.base import TimeLike, concat_bars, select
from tinywindow.errors import DataError


def symbol_major(table: pa.Table) -> pa.Table:
    """Rows grouped by symbol (stable: time order within a symbol is kept)."""
    if table.num_rows < 2:
        return table
    codes = symbol_codes(table)
    names = np.asarray(table.column("symbol").combine_chunks().dictionary.to_pylist(), dtype=object)
    # Order groups by symbol name, not by dictionary code, so the layout is deterministic.
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(names)] = np.arange(len(names))
    keys = rank[codes]
    if np.all(keys[1:] >= keys[:-1]):
        return table
    return table.take(pa.array(np.argsort(keys, kind="stable")))


def tail_indices(codes: np.ndarray, n: int) -> np.ndarray:
    """Row indices of the last ``n`` rows of each group in a grouped (symbol-major) array."""
    if len(codes) == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1]]))
    ends = np.concatenate([starts[1:], [len(codes)]])
    first = np.maximum(starts, ends - n)
    lengths = ends - first
    offsets = np.repeat(first - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(int(lengths.sum())) + offsets


class BarHistory:
    """Validated BARS for one source, grouped by symbol, time-ordered within a symbol."""

    def __init__(self, source: str = "history", compact_rows: int = 50_000) -> None:
        self.source = source
        self.compact_rows = compact_rows
        self._base = BARS.empty_table()
        self._tail: list[pa.Table] = []
        self._tail_rows = 0
        self._last_ts: dict[str, int] = {}
        self.version = 0  # bumps on every append that adds rows

    # ------------------------------------------------------------------ writes
    def append(self, bars: pa.Table, *, stale: str = "drop") -> tuple[pa.Table, int]:
        """Add validated bars; returns (rows added, rows not after their symbol's last bar).

        Rows at or before a symbol's last known bar are dropped and counted with
        ``stale="drop"`` (a replay over loaded history) or rejected as a whole batch with
        ``stale="error"``.
        """
        if bars.num_rows == 0:
            return bars, 0
        symbols = bars.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False)
        ts = bars.column("ts").cast(pa.int64()).to_numpy()
        floor = np.iinfo(np.int64).min
        prev = np.fromiter((self._last_ts.get(s, floor) for s in symbols), np.int64, len(symbols))
        fresh = ts > prev
        n_stale = int((~fresh).sum())
        if n_stale and stale == "error":
            row = int(np.argmax(~fresh))
            raise DataError(
                f"BARS: bar not after the last stored bar of {symbols[row]!r}",
                source=self.source,
                row=row,
                column="ts",
            )
        added = bars if n_stale == 0 else bars.filter(pa.array(fresh))
        if added.num_rows == 0:
            return added, n_stale
        for s, t in zip(symbols[fresh].tolist(), ts[fresh].tolist(), strict=True):
            self._last_ts[s] = t  # increasing per symbol within a validated batch
        self._tail.append(added)
        self._tail_rows += added.num_rows
        self.version += 1
        if self._tail_rows >= max(self.compact_rows, self._base.num_rows // 20):
            self._compact()
        return added, n_stale

    def _compact(self) -> None:
        if self._tail:
            self._base = symbol_major(concat_bars([self._base, *self._tail]))
            self._tail, self._tail_rows = [], 0

    # ------------------------------------------------------------------ reads
    @property
    def num_rows(self) -> int:
        return self._base.num_rows + self._tail_rows

    def symbols(self) -> list[str]:
        return sorted(self._last_ts)

    def last_ts(self) -> dict[str, int]:
        return dict(self._last_ts)

    def table(self) -> pa.Table:
        """Every bar, symbol-major."""
        self._compact()
        return self._base

    def window(self, n: int, symbols: Sequence[str] | None = None) -> pa.Table:
        """The last ``n`` bars of each symbol, symbol-major."""
        if n < 1:
            raise DataError(f"window length must be >= 1, got {n}", source=self.source)
        table = self.table() if symbols is None else select(self.table(), symbols)
        if table.num_rows == 0:
            return table
        return table.take(pa.array(tail_indices(symbol_codes(table), n)))

    def latest(self, symbols: Sequence[str] | None = None) -> pa.Table:
        """The newest bar of each symbol."""
        return self.window(1, symbols)

    def range(
        self,
        start: TimeLike = None,
        end: TimeLike = None,
        symbols: Sequence[str] | None = None,
    ) -> pa.Table:
        """Bars with start <= ts < end, symbol-major."""
        return select(self.table(), symbols, start, end)
