"""CSV and Parquet files as a source: configurable column mapping, timestamps to UTC.

A file (or a directory of ``*.csv`` / ``*.parquet`` files) holds one symbol (named by config
or by the file's stem) or many (a symbol column).  Column names are matched
case-insensitively against common spellings unless ``columns`` maps them explicitly
(``{"Date": "ts", "Adj Close": "close"}``).  Naive timestamps are read in ``timezone`` and
converted to UTC.  A value that is not a number, or a time that is not a time, raises
``DataError`` naming the file, the row and the column.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tinywindow.data.base import HistoricalSource
from tinywindow.errors import DataError
from tinywindow.schema import BARS, SYMBOL

ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "datetime", "date", "time", "date_time"),
    "symbol": ("symbol", "ticker", "instrument", "asset"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "last", "price"),
    "volume": ("volume", "vol", "v"),
}
NUMERIC = ("open", "high", "low", "close", "volume")


def read_frame(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path).to_pandas()
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(f"cannot read file: {exc}", source=str(path)) from exc


def resolve_columns(found: list[str], mapping: Mapping[str, str], source: str) -> dict[str, str]:
    """Map contract column -> file column."""
    out: dict[str, str] = {}
    for file_col, contract_col in mapping.items():
        if contract_col not in ALIASES:
            raise DataError(f"column mapping targets unknown column {contract_col!r}", source=source)
        if file_col not in found:
            raise DataError(f"mapped column {file_col!r} not in file (has: {found})", source=source, column=file_col)
        out[contract_col] = file_col
    lower = {c.lower().strip(): c for c in found}
    for contract_col, names in ALIASES.items():
        if contract_col in out:
            continue
        for n in names:
            if n in lower and lower[n] not in out.values():
                out[contract_col] = lower[n]
                break
    return out


def _numbers(series: pd.Series, source: str, column: str) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"not a number: {series.iloc[row]!r}", source=source, row=row, column=column)
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _times(series: pd.Series, tz: str, source: str, column: str) -> np.ndarray:
    parsed = pd.to_datetime(series, errors="coerce", utc=False, format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"not a time: {series.iloc[row]!r}", source=source, row=row, column=column)
    idx = pd.DatetimeIndex(parsed)
    idx = idx.tz_localize(tz) if idx.tz is None else idx.tz_convert("UTC")
    return idx.tz_convert("UTC").as_unit("ns").asi8


def frame_to_bars(
    df: pd.DataFrame,
    source: str,
    columns: Mapping[str, str] | None = None,
    symbol: str | None = None,
    timezone: str = "UTC",
) -> pa.Table:
    """A raw frame from a file as a BARS table (values checked later by validation)."""
    cols = resolve_columns(list(df.columns), columns or {}, source)
    for need in ("ts", *NUMERIC):
        if need not in cols:
            raise DataError(f"missing column {need!r} (file has: {list(df.columns)})", source=source, column=need)
    if "symbol" in cols:
        symbols = df[cols["symbol"]].astype(str).to_numpy()
    elif symbol:
        symbols = np.full(len(df), symbol, dtype=object)
    else:
        raise DataError("no symbol column and no symbol configured", source=source, column="symbol")
    arrays: list[pa.Array] = [
        pa.array(symbols, pa.string()).dictionary_encode().cast(SYMBOL),
        pa.array(_times(df[cols["ts"]], timezone, source, cols["ts"]), BARS.field("ts").type),
    ]
    arrays += [pa.array(_numbers(df[cols[k]], source, cols[k])) for k in NUMERIC]
    return pa.Table.from_arrays(arrays, schema=BARS)


def files_under(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".parquet"))
        if not found:
            raise DataError("no .csv or .parquet files in directory", source=str(path))
        return found
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    return [path]


class FileSource(HistoricalSource):
    """CSV / Parquet file(s) as a source."""

    def __init__(
        self,
        name: str,
        path: str | Path,
        columns: Mapping[str, str] | None = None,
        symbol: str | None = None,
        timezone: str = "UTC",
        on_bad_rows: str = "reject",
        replay_speed: float = 0.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.path = Path(path)
        self.columns = dict(columns or {})
        self.symbol = symbol
        self.timezone = timezone
        self.on_bad_rows = on_bad_rows
        self.replay_speed = replay_speed

    def parts(self) -> Iterator[tuple[str, pa.Table]]:
        paths = files_under(self.path)
        for p in paths:
            sym = self.symbol or p.stem.upper()
            yield str(p), frame_to_bars(read_frame(p), str(p), self.columns, sym, self.timezone)
