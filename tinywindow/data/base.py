"""The DataSource protocol and what every source shares: time ranges, selection, replay.

``to_utc_ns``, ``TimeLike`` and ``RELATIVE_TIME_WORDS`` live in ``tinywindow.core.time`` and
are re-exported here for the data sources that import them from this module."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tinywindow.contracts import BARS, Quarantine, ValueRule, Violation, quarantine, validate

# re-exported: the data sources import these from here
from tinywindow.core.time import RELATIVE_TIME_WORDS as RELATIVE_TIME_WORDS
from tinywindow.core.time import TimeLike as TimeLike
from tinywindow.core.time import to_utc_ns as to_utc_ns
from tinywindow.errors import DataError


@runtime_checkable
class DataSource(Protocol):
    """A market-data source: history as BARS tables, and a stream of new BARS batches."""

    name: str

    def symbols(self) -> list[str]: ...

    def fetch(
        self,
        symbols: Sequence[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> pa.Table:
        """BARS for ``symbols`` (all when None) with start <= ts < end."""
        ...

    def stream(self) -> Iterator[pa.Table]:
        """BARS batches in time order (live, or a replay of history)."""
        ...


def select(
    table: pa.Table,
    symbols: Sequence[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
) -> pa.Table:
    """Rows of ``table`` for ``symbols`` with start <= ts < end (vectorised filter)."""
    mask = None
    if symbols is not None:
        sym = table.column("symbol")
        if pa.types.is_dictionary(sym.type):
            sym = sym.cast(sym.type.value_type)
        mask = pc.is_in(sym, value_set=pa.array(list(symbols), pa.string()))
    ts = table.column("ts").cast(pa.int64())
    for bound, op in ((to_utc_ns(start), pc.greater_equal), (to_utc_ns(end), pc.less)):
        if bound is not None:
            m = op(ts, pa.scalar(bound, pa.int64()))
            mask = m if mask is None else pc.and_(mask, m)
    return table if mask is None else table.filter(mask)


def time_order(table: pa.Table) -> pa.Table:
    """Rows sorted by (ts, symbol): the order a live feed delivers them."""
    if table.num_rows == 0:
        return table
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    sym = table.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False)
    order = np.lexsort((sym, ts))
    return table.take(pa.array(order))


def replay(
    table: pa.Table,
    speed: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[pa.Table]:
    """One BARS batch per distinct timestamp, in time order.

    ``speed`` is market seconds per wall-clock second (86400 plays a day of daily bars per
    second); 0 plays as fast as the consumer reads.
    """
    ordered = time_order(table)
    if ordered.num_rows == 0:
        return
    ts = ordered.column("ts").cast(pa.int64()).to_numpy()
    cuts = np.flatnonzero(np.diff(ts)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(ts)]])
    previous: int | None = None
    for a, b in zip(starts, ends, strict=True):
        if speed > 0 and previous is not None:
            sleep((ts[a] - previous) / 1e9 / speed)
        previous = int(ts[a])
        yield ordered.slice(int(a), int(b - a))


def price_bounds(min_price: float, max_price: float, max_volume: float) -> ValueRule:
    """A value rule for BARS: finite prices within [min_price, max_price], volume <= max_volume.

    NaN / inf / non-positive values are already caught by the contract's own rules; this one
    catches the finite absurd (1e-320, 1e300) a source's configuration rules out."""

    def rule(table: pa.Table) -> list[Violation]:
        out = []
        for name in ("open", "high", "low", "close"):
            x = table.column(name).to_numpy()
            with np.errstate(invalid="ignore"):
                bad = np.isfinite(x) & (x > 0) & ((x < min_price) | (x > max_price))
            out.append(Violation(f"price outside [min_price={min_price:g}, max_price={max_price:g}]", name, bad))
        v = table.column("volume").to_numpy()
        with np.errstate(invalid="ignore"):
            out.append(Violation(f"volume above max_volume={max_volume:g}", "volume", np.isfinite(v) & (v > max_volume)))
        return out

    return rule


