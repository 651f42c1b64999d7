"""A file's timestamp column as UTC nanoseconds: one format per file, never a guess per row.

Text is read with the configured ``ts_format``, or with the one format (from pandas'
guesses on sample values, both day-first and month-first) that reads *every* row; when two
formats read every row differently (``01/02/2020`` and nothing later to tell) the file is
refused.  Integer columns are epochs whose unit is configured or follows from their
magnitude (a band of 1973-2262 per unit, so seconds are never read as nanoseconds).  Naive
times are wall times in the source's ``timezone``; DST gaps and overlaps follow
``dst_policy``.  Times with UTC offsets are exact; different offsets in one file follow
``mixed_offsets``.
"""

from __future__ import annotations

import warnings
import zoneinfo
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.tseries.api import guess_datetime_format

from tinywindow.data.base import RELATIVE_TIME_WORDS
from tinywindow.errors import ConfigError, DataError

NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
# Plausible epoch magnitudes per unit: 1e8 s is 1973-03-03, 9.2e9 s is 2261-07-16.
EPOCH_BANDS = {u: (10**8 * 1000**i, 92 * 10**8 * 1000**i) for i, u in enumerate(("s", "ms", "us", "ns"))}
# pandas' nanosecond range, less two days so localising can never overflow.
_NS_LIMIT = 2**63 - 1 - 2 * 86_400 * 10**9
_OFFSET_TAIL = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)$"
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%f", "%p", "%X", "%T", "%R", "%c", "%s")


def has_time_of_day(fmt: str) -> bool:
    return any(d in fmt for d in _TIME_DIRECTIVES)


def _fits_dayfirst(fmt: str, dayfirst: bool | None) -> bool:
    """A candidate format is kept when it has a year and, when it has a numeric day and
    month, orders them as ``dayfirst`` says (year-day-month is never kept)."""
    year = min((fmt.find(y) for y in ("%Y", "%y") if y in fmt), default=-1)
    if year < 0:
        return False
    day, month = fmt.find("%d"), fmt.find("%m")
    if day < 0 or month < 0:
        return True
    if year < min(day, month):
        return month < day
    return dayfirst is None or (day < month) == dayfirst


def _normal_offset(text: str) -> str:
    if text == "Z":
        return "+00:00"
    digits = text[1:].replace(":", "")
    return f"{text[0]}{digits[:2]}:{(digits[2:] or '00')}"


def _mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


@dataclass(frozen=True)
class TimePolicy:
    """The timestamp options of a file source (``FileOptions`` fields of the same names)."""

    ts_format: str | None = None
    dayfirst: bool | None = None
    epoch_unit: str | None = None
    close_time: str | None = None
    dst_policy: str = "refuse"
    mixed_offsets: str = "refuse"


