"""Hostile market-data files: every case is refused with a typed error naming the file and the
row / column / option, or read exactly as the configuration says (docs/reliability/files.md).

No Ray; files are generated in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinywindow.cli import main
from tinywindow.config import SourceConfig, build
from tinywindow.contracts import BARS, validate
from tinywindow.data.features import filled_columns
from tinywindow.data.sources import build_source, files
from tinywindow.data.sources.files import FileOptions
from tinywindow.errors import ConfigError, DataError, SchemaError

HEADER = "date,open,high,low,close,volume\n"


def bars(*stamps: str, ohlcv: str = "10,11,9,10,100") -> str:
    return HEADER + "".join(f"{t},{ohlcv}\n" for t in stamps)


def utc(*stamps: str) -> list[int]:
    return [int(pd.Timestamp(s, tz="UTC").value) for s in stamps]


def load(path: Path, **options: Any) -> pa.Table:
    on_bad_rows = options.pop("on_bad_rows", "reject")
    cfg = build({"data": {"sources": [{"name": "t", "kind": "file", "path": str(path), **options}]}})
    return build_source(cfg.data.sources[0], on_bad_rows).fetch()


def parquet(path: Path, table: pa.Table, **kw: Any) -> Path:
    pq.write_table(table, path, **kw)
    return path


def ohlcv_columns(n: int, **override: pa.Array) -> dict[str, pa.Array]:
    cols: dict[str, pa.Array] = {
        "open": pa.array([10.0] * n),
        "high": pa.array([11.0] * n),
        "low": pa.array([9.0] * n),
        "close": pa.array([10.0] * n),
        "volume": pa.array([100.0] * n),
    }
    cols.update(override)
    return cols


@dataclass
class Case:
    """One hostile (or tricky) file and what must come of it."""

    id: str
    content: str | bytes | Callable[[Path], Path]  # CSV text/bytes, or a builder in tmp_path
    options: dict[str, Any] = field(default_factory=dict)
    error: type[Exception] | None = None
    names: tuple[str, ...] = ()  # substrings the message must hold (option, value, reason)
    row: int | None = None
    column: str | None = None
    ts: list[int] | None = None  # exact UTC ns expected on success
    check: Callable[[pa.Table], None] | None = None

    def make(self, tmp_path: Path) -> Path:
        if callable(self.content):
            return self.content(tmp_path)
        p = tmp_path / "hostile.csv"
        p.write_bytes(self.content if isinstance(self.content, bytes) else self.content.encode())
        return p


# --------------------------------------------------------------------------- builders


def told_late(tmp: Path) -> Path:
    """600 rows that read either way (1 Feb or 2 Jan), then one that only reads day-first,
    blocks later: the format is chosen on the whole column, not on the first chunk."""
    p = tmp / "late.csv"
    p.write_text(bars(*(f"01/02/2020 {m // 60:02d}:{m % 60:02d}" for m in range(600)), "13/02/2020 00:00"))
    return p


def fifo(tmp: Path) -> Path:
    p = tmp / "pipe.csv"
    os.mkfifo(p)
    return p


def dev_zero_link(tmp: Path) -> Path:
    p = tmp / "zero.csv"
    p.symlink_to("/dev/zero")
    return p


def outside_link(tmp: Path) -> Path:
    outside = tmp / "elsewhere.csv"
    outside.write_text(bars("2020-01-01"))
    src = tmp / "src"
    src.mkdir()
    (src / "ok.csv").write_text(bars("2020-01-02"))
    (src / "sneaky.csv").symlink_to(outside)
    return src


def inside_link(tmp: Path) -> Path:
    src = tmp / "src"
    (src / "real").mkdir(parents=True)
    (src / "real" / "data.txt").write_text(bars("2020-01-02"))
    (src / "aapl.csv").symlink_to(src / "real" / "data.txt")
    return src


def linked_dir(tmp: Path) -> Path:
    (tmp / "disk").mkdir()
    (tmp / "disk" / "aapl.csv").write_text(bars("2020-01-02"))
    (tmp / "data").symlink_to(tmp / "disk")
    return tmp / "data"


def dir_named_csv(tmp: Path) -> Path:
    src = tmp / "src"
    (src / "trap.csv").mkdir(parents=True)
    return src


def ten_million_columns(tmp: Path) -> Path:
    p = tmp / "wide.csv"
    with p.open("wb") as f:
        f.write(b"c," * 10_000_000 + b"c\n")  # 20 MB written at once: no per-column work
    return p


def three_hundred_columns(tmp: Path) -> Path:
    names = ["date", "open", "high", "low", "close", "volume"] + [f"x{i}" for i in range(300)]
    p = tmp / "wide300.csv"
    p.write_text(",".join(names) + "\n" + ",".join(["2020-01-01", "10", "11", "9", "10", "100"] + ["0"] * 300) + "\n")
    return p


def big_file(tmp: Path) -> Path:
    p = tmp / "big.csv"
    p.write_text(bars(*[f"2020-01-01 00:{m // 60:02d}:{m % 60:02d}" for m in range(3600)]) + "x" * 0)
    return p


def parquet_bomb(tmp: Path) -> Path:
    n = 2_000_000  # 16 MB of float64 zeros per column, a few KB on disk
    t = pa.table({
        "ts": pa.array(np.arange(n, dtype=np.int64) + 1_600_000_000_000_000_000, pa.timestamp("ns", tz="UTC")),
        "symbol": pa.array(["A"] * n).dictionary_encode(),
        **ohlcv_columns(n, volume=pa.array(np.zeros(n))),
    })
    p = parquet(tmp / "bomb.parquet", t, compression="zstd", row_group_size=n,
                column_encoding={"ts": "DELTA_BINARY_PACKED"}, use_dictionary=["symbol"])
    assert p.stat().st_size < 1024 * 1024
    return p


def parquet_wide(tmp: Path) -> Path:
    t = pa.table({"ts": pa.array(["2020-01-01"]), **ohlcv_columns(1), **{f"x{i}": pa.array([0]) for i in range(300)}})
    return parquet(tmp / "wide.parquet", t)


def parquet_truncated(tmp: Path) -> Path:
    t = pa.table({"ts": pa.array(["2020-01-01"] * 100), **ohlcv_columns(100)})
    p = parquet(tmp / "cut.parquet", t)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2] + data[-8:])  # footer kept, pages gone
    return p


def parquet_typed(name: str, **override: pa.Array) -> Callable[[Path], Path]:
    def build_it(tmp: Path) -> Path:
        t = pa.table({"ts": pa.array(["2020-01-01", "2020-01-02"]), **ohlcv_columns(2, **override)})
        return parquet(tmp / f"{name}.parquet", t)

    return build_it


def parquet_naive_ts(tmp: Path) -> Path:
    ts = pa.array([pd.Timestamp("2020-01-02 09:30").value], pa.timestamp("ns"))
    return parquet(tmp / "naive.parquet", pa.table({"ts": ts, **ohlcv_columns(1)}))


def parquet_dates(tmp: Path) -> Path:
    ts = pa.array([pd.Timestamp("2020-01-02").date(), pd.Timestamp("2020-07-02").date()], pa.date32())
    return parquet(tmp / "daily.parquet", pa.table({"ts": ts, **ohlcv_columns(2)}))


def parquet_year_3000(tmp: Path) -> Path:
    ts = pa.array([datetime(3000, 1, 1)], pa.timestamp("s"))
    return parquet(tmp / "far.parquet", pa.table({"ts": ts, **ohlcv_columns(1)}))


def parquet_float_ts(tmp: Path) -> Path:
    return parquet(tmp / "floatts.parquet", pa.table({"ts": pa.array([1.6e9]), **ohlcv_columns(1)}))


FX = (
    "Gmt time,Open,High,Low,Close,Volume\n"
    "01.01.2017 22:00:00.000,1.05155,1.05213,1.05130,1.05150,1277.47\n"
    "01.01.2017 23:00:00.000,1.05152,1.05225,1.05139,1.05208,1590.31\n"
    "02.01.2017 00:00:00.000,1.05207,1.05262,1.05176,1.05200,1460.37\n"
)


def fx_file(tmp: Path) -> Path:
    p = tmp / "eurusd.csv"
    p.write_text(FX)
    return p


def filled_as_close_only(volume: bool) -> Callable[[pa.Table], None]:
    """open = high = low = close, volume as in the file or 0, and the table says so."""

    def check(t: pa.Table) -> None:
        for k in ("open", "high", "low"):
            assert t.column(k).to_pylist() == t.column("close").to_pylist()
        filled = ["open", "high", "low"] + ([] if volume else ["volume"])
        assert filled_columns(t) == {"HOSTILE": tuple(filled)}
        if not volume:
            assert t.column("volume").to_pylist() == [0.0] * t.num_rows

    return check


def symbols_file(*syms: str) -> str:
    return "date,symbol,open,high,low,close,volume\n" + "".join(
        f"2020-01-0{i + 1},{s},10,11,9,10,100\n" for i, s in enumerate(syms)
    )


def price_row(close: str) -> str:
    return HEADER + "2020-01-01,10,11,9,10,100\n" + f"2020-01-02,{close},{close},{close},{close},100\n"


CASES = [
    # ---------------------------------------------------------------- timestamps: formats
    Case("dayfirst-ambiguous-refused", bars("01/02/2020", "03/04/2020"), error=DataError,
         names=("ambiguous", "dayfirst", "ts_format"), row=0, column="date"),
    Case("dayfirst-true-reads-day-first", bars("01/02/2020", "03/04/2020"), {"dayfirst": True},
         ts=utc("2020-02-01", "2020-04-03")),
    Case("dayfirst-false-reads-month-first", bars("01/02/2020", "03/04/2020"), {"dayfirst": False},
         ts=utc("2020-01-02", "2020-03-04")),
    Case("dayfirst-told-by-a-later-row", bars("01/02/2020", "13/02/2020"), ts=utc("2020-02-01", "2020-02-13")),
    Case("dayfirst-told-by-a-row-chunks-later", told_late, {"chunk_rows": 10},
         ts=[*utc(*(f"2020-02-01 {m // 60:02d}:{m % 60:02d}" for m in range(600))), *utc("2020-02-13")]),
    Case("dayfirst-contradicted-by-data", bars("01/02/2020", "13/02/2020"), {"dayfirst": False},
         error=DataError, names=("not a time", "13/02/2020"), row=1, column="date"),
    Case("fx-hourly-ts-format", fx_file, {"ts_format": "%d.%m.%Y %H:%M:%S.%f", "symbol": "EURUSD"},
         ts=utc("2017-01-01 22:00", "2017-01-01 23:00", "2017-01-02 00:00")),
    Case("fx-hourly-timestamp-format-spelling", fx_file,
         {"timestamp_format": "%d.%m.%Y %H:%M:%S.%f", "timezone": "Europe/Berlin", "symbol": "EURUSD"},
         ts=utc("2017-01-01 21:00", "2017-01-01 22:00", "2017-01-01 23:00")),
    Case("fx-hourly-dayfirst", fx_file, {"dayfirst": True, "symbol": "EURUSD"},
         ts=utc("2017-01-01 22:00", "2017-01-01 23:00", "2017-01-02 00:00")),
    Case("fx-hourly-without-format-ambiguous", fx_file, {"symbol": "EURUSD"}, error=DataError,
         names=("ambiguous", "dayfirst"), row=2, column="Gmt time"),
    Case("ts-format-mismatch", bars("2020-01-01", "2020/01/02"), {"ts_format": "%Y-%m-%d"},
         error=DataError, names=("ts_format", "2020/01/02"), row=1, column="date"),
    Case("one-format-per-file", bars("2020-01-01", "01/02/2020"), error=DataError, names=("not a time",),
         row=1, column="date"),
    Case("time-of-day-only", bars("09:30", "09:31"), error=DataError, names=("cannot infer", "ts_format"),
         row=0, column="date"),
    Case("two-digit-years-refused", bars("01/02/03", "04/05/06"), error=DataError,
         names=("cannot infer", "ts_format"), row=0, column="date"),
    Case("two-digit-years-with-ts-format", bars("01/02/03", "04/05/06"), {"ts_format": "%d/%m/%y"},
         ts=utc("2003-02-01", "2006-05-04")),
    Case("garbage-time", bars("2020-01-01", "2020-01-02", "half past nine"), error=DataError,
         names=("not a time", "half past nine"), row=2, column="date"),
    Case("empty-time-cell", bars("2020-01-01", ""), error=DataError, names=("empty",), row=1, column="date"),
    Case("word-now", bars("2020-01-01", "now"), error=DataError, names=("not a time", "now", "relative"),
         row=1, column="date"),
    Case("word-today", bars("Today"), error=DataError, names=("relative",), row=0, column="date"),
    Case("word-yesterday", bars("2020-01-01", "2020-01-02", "yesterday"), error=DataError,
         names=("relative",), row=2, column="date"),
    Case("year-9999", bars("2020-01-01", "9999-12-31"), error=DataError, names=("out of range", "2262"),
         row=1, column="date"),
    Case("year-1500", bars("1500-01-01"), error=DataError, names=("out of range",), row=0, column="date"),
    Case("year-10000", bars("2020-01-01", "10000-01-01"), error=DataError, names=("not a time",),
         row=1, column="date"),
    # ---------------------------------------------------------------- timestamps: epochs
    Case("epoch-seconds-inferred", bars("1577836800", "1577923200"), ts=utc("2020-01-01", "2020-01-02")),
    Case("epoch-millis-inferred", bars("1577836800000", "1577923200000"), ts=utc("2020-01-01", "2020-01-02")),
    Case("epoch-nanos-inferred", bars("1577836800000000001", "1577836800000000002"),
         ts=[1577836800000000001, 1577836800000000002]),
    Case("epoch-seconds-given-as-ns-refused", bars("1577836800", "1577923200"), {"epoch_unit": "ns"},
         error=DataError, names=("implausible", "epoch_unit"), row=0, column="date"),
    Case("epoch-seconds-given-as-s", bars("1577836800"), {"epoch_unit": "s"}, ts=utc("2020-01-01")),
    Case("epoch-implausible", bars("12345", "12346"), error=DataError, names=("implausible", "epoch_unit"),
         row=0, column="date"),
    Case("epoch-units-mixed", bars("1577836800", "1577923200000"), error=DataError,
         names=("implausible", "epoch_unit"), row=1, column="date"),
    Case("epoch-beyond-int64", bars("99999999999999999999999"), error=DataError, names=("epoch",), row=0,
         column="date"),
    Case("yyyymmdd-not-an-epoch", bars("20200102", "20200103"), error=DataError, names=("ts_format",), row=0,
         column="date"),
    Case("yyyymmdd-with-ts-format", bars("20200102", "20200103"), {"ts_format": "%Y%m%d"},
         ts=utc("2020-01-02", "2020-01-03")),
    Case("epoch-then-date", bars("1577836800", "2020-01-02"), error=DataError, names=("epoch",), row=0,
         column="date"),
    # ---------------------------------------------------------------- timestamps: zones
    Case("dst-gap-refused", bars("2020-03-08 01:30", "2020-03-08 02:30"), {"timezone": "America/New_York"},
         error=DataError, names=("DST gap", "dst_policy"), row=1, column="date"),
    Case("dst-overlap-refused", bars("2020-11-01 00:30", "2020-11-01 01:30"), {"timezone": "America/New_York"},
         error=DataError, names=("ambiguous", "dst_policy"), row=1, column="date"),
    Case("dst-gap-shift", bars("2020-03-08 01:30", "2020-03-08 02:30"),
         {"timezone": "America/New_York", "dst_policy": "shift"}, ts=utc("2020-03-08 06:30", "2020-03-08 07:00")),
    Case("dst-overlap-shift-earlier", bars("2020-11-01 00:30", "2020-11-01 01:30"),
         {"timezone": "America/New_York", "dst_policy": "shift"}, ts=utc("2020-11-01 04:30", "2020-11-01 05:30")),
    Case("mixed-offsets-refused", bars("2020-01-01T10:00:00+01:00", "2020-01-01T10:00:00-05:00"),
         error=DataError, names=("offset", "mixed_offsets"), row=1, column="date"),
    Case("mixed-offsets-utc", bars("2020-01-01T10:00:00+01:00", "2020-01-01T10:00:00-05:00"),
         {"mixed_offsets": "utc"}, ts=utc("2020-01-01 09:00", "2020-01-01 15:00")),
    Case("same-offset-spellings", bars("2020-01-01T10:00:00Z", "2020-01-01T11:00:00+00:00"),
         ts=utc("2020-01-01 10:00", "2020-01-01 11:00")),
    Case("naive-and-aware-mixed", bars("2020-01-01 10:00:00", "2020-01-01 11:00:00+00:00"), error=DataError,
         names=("naive",), row=1, column="date"),
    Case("offset-ignores-timezone", bars("2020-01-01T10:00:00+01:00"), {"timezone": "America/New_York"},
         ts=utc("2020-01-01 09:00")),
    Case("close-time-winter-new-york", bars("2020-01-02", "2020-01-03"),
         {"close_time": "16:00", "timezone": "America/New_York"}, ts=utc("2020-01-02 21:00", "2020-01-03 21:00")),
    Case("close-time-summer-new-york", bars("2020-07-02"), {"close_time": "16:00", "timezone": "America/New_York"},
         ts=utc("2020-07-02 20:00")),
    Case("daily-close-spelling", bars("2020-01-02", "2020-07-02"),
         {"daily_close": "16:00", "timezone": "America/New_York"}, ts=utc("2020-01-02 21:00", "2020-07-02 20:00")),
    Case("close-time-on-intraday-refused", bars("2020-01-02 10:00"), {"close_time": "16:00"}, error=DataError,
         names=("close_time",), column="date"),
    Case("date-and-time-columns-combined",
         "Date,Time,Open,High,Low,Close,Volume\n2020-01-02,09:30,1,2,1,2,5\n2020-01-02,09:31,2,2,1,1,5\n",
         {"time_column": "Time", "timezone": "America/New_York"}, ts=utc("2020-01-02 14:30", "2020-01-02 14:31")),
    Case("time-column-not-configured",
         "Date,Time,Open,High,Low,Close,Volume\n2020-01-02,09:30,1,2,1,2,5\n2020-01-02,09:31,2,2,1,1,5\n",
         error=DataError, names=("time_column",), column="Time"),
    Case("time-column-missing", bars("2020-01-02"), {"time_column": "Time"}, error=DataError,
         names=("time_column",), column="Time"),
    Case("distinct-ns-ticks-not-duplicates",
         bars("2020-01-01 00:00:00.123456789", "2020-01-01 00:00:00.123456790"),
         ts=[1577836800123456789, 1577836800123456790]),
    Case("true-duplicate-refused", bars("2020-01-01 00:00:00.123456789", "2020-01-01 00:00:00.123456789"),
         error=DataError, names=("duplicate",), row=1, column="ts"),
    Case("unknown-timezone", bars("2020-01-01"), {"timezone": "Mars/Olympus"}, error=ConfigError,
         names=("timezone",)),
    # ---------------------------------------------------------------- columns and values
    Case("duplicate-columns", "date,open,high,low,Close,Close,volume\n2020-01-01,10,11,9,10,10,100\n",
         error=DataError, names=("'Close' and 'Close'",), column="Close"),
    Case("case-colliding-columns", "date,open,high,low,Close,close,volume\n2020-01-01,10,11,9,10,10,100\n",
         error=DataError, names=("'Close' and 'close'",), column="close"),
    Case("close-only", "date,close\n2020-01-01,10\n2020-01-02,11\n", ts=utc("2020-01-01", "2020-01-02"),
         check=filled_as_close_only(volume=False)),
    Case("close-and-volume-only", "date,close,volume\n2020-01-01,10,5\n2020-01-02,11,6\n",
         ts=utc("2020-01-01", "2020-01-02"), check=filled_as_close_only(volume=True)),
    Case("partial-range-refused", "date,high,low,close\n2020-01-01,11,9,10\n", error=DataError,
         names=("missing column 'open'", "close-only"), column="open"),
    Case("no-close-refused", "date,open,high,low,volume\n2020-01-01,10,11,9,5\n", error=DataError,
         names=("missing column 'close'",), column="close"),
    Case("missing-column", "date,open,high,close,volume\n2020-01-01,10,11,10,100\n", error=DataError,
         names=("missing column 'low'",), column="low"),
    Case("bool-price-parquet", parquet_typed("boolprice", close=pa.array([True, False])), error=DataError,
         names=("bool",), column="close"),
    Case("timestamp-price-parquet",
         parquet_typed("tsprice", close=pa.array([0, 1], pa.timestamp("ns", tz="UTC"))), error=DataError,
         names=("timestamp",), column="close"),
    Case("bool-text-price", price_row("True"), error=DataError, names=("not a number", "True"), row=1,
         column="open"),
    Case("date-text-price", price_row("2020-01-01"), error=DataError, names=("not a number",), row=1,
         column="open"),
    Case("thousands-separator", HEADER + '2020-01-01,"1,000",1000,1000,1000,1\n', error=DataError,
         names=("not a number", "1,000"), row=0, column="open"),
    Case("empty-symbol", symbols_file("AAPL", ""), error=DataError, names=("empty symbol",), row=1,
         column="symbol"),
    Case("blank-symbol", symbols_file("AAPL", "   "), error=DataError, names=("empty symbol",), row=1,
         column="symbol"),
    Case("nonprintable-symbol", symbols_file("AAPL", "AA\x07PL"), error=DataError, names=("non-printable",),
         row=1, column="symbol"),
    Case("overlong-symbol", symbols_file("A" * 65), error=DataError, names=("longer than 64",), row=0,
         column="symbol"),
    Case("subnormal-price-1e-320", price_row("1e-320"), error=DataError, names=("min_price",), row=1,
         column="open"),
    Case("huge-price-1e300", price_row("1e300"), error=DataError, names=("max_price",), row=1, column="open"),
    Case("huge-volume", HEADER + "2020-01-01,10,11,9,10,1e300\n", error=DataError, names=("max_volume",),
         row=0, column="volume"),
    Case("price-bound-from-config", price_row("5000"), {"max_price": 1000.0}, error=DataError,
         names=("max_price",), row=1, column="open"),
    Case("inf-price", price_row("inf"), error=DataError, names=("infinite",), row=1, column="open"),
    Case("nan-price", price_row("nan"), error=DataError, names=("NaN",), row=1, column="open"),
    Case("empty-price", HEADER + "2020-01-01,10,11,9,,100\n", error=DataError, names=("missing",), row=0,
         column="close"),
    Case("zero-price", price_row("0"), error=DataError, names=("not positive",), row=1, column="open"),
    Case("high-below-low", bars("2020-01-01", ohlcv="10,8,9,10,100"), error=DataError, names=("high",), row=0,
         column="high"),
    Case("header-only", HEADER, error=DataError, names=("no bars",)),
    Case("empty-file", b"", error=DataError, names=("empty file",)),
    Case("quarantine-mode-drops-absurd-price", price_row("1e-320") + "2020-01-03,10,11,9,10,100\n",
         {"on_bad_rows": "quarantine"}, ts=utc("2020-01-01", "2020-01-03")),
    # ---------------------------------------------------------------- bytes and files
    Case("non-utf8-body", HEADER.encode() + b"2020-01-01,10,11,9,10,100\n2020-01-02\xff,10,11,9,10,100\n",
         error=DataError, names=("UTF-8",), row=1, column="date"),
    Case("non-utf8-header", b"d\xe4te,open,high,low,close,volume\n2020-01-01,10,11,9,10,100\n",
         error=DataError, names=("UTF-8",)),
    Case("utf8-bom-header", b"\xef\xbb\xbf" + bars("2020-01-01").encode(), ts=utc("2020-01-01")),
    Case("ragged-row", HEADER + "2020-01-01,10,11,9,10,100,7\n", error=DataError, names=("cannot read",)),
    Case("symlinked-source-dir", linked_dir, ts=utc("2020-01-02")),
    Case("fifo", fifo, error=DataError, names=("not a regular file", "FIFO")),
    Case("symlink-to-dev-zero", dev_zero_link, error=DataError, names=("outside",)),
    Case("symlink-outside-source-dir", outside_link, error=DataError, names=("outside",)),
    Case("symlink-inside-source-dir", inside_link, ts=utc("2020-01-02")),
    Case("directory-named-csv", dir_named_csv, error=DataError, names=("not a regular file", "directory")),
    Case("ten-million-column-header", ten_million_columns, error=DataError, names=("header line", "max_columns")),
    Case("too-many-columns", three_hundred_columns, error=DataError, names=("max_columns",)),
    Case("file-over-max-file-mb", big_file, {"max_file_mb": 0.05}, error=DataError, names=("max_file_mb",)),
    Case("rows-over-max-rows", big_file, {"max_rows": 1000, "chunk_rows": 100}, error=DataError,
         names=("max_rows",), row=1000),
    Case("parquet-bomb", parquet_bomb, {"max_uncompressed_mb": 8.0}, error=DataError,
         names=("max_uncompressed_mb",)),
    Case("parquet-too-many-columns", parquet_wide, error=DataError, names=("max_columns",)),
    Case("parquet-truncated", parquet_truncated, error=DataError, names=("cannot read",)),
    Case("parquet-float-timestamps", parquet_float_ts, error=DataError, names=("type double",), column="ts"),
    Case("parquet-naive-timestamps-in-zone", parquet_naive_ts, {"timezone": "America/New_York"},
         ts=utc("2020-01-02 14:30")),
    Case("parquet-dates-close-time", parquet_dates, {"close_time": "16:00", "timezone": "America/New_York"},
         ts=utc("2020-01-02 21:00", "2020-07-02 20:00")),
    Case("parquet-year-3000", parquet_year_3000, error=DataError, names=("out of range",), row=0, column="ts"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_file(case: Case, tmp_path: Path) -> None:
    path = case.make(tmp_path)
    t0 = time.perf_counter()
    if case.error is None:
        table = load(path, **case.options)
        validate(table, BARS)
        assert case.ts is not None
        assert table.column("ts").cast(pa.int64()).to_pylist() == case.ts
        if case.check is not None:
            case.check(table)
        return
    with pytest.raises(case.error) as caught:
        load(path, **case.options)
    assert time.perf_counter() - t0 < 5, "refusals are cheap"
    exc = caught.value
    text = str(exc)
    for part in case.names:
        assert part in text, f"{part!r} not in {text!r}"
    if isinstance(exc, DataError):
        assert exc.source is not None and Path(exc.source).name in text
        assert exc.source.startswith(str(tmp_path)), "the message names the file"
        assert exc.row == case.row, text
        if case.column is not None:
            assert exc.column == case.column, text
    else:
        assert isinstance(exc, ConfigError) and exc.key is not None


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 45 and len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------- beyond the table


def test_big_csv_is_read_in_chunks_with_bounded_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 200_000
    start = pd.Timestamp("2020-01-01").value // 10**9
    body = "\n".join(f"{start + 60 * i},10,11,9,10,100" for i in range(n))
    path = tmp_path / "big.csv"
    path.write_text(HEADER + body + "\n")
    sizes: list[int] = []
    real = files._csv_batches

    def spy(*args: Any) -> Any:
        for batch in real(*args):
            sizes.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(files, "_csv_batches", spy)
    tracemalloc.start()
    table = load(path, chunk_rows=5_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert table.num_rows == n and sum(sizes) == n
    assert len(sizes) >= 20 and max(sizes) <= 4 * 5_000
    # the result is 6 x 8 bytes a row (~10 MB); a whole-file object frame would be ~10x that
    assert peak < 60 * 1024 * 1024, peak


def test_distinct_nanosecond_ticks_are_not_duplicates_in_validation() -> None:
    base = 1_600_000_000_123_456_789  # beyond float64's 53 bits: base and base+1 round together
    assert float(base) == float(base + 1)
    t = pa.table({
        "symbol": pa.array(["A", "A", "A"]).dictionary_encode(),
        "ts": pa.array([base, base + 1, base + 1], pa.timestamp("ns", tz="UTC")),
        **ohlcv_columns(3),
    })
    with pytest.raises(DataError, match="duplicate") as exc:
        validate(t, BARS)
    assert exc.value.row == 2
    assert validate(t.slice(0, 2), BARS).num_rows == 2


def test_file_options_match_source_config_defaults() -> None:
    cfg = SourceConfig(name="x", kind="file", path="x.csv")
    assert FileOptions.from_config(cfg) == FileOptions()
    for f in fields(FileOptions):
        assert f.name in SourceConfig.model_fields


@pytest.mark.parametrize(
    "key,value",
    [
        ("epoch_unit", "fortnight"),
        ("ts_format", "%H:%M"),  # no year
        ("close_time", "25:00"),
        ("daily_close", "4pm"),
        ("timestamp_format", "%H:%M"),
        ("dst_policy", "guess"),
        ("mixed_offsets", "whatever"),
        ("min_price", 0.0),
        ("max_rows", 0),
        ("max_columns", 10**9),
        ("chunk_rows", 0),
        ("max_file_mb", float("inf")),
    ],
)
def test_bad_file_options_are_config_errors(key: str, value: Any) -> None:
    src = {"name": "f", "kind": "file", "path": "x.csv", key: value}
    with pytest.raises(ConfigError) as exc:
        build({"data": {"sources": [src]}})
    assert exc.value.key is not None and "sources" in exc.value.key
    assert key in str(exc.value) or key in exc.value.key


@pytest.mark.parametrize(
    "options",
    [{"min_price": 10.0, "max_price": 5.0}, {"ts_format": "%Y-%m-%d", "dayfirst": True},
     {"close_time": "16:00", "epoch_unit": "s"}, {"ts_format": "%Y-%m-%d", "timestamp_format": "%Y-%m-%d"},
     {"close_time": "16:00", "daily_close": "16:00"}],
    ids=["min-above-max", "format-and-dayfirst", "close-time-with-epochs", "two-spellings-of-format",
         "two-spellings-of-close"],
)
def test_conflicting_file_options_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        build({"data": {"sources": [{"name": "f", "kind": "file", "path": "x.csv", **options}]}})


def test_cli_ingest_of_a_bad_file_exits_nonzero_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(bars("01/02/2020", "03/04/2020"))
    cfg = tmp_path / "tw.json"
    source = {"name": "bad", "kind": "file", "path": str(bad)}
    cfg.write_text(json.dumps({"data_dir": str(tmp_path / "var"), "data": {"sources": [source]}}))
    code = main(["-c", str(cfg), "data", "ingest", "bad"])
    err = capsys.readouterr().err
    assert code != 0
    assert "DataError" in err and "bad.csv" in err and "dayfirst" in err
    assert "Traceback" not in err
    assert not (tmp_path / "var").exists() or not any((tmp_path / "var").rglob("*.seg*"))


def test_schema_error_is_a_data_error() -> None:
    assert issubclass(SchemaError, DataError)