def _apply_rules(
    table: pa.Table, kept: np.ndarray, rules: Sequence[ValueRule], source: str, on_bad_rows: str
) -> tuple[pa.Table, Quarantine]:
    """Extra value rules on an already validated table; ``kept[i]`` is row i's index in the
    batch as it arrived, so errors and quarantined rows point into the original."""
    found = [v for rule in rules for v in rule(table) if v.mask.any()]
    if not found:
        return table, Quarantine()
    if on_bad_rows == "reject":
        first = min(found, key=lambda v: int(np.argmax(v.mask)))
        row = int(np.argmax(first.mask))
        raise DataError(
            f"BARS: {first.reason} ({int(first.mask.sum())} row(s))",
            source=source,
            row=int(kept[row]),
            column=first.column,
        )
    bad = np.zeros(table.num_rows, dtype=bool)
    reasons: dict[str, int] = {}
    for v in found:
        new = v.mask & ~bad
        if new.any():
            key = f"{v.column}: {v.reason}"
            reasons[key] = reasons.get(key, 0) + int(new.sum())
            bad |= new
    rows = tuple(int(kept[i]) for i in np.flatnonzero(bad))
    return table.filter(pa.array(~bad)), Quarantine(len(rows), reasons, rows)


def admit(
    table: pa.Table,
    source: str,
    on_bad_rows: str = "reject",
    rules: Sequence[ValueRule] = (),
) -> tuple[pa.Table, Quarantine]:
    """Validate a batch entering the system: reject it whole, or quarantine its bad rows.

    ``rules`` are extra value rules of the source (``price_bounds``), applied after the
    contract's own."""
    if on_bad_rows == "quarantine":
        clean, q = quarantine(table, BARS, source=source)
    elif on_bad_rows == "reject":
        clean, q = validate(table, BARS, source=source), Quarantine()
    else:
        raise DataError(f"on_bad_rows must be 'reject' or 'quarantine', got {on_bad_rows!r}", source=source)
    if not rules or clean.num_rows == 0:
        return clean, q
    kept = np.setdiff1d(np.arange(table.num_rows), np.asarray(q.rows, dtype=np.int64))
    clean, extra = _apply_rules(clean, kept, rules, source, on_bad_rows)
    return clean, q.merge(extra)


def bars_from_frame(df: pd.DataFrame, symbol: str) -> pa.Table:
    """A BARS table from a frame with a UTC DatetimeIndex and open..volume columns."""
    n = len(df)
    index = pd.DatetimeIndex(df.index)
    if index.tz is None:
        raise DataError("timestamps must be timezone-aware before conversion", source=symbol)
    sym = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([symbol]))
    cols: list[pa.Array] = [sym, pa.array(index.tz_convert("UTC").as_unit("ns").asi8, BARS.field("ts").type)]
    for k in ("open", "high", "low", "close", "volume"):
        cols.append(pa.array(np.asarray(df[k], dtype=np.float64)))
    return pa.Table.from_arrays(cols, schema=BARS)


def concat_bars(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate BARS tables, unifying their symbol dictionaries."""
    if not tables:
        return BARS.empty_table()
    return pa.concat_tables(tables).unify_dictionaries().combine_chunks()


class HistoricalSource:
    """Base for sources whose whole history is known: fetch selects, stream replays."""

    name: str
    on_bad_rows: str = "reject"
    replay_speed: float = 0.0
    rules: tuple[ValueRule, ...] = ()  # extra value rules applied to every part

    def __init__(self) -> None:
        self._table: pa.Table | None = None
        self.quarantined = Quarantine()

    def parts(self) -> Iterator[tuple[str, pa.Table]]:
        """The full history as raw BARS, in parts named for error messages (a file, a
        dataset); each part is validated on its own so a row number points into it."""
        raise NotImplementedError

    def table(self) -> pa.Table:
        """The validated history (loaded once)."""
        if self._table is None:
            admitted, report = [], Quarantine()
            for label, raw in self.parts():
                clean, q = admit(raw, label, self.on_bad_rows, self.rules)
                admitted.append(clean)
                report = report.merge(q)
            table, q = admit(concat_bars(admitted), self.name, self.on_bad_rows)
            self._table, self.quarantined = table, report.merge(q)
        return self._table

    def symbols(self) -> list[str]:
        sym = self.table().column("symbol")
        return sorted(set(sym.cast(pa.string()).unique().to_pylist()))

    def fetch(
        self,
        symbols: Sequence[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> pa.Table:
        return select(self.table(), symbols, start, end)

    def stream(self) -> Iterator[pa.Table]:
        return replay(self.table(), self.replay_speed)