class TimeParser:
    """Fed the timestamp column chunk by chunk; ``finish`` returns UTC ns for all rows."""

    def __init__(self, opts: TimePolicy, timezone: str, source: str, column: str) -> None:
        self.opts, self.tz, self.source, self.column = opts, timezone, source, column
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown timezone {timezone!r} for {source}", key="timezone") from None
        self.kind: str | None = None  # text | epoch | timestamp | date
        self.aware: bool | None = None
        self.offset: str | None = None
        self.unit: str | None = None
        self.candidates: dict[str, list[np.ndarray]] | None = None
        self.failure: DataError | None = None
        self.chunks: list[np.ndarray] = []
        self.combined = False

    def _error(self, message: str, row: int | None = None) -> DataError:
        return DataError(message, source=self.source, row=row, column=self.column)

    def _set(self, attr: str, value: object, row: int, message: str) -> None:
        current = getattr(self, attr)
        if current is None:
            setattr(self, attr, value)
        elif current != value:
            raise self._error(message, row)

    # ------------------------------------------------------------------ feeding
    def feed(self, arr: pa.Array, offset: int, combined: bool = False) -> None:
        self.combined = combined
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if arr.null_count:
            raise self._error("not a time: empty", offset + int(np.argmax(_mask(arr.is_null()))))
        t = arr.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            self._text(pc.cast(pc.utf8_trim_whitespace(arr), pa.string()), offset)
        elif pa.types.is_integer(t):
            self._set("kind", "epoch", offset, "a column of epoch numbers and of dates")
            self._epoch(np.asarray(pc.cast(arr, pa.int64()).to_numpy(), dtype=np.int64), offset)
        elif pa.types.is_timestamp(t):
            self._set("kind", "timestamp", offset, "mixed timestamp types")
            self._set("aware", t.tz is not None, offset, "mixes naive and zoned timestamps")
            vals = np.asarray(arr.cast(pa.int64()).to_numpy(), dtype=np.int64)
            self.chunks.append(self._bounded(vals, NS_PER[t.unit], offset))
        elif pa.types.is_date(t):
            self._set("kind", "date", offset, "mixed timestamp types")
            self.aware = False
            days = np.asarray(arr.cast(pa.date32()).cast(pa.int32()).to_numpy(), dtype=np.int64)
            self.chunks.append(self._bounded(days, 86_400 * 10**9, offset))
        else:
            raise self._error(f"timestamp column has type {t}; expected text, integer epochs, timestamps or dates")

    def _bounded(self, values: np.ndarray, ns_per: int, offset: int) -> np.ndarray:
        """``values`` (in units of ``ns_per`` ns) as ns; a value beyond pandas' 1677-2262 range
        is refused by row instead of overflowing."""
        limit = _NS_LIMIT // ns_per
        bad = (values < -limit) | (values > limit)
        if bad.any():
            row = int(np.argmax(bad))
            raise self._error(
                "time out of range: years before 1677 or after 2262 cannot be represented", offset + row
            )
        return values * ns_per

    def _text(self, text: pa.Array, offset: int) -> None:
        empty = _mask(pc.equal(text, ""))
        if empty.any():
            raise self._error("not a time: empty", offset + int(np.argmax(empty)))
        relative = _mask(pc.is_in(pc.utf8_lower(text), value_set=pa.array(sorted(RELATIVE_TIME_WORDS))))
        if relative.any():
            row = int(np.argmax(relative))
            raise self._error(
                f"not a time: {text[row].as_py()!r} (relative words are refused: a file must hold absolute times)",
                offset + row,
            )
        integer = _mask(pc.match_substring_regex(text, r"^[+-]?\d+$"))
        if self.kind is None:
            as_epoch = self.opts.ts_format is None and (self.opts.epoch_unit is not None or bool(integer.all()))
            self.kind = "epoch" if as_epoch else "text"
        if self.kind == "epoch":
            if not integer.all():
                row = int(np.argmax(~integer))
                raise self._error(f"not an integer epoch time: {text[row].as_py()!r}", offset + row)
            try:
                ints = pc.cast(text, pa.int64())
            except pa.ArrowInvalid:
                raise self._error("epoch number beyond 64 bits", offset) from None
            self._epoch(np.asarray(ints.to_numpy(), dtype=np.int64), offset)
            return
        if integer.any() and self.opts.ts_format is None:
            row = int(np.argmax(integer))
            raise self._error(
                f"mixes epoch numbers ({text[row].as_py()!r}) and formatted dates in one column", offset + row
            )
        self._offsets(text, offset)
        if self.candidates is None:
            self.candidates = {f: [] for f in self._guess(text)}
            if not self.candidates:
                raise self._error(
                    f"not a time: cannot infer a date format from {text[0].as_py()!r}; set ts_format", offset
                )
        self._parse(text, offset)

    def _offsets(self, text: pa.Array, offset: int) -> None:
        """All naive, or all with a UTC offset; offsets may differ only with
        ``mixed_offsets: utc``."""
        found = pc.struct_field(pc.extract_regex(text, _OFFSET_TAIL), "offset")  # null when naive
        aware = np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if self.aware is None:
            self.aware = bool(aware[0])
        mixed = aware != self.aware
        if mixed.any():
            row = int(np.argmax(mixed))
            first = "with a UTC offset" if self.aware else "naive (no UTC offset)"
            raise self._error(
                f"mixes naive times and times with a UTC offset: {text[row].as_py()!r}, while row 0 is {first}",
                offset + row,
            )
        if not self.aware:
            return
        uniques = [u for u in pc.unique(found).to_pylist() if u is not None]
        if self.offset is None:
            self.offset = _normal_offset(found[0].as_py())
        other = [u for u in uniques if _normal_offset(u) != self.offset]
        if other and self.opts.mixed_offsets == "refuse":
            row = int(np.argmax(_mask(pc.is_in(found, value_set=pa.array(other)))))
            raise self._error(
                f"UTC offset {_normal_offset(other[0])} differs from this file's first offset {self.offset}; "
                "set mixed_offsets: utc to convert each time by its own offset",
                offset + row,
            )

    def _guess(self, text: pa.Array) -> list[str]:
        if self.opts.ts_format is not None:
            return [self.opts.ts_format]
        found: list[str] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for value in pc.unique(text.slice(0, 1000)).to_pylist()[:20]:
                for dayfirst in (False, True):
                    fmt = guess_datetime_format(value, dayfirst=dayfirst)
                    if fmt and fmt not in found and _fits_dayfirst(fmt, self.opts.dayfirst):
                        found.append(fmt)
        return found

    def _parse(self, text: pa.Array, offset: int) -> None:
        assert self.candidates is not None
        series = pd.Series(np.asarray(text.to_numpy(zero_copy_only=False), dtype=object))
        for fmt in list(self.candidates):
            parsed = pd.DatetimeIndex(pd.to_datetime(series, format=fmt, errors="coerce", utc=bool(self.aware)))
            nat = np.asarray(parsed.isna())
            if nat.any():
                row = int(np.argmax(nat))
                how = "does not match ts_format" if self.opts.ts_format else "does not match the column's format"
                if self.failure is None or (self.failure.row or 0) <= offset + row:  # the format read furthest
                    self.failure = self._error(f"not a time: {series.iloc[row]!r} ({how} {fmt!r})", offset + row)
                del self.candidates[fmt]
                continue
            self.candidates[fmt].append(self._bounded(np.asarray(parsed.asi8), NS_PER[parsed.unit], offset))
        if not self.candidates:
            assert self.failure is not None
            raise self.failure

    def _epoch(self, ints: np.ndarray, offset: int) -> None:
        self.aware = True
        if self.unit is None:
            self.unit = self.opts.epoch_unit or next(
                (u for u, (lo, hi) in EPOCH_BANDS.items() if lo <= ints[0] < hi), None
            )
            if self.unit is None:
                raise self._error(
                    f"epoch number {int(ints[0])} is implausible in every unit (s, ms, us, ns for 1973-2261); "
                    "set epoch_unit, or ts_format if it is a date like 20200102",
                    offset,
                )
        lo, hi = EPOCH_BANDS[self.unit]
        bad = (ints < lo) | (ints >= hi)
        if bad.any():
            row = int(np.argmax(bad))
            given = "epoch_unit" if self.opts.epoch_unit else "the unit inferred from the first row"
            raise self._error(
                f"epoch number {int(ints[row])} is implausible as {self.unit!r} ({given}; plausible: {lo}..{hi}); "
                "set epoch_unit",
                offset + row,
            )
        self.chunks.append(ints * NS_PER[self.unit])

    # ------------------------------------------------------------------ result
    def _chosen(self) -> tuple[np.ndarray, str]:
        assert self.candidates
        results = {f: np.concatenate(parts) for f, parts in self.candidates.items()}
        first, *others = results
        for other in others:
            differ = results[other] != results[first]
            if differ.any():
                row = int(np.argmax(differ))
                a, b = (pd.Timestamp(int(results[f][row])).strftime("%Y-%m-%d %H:%M") for f in (first, other))
                raise self._error(
                    f"ambiguous timestamps: reads as {a} with {first!r} and as {b} with {other!r}, and no row "
                    "tells them apart; set dayfirst: true or false (or ts_format)",
                    row,
                )
        return results[first], first

    def finish(self) -> np.ndarray:
        if self.kind is None:
            return np.empty(0, dtype=np.int64)
        if self.kind == "text":
            ns, fmt = self._chosen()
            date_only = not has_time_of_day(fmt) and not self.combined
        else:
            ns, date_only = np.concatenate(self.chunks), self.kind == "date"
        if self.opts.close_time is not None:
            if not date_only:
                raise self._error("close_time is set but the timestamps carry a time of day (or an epoch)")
            hh, mm, *ss = (int(x) for x in self.opts.close_time.split(":"))
            ns = ns + ((hh * 60 + mm) * 60 + (ss[0] if ss else 0)) * 10**9
        return ns if self.aware else self._localize(ns)

    def _localize(self, wall: np.ndarray) -> np.ndarray:
        """Naive wall times in ``timezone`` as UTC ns; DST gaps and overlaps by ``dst_policy``."""
        if self.tz.upper() in ("UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z"):
            return wall
        idx = pd.DatetimeIndex(wall.view("datetime64[ns]"))
        dst = np.ones(len(idx), dtype=bool)
        early = idx.tz_localize(self.tz, ambiguous=dst, nonexistent="NaT")
        gap = np.asarray(early.isna())
        if self.opts.dst_policy == "refuse":
            late = idx.tz_localize(self.tz, ambiguous=~dst, nonexistent="NaT")
            overlap = ~gap & (early.asi8 != late.asi8)
            bad = gap | overlap
            if bad.any():
                row = int(np.argmax(bad))
                what = "falls in a DST gap (that wall time never happened)" if gap[row] else (
                    "is ambiguous: a DST overlap makes that wall time happen twice")
                raise self._error(
                    f"{idx[row]} in {self.tz} {what}; set dst_policy: shift to move gap times forward "
                    "and take the earlier instant of an overlap",
                    row,
                )
            return np.asarray(early.asi8, dtype=np.int64)
        shifted = idx.tz_localize(self.tz, ambiguous=dst, nonexistent="shift_forward")
        return np.asarray(shifted.asi8, dtype=np.int64)
