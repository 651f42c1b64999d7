"""CSV and Parquet files as a source: safe opening, bounded reading, one time format per file.

A file (or a directory of ``*.csv`` / ``*.parquet`` files) holds one symbol (named by config
or by the file's stem) or many (a symbol column).  Column names are matched
case-insensitively against common spellings unless ``columns`` maps them explicitly
(``{"Date": "ts", "Adj Close": "close"}``).

Nothing is guessed row by row: every file has one timestamp format, given by ``FileOptions``
(``ts_format`` alias ``timestamp_format``, ``dayfirst``, ``epoch_unit``) or inferred from the
whole column and refused when the column allows two readings.  Naive times are wall times in
the source's ``timezone`` (DST by ``dst_policy``); a date-only bar is stamped at ``close_time``
(alias ``daily_close``) in that zone, so ``timezone: America/New_York, daily_close: "16:00"``
gives the bundled sources' stamps.

Close-only files (a timestamp and a close, with or without volume; open, high and low are
all present or all absent) load: BARS needs every column, so the missing ones are filled in
(open = high = low = close, volume = 0), and the table's ``features.FILLED_KEY`` metadata
names them per symbol (``FileSource.filled``).  The features that read them (high/low:
``atr_14``, ``hl_range``; volume: ``volume_z_20``) then come out of ``features.compute`` as
NaN, listed with the reason in the FEATURES metadata (``features.UNAVAILABLE_KEY``) and in
``FileSource.describe()``; where the mark is lost (re-validation, a store round trip) the same
symbols are recognised by their values (every bar flat, or volume all 0).

Only regular files inside the configured path are opened; size, rows, columns and Parquet's decompressed size are bounded before anything big
is read, and CSV is read in blocks of about ``chunk_rows`` rows.  Every refusal is a
``DataError`` naming the file and, where there is one, the row (counted from 0, the first
line after the header), the column and the option that resolves it.  The policy, case by
case, is in ``docs/reliability/files.md``.
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tinywindow.contracts import BARS, SYMBOL
from tinywindow.data.base import HistoricalSource, price_bounds
from tinywindow.data.features import filled_columns, unavailable_features, with_filled
from tinywindow.data.sources._filetimes import TimeParser, TimePolicy
from tinywindow.errors import DataError

if TYPE_CHECKING:
    from tinywindow.data.config import SourceConfig

ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "datetime", "date", "time", "date_time", "gmt time", "local time"),
    "symbol": ("symbol", "ticker", "instrument", "asset"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "last", "price"),
    "volume": ("volume", "vol", "v"),
}
NUMERIC = ("open", "high", "low", "close", "volume")
RANGE = ("open", "high", "low")  # all or none: a file without them is close-only
MAX_SYMBOL_LEN = 64
MB = 1024 * 1024


@dataclass(frozen=True)
class FileOptions:
    """How a file source reads timestamps and what it refuses (``SourceConfig`` fields of the
    same names; the defaults are the same)."""

    ts_format: str | None = None
    dayfirst: bool | None = None
    epoch_unit: str | None = None
    time_column: str | None = None
    close_time: str | None = None
    dst_policy: str = "refuse"
    mixed_offsets: str = "refuse"
    min_price: float = 1e-9
    max_price: float = 1e12
    max_volume: float = 1e18
    max_file_mb: float = 2048.0
    max_rows: int = 50_000_000
    max_columns: int = 256
    max_uncompressed_mb: float = 8192.0
    chunk_rows: int = 65_536

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> FileOptions:
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})

    def time_policy(self) -> TimePolicy:
        return TimePolicy(**{f.name: getattr(self, f.name) for f in fields(TimePolicy)})


# --------------------------------------------------------------------------- opening


def _refuse_unless_regular(path: Path, root: Path) -> Path:
    """The real path of ``path`` when it is a regular file inside ``root``; refused (never
    opened) when it is a FIFO, a device, a directory, or a link leading out of ``root``."""
    try:
        real = path.resolve(strict=True)
        st = os.stat(real)
    except FileNotFoundError:
        raise DataError("file not found (or a dangling symlink)", source=str(path)) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise DataError(f"cannot stat file: {exc}", source=str(path)) from None
    if real != root and root not in real.parents:
        raise DataError(f"refused: resolves to {real}, outside the source directory {root}", source=str(path))
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"refused: not a regular file ({_kind(st.st_mode)})", source=str(path))
    return real


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "directory" if stat.S_ISDIR(mode) else "special file"


def files_under(path: Path) -> list[tuple[Path, Path]]:
    """(as configured, real path) of every file the source reads, each checked regular and
    inside the source directory (the configured directory, or a file's own directory); the
    configured directory itself may be a link, links inside it may not lead out."""
    path = Path(path)
    if not os.path.lexists(path):
        raise DataError("file not found", source=str(path))
    if path.is_dir():
        root = path.resolve()
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".parquet"))
        if not found:
            raise DataError("no .csv or .parquet files in directory", source=str(path))
        return [(p, _refuse_unless_regular(p, root)) for p in found]
    return [(path, _refuse_unless_regular(path, path.parent.resolve()))]


def _open(real: Path, source: str, opts: FileOptions) -> IO[bytes]:
    """Open without following a link swapped in since the check, without blocking on a
    FIFO, and re-check what was opened (regular, within ``max_file_mb``)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise DataError(f"cannot open file: {exc.strerror}", source=source) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise DataError("refused: not a regular file", source=source)
    if st.st_size > opts.max_file_mb * MB:
        os.close(fd)
        raise DataError(
            f"file is {st.st_size / MB:.1f} MB, over max_file_mb={opts.max_file_mb:g}", source=source
        )
    if st.st_size == 0:
        os.close(fd)
        raise DataError("empty file (no header, no bars)", source=source)
    return os.fdopen(fd, "rb")


# --------------------------------------------------------------------------- columns


def _check_names(names: list[str], source: str, opts: FileOptions) -> None:
    if len(names) > opts.max_columns:
        raise DataError(f"{len(names)} columns, over max_columns={opts.max_columns}", source=source)
    seen: dict[str, str] = {}
    for name in names:
        key = name.strip().lower()
        if key in seen:
            raise DataError(
                f"columns {seen[key]!r} and {name!r} collide (duplicate or differ only in case/space)",
                source=source,
                column=name,
            )
        seen[key] = name


def _shown(names: list[str]) -> str:
    text = ", ".join(repr(n[:40]) for n in names[:20])
    return text if len(names) <= 20 else f"{text}, ... {len(names)} in all"


def resolve_columns(found: list[str], mapping: Mapping[str, str], source: str) -> dict[str, str]:
    """Map contract column -> file column."""
    out: dict[str, str] = {}
    for file_col, contract_col in mapping.items():
        if contract_col not in ALIASES:
            raise DataError(f"column mapping targets unknown column {contract_col!r}", source=source)
        if file_col not in found:
            raise DataError(
                f"mapped column {file_col!r} not in file (has: {_shown(found)})", source=source, column=file_col
            )
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


def _plan(names: list[str], mapping: Mapping[str, str], symbol: str | None, opts: FileOptions,
          source: str) -> dict[str, str]:
    """Contract column (plus ``time`` when configured) -> file column, every one present."""
    cols = resolve_columns(names, mapping, source)
    for need in ("ts", "close"):
        if need not in cols:
            raise DataError(f"missing column {need!r} (file has: {_shown(names)})", source=source, column=need)
    ranges = [k for k in RANGE if k in cols]
    if ranges and len(ranges) < len(RANGE):  # a partial range is a typo or a broken file, not close-only
        need = next(k for k in RANGE if k not in cols)
        raise DataError(
            f"missing column {need!r} (file has: {_shown(names)}); a close-only file has none of open, high, low",
            source=source,
            column=need,
        )
    if "symbol" not in cols and not symbol:
        raise DataError("no symbol column and no symbol configured", source=source, column="symbol")
    if opts.time_column is not None:
        if opts.time_column not in names or opts.time_column == cols["ts"]:
            raise DataError(
                f"time_column {opts.time_column!r} is not a column of its own (date column: {cols['ts']!r})",
                source=source,
                column=opts.time_column,
            )
        cols["time"] = opts.time_column
    else:
        stray = [c for c in names if c.strip().lower() == "time" and c not in cols.values()]
        if stray:
            raise DataError(
                f"a separate {stray[0]!r} column next to {cols['ts']!r}: set time_column: {stray[0]!r} to "
                "combine them (or map the columns explicitly)",
                source=source,
                column=stray[0],
            )
    return cols


# --------------------------------------------------------------------------- values


def _first_bad(arr: pa.Array, ok: Any) -> int:
    """Index of a failing element of ``arr`` (known to fail as a whole) by bisection."""
    lo, n = 0, len(arr)
    while n > 1:
        half = n // 2
        if not ok(arr.slice(lo, half)):
            n = half
        else:
            lo, n = lo + half, n - half
    return lo


def _valid(arr: pa.Array) -> bool:
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _checked_utf8(arr: pa.Array, source: str, column: str, offset: int) -> pa.Array:
    """CSV text is read without Arrow's UTF-8 check so a bad byte can be located by row."""
    if pa.types.is_string(arr.type) and not _valid(arr):
        row = _first_bad(arr, _valid)
        raise DataError("not UTF-8 text (re-encode the file as UTF-8)", source=source, row=offset + row, column=column)
    return arr


def _numbers(arr: pa.Array, source: str, column: str, offset: int) -> np.ndarray:
    """A price / volume column as float64; text must be a number, types must be numeric."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pc.utf8_trim_whitespace(arr)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)  # empty: missing

        def castable(a: pa.Array) -> bool:
            try:
                pc.cast(a, pa.float64())
            except pa.ArrowInvalid:
                return False
            return True

        if not castable(text):
            row = _first_bad(text, castable)
            raise DataError(f"not a number: {text[row].as_py()!r}", source=source, row=offset + row, column=column)
        arr = pc.cast(text, pa.float64())
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        arr = pc.cast(arr, pa.float64(), safe=False)
    else:
        raise DataError(f"column has type {t}; prices and volumes must be numbers", source=source, column=column)
    return np.asarray(pc.fill_null(arr, float("nan")).to_numpy(zero_copy_only=False), dtype=np.float64)


def _symbols(arr: pa.Array, source: str, column: str, offset: int) -> pa.Array:
    """Symbols: non-empty, printable, at most MAX_SYMBOL_LEN characters (surrounding space
    trimmed)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise DataError(f"symbol column has type {arr.type}; symbols must be text", source=source, column=column)
    text = pc.cast(pc.utf8_trim_whitespace(arr), pa.string())
    length = pc.fill_null(pc.utf8_length(text), 0)
    for reason, bad in (
        ("empty symbol", pc.equal(length, 0)),
        ("symbol has non-printable characters", pc.invert(pc.fill_null(pc.utf8_is_printable(text), True))),
        (f"symbol longer than {MAX_SYMBOL_LEN} characters", pc.greater(length, MAX_SYMBOL_LEN)),
    ):
        mask = np.asarray(bad.to_numpy(zero_copy_only=False), dtype=bool)
        if mask.any():
            row = int(np.argmax(mask))
            raise DataError(f"{reason}: {text[row].as_py()!r}", source=source, row=offset + row, column=column)
    return text


def check_symbol(symbol: str, source: str) -> str:
    """A configured or file-name symbol obeys the same rules as a symbol column."""
    return str(_symbols(pa.array([symbol]), source, "symbol", 0)[0].as_py())


# --------------------------------------------------------------------------- readers


def _csv_header(f: IO[bytes], source: str, opts: FileOptions) -> list[str]:
    """The header's column names, read with a byte cap so a 10-million-column line is
    refused before any parser sees it."""
    cap = opts.max_columns * 256 + 1024
    raw = f.readline(cap + 1)
    f.seek(0)
    if len(raw) > cap and not raw.endswith(b"\n"):
        raise DataError(
            f"header line longer than {cap} bytes (more columns than max_columns={opts.max_columns}?)",
            source=source,
        )
    try:
        line = raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        raise DataError("header is not UTF-8 text (re-encode the file as UTF-8)", source=source) from None
    names = next(csv.reader([line.rstrip("\r\n")]), [])
    if not names or names == [""]:
        raise DataError("no header line", source=source)
    _check_names(names, source, opts)
    return names


def _block_size(f: IO[bytes], opts: FileOptions) -> int:
    """Bytes per read block: ``chunk_rows`` rows at the sampled line length, at least four
    times the longest sampled line (a row must fit in a block)."""
    sample = f.read(1 << 16)
    f.seek(0)
    lines = sample.split(b"\n")[1:-1] or [sample]
    avg = max(1, sum(len(x) + 1 for x in lines) // len(lines))
    longest = max(len(x) + 1 for x in lines)
    return int(min(64 * MB, max(4096, 4 * longest, opts.chunk_rows * avg)))


def _csv_batches(f: IO[bytes], include: list[str], source: str, opts: FileOptions) -> Iterator[pa.RecordBatch]:
    reader = pacsv.open_csv(
        f,
        read_options=pacsv.ReadOptions(block_size=_block_size(f, opts), use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in include},
            include_columns=include,
            check_utf8=False,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    yield from reader


def _parquet_batches(f: IO[bytes], include: list[str], source: str, opts: FileOptions) -> Iterator[pa.RecordBatch]:
    pf = pq.ParquetFile(f, page_checksum_verification=True)
    md = pf.metadata
    if md.num_rows > opts.max_rows:
        raise DataError(f"{md.num_rows} rows, over max_rows={opts.max_rows}", source=source)
    wanted = set(include)
    claimed = 0
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        for j in range(rg.num_columns):
            col = rg.column(j)
            if col.path_in_schema.split(".")[0] in wanted:
                claimed += col.total_uncompressed_size
    if claimed > opts.max_uncompressed_mb * MB:
        raise DataError(
            f"columns decompress to {claimed / MB:.1f} MB, over max_uncompressed_mb={opts.max_uncompressed_mb:g}",
            source=source,
        )
    read = 0
    for i in range(md.num_row_groups):
        table = pf.read_row_group(i, columns=include)
        read += table.nbytes  # the metadata can lie: count what really came out
        if read > opts.max_uncompressed_mb * MB:
            raise DataError(f"decompressed data over max_uncompressed_mb={opts.max_uncompressed_mb:g}", source=source)
        yield from table.to_batches(max_chunksize=opts.chunk_rows)


def _names(f: IO[bytes], parquet: bool, source: str, opts: FileOptions) -> list[str]:
    if not parquet:
        return _csv_header(f, source, opts)
    md = pq.ParquetFile(f).metadata
    f.seek(0)
    if md.num_columns > opts.max_columns:
        raise DataError(f"{md.num_columns} columns, over max_columns={opts.max_columns}", source=source)
    names = list(md.schema.to_arrow_schema().names)
    _check_names(names, source, opts)
    return names


def read_bars(
    real: Path,
    source: str,
    columns: Mapping[str, str] | None = None,
    symbol: str | None = None,
    timezone: str = "UTC",
    opts: FileOptions | None = None,
) -> pa.Table:
    """One file as a BARS table (values checked later by validation)."""
    opts = opts or FileOptions()
    parquet = real.suffix.lower() == ".parquet"
    with _open(real, source, opts) as f:
        try:
            return _read(f, parquet, source, columns or {}, symbol, timezone, opts)
        except UnicodeDecodeError:
            raise DataError("not UTF-8 text (re-encode the file as UTF-8)", source=source) from None
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise DataError(f"cannot read file: {exc}", source=source) from None


def _read(f: IO[bytes], parquet: bool, source: str, mapping: Mapping[str, str], symbol: str | None,
          timezone: str, opts: FileOptions) -> pa.Table:
    cols = _plan(_names(f, parquet, source, opts), mapping, symbol, opts, source)
    include = list(dict.fromkeys(cols.values()))
    batches = _parquet_batches(f, include, source, opts) if parquet else _csv_batches(f, include, source, opts)
    times = TimeParser(opts.time_policy(), timezone, source, cols["ts"])
    symbols: list[pa.Array] = []
    numbers: dict[str, list[np.ndarray]] = {k: [] for k in NUMERIC}
    rows = 0
    for batch in batches:
        n = batch.num_rows
        if rows + n > opts.max_rows:
            raise DataError(f"more than max_rows={opts.max_rows} rows", source=source, row=opts.max_rows)
        arrays = {c: _checked_utf8(batch.column(c), source, c, rows) for c in include}
        ts = arrays[cols["ts"]]
        if "time" in cols:
            ts = pc.binary_join_element_wise(pc.cast(ts, pa.string()), pc.cast(arrays[cols["time"]], pa.string()), " ")
        times.feed(ts, rows, combined="time" in cols)
        for k in NUMERIC:
            if k in cols:
                numbers[k].append(_numbers(arrays[cols[k]], source, cols[k], rows))
        if "symbol" in cols:
            symbols.append(_symbols(arrays[cols["symbol"]], source, cols["symbol"], rows))
        rows += n
    if rows == 0:
        raise DataError("no bars (a header and no rows)", source=source)
    sym = (
        pa.chunked_array(symbols).combine_chunks()
        if symbols
        else pa.array(np.full(rows, check_symbol(symbol or "", source), dtype=object), pa.string())
    )
    arrays_out: list[pa.Array] = [
        sym.dictionary_encode().cast(SYMBOL),
        pa.array(times.finish(), BARS.field("ts").type),
    ]
    close = np.concatenate(numbers["close"])
    filled = [k for k in NUMERIC if k not in cols]
    arrays_out += [
        pa.array(np.concatenate(numbers[k]) if k in cols else close if k in RANGE else np.zeros(rows))
        for k in NUMERIC
    ]
    table = pa.Table.from_arrays(arrays_out, schema=BARS)
    if filled:
        names = sym.unique().to_pylist()
        table = with_filled(table, dict.fromkeys(names, tuple(filled)))
    return table


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
        options: FileOptions | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.path = Path(path)
        self.columns = dict(columns or {})
        self.symbol = symbol
        self.timezone = timezone
        self.on_bad_rows = on_bad_rows
        self.replay_speed = replay_speed
        self.options = options or FileOptions()
        self.filled: dict[str, tuple[str, ...]] = {}  # close-only symbol -> columns filled in
        o = self.options
        self.rules = (price_bounds(o.min_price, o.max_price, o.max_volume),)

    def parts(self) -> Iterator[tuple[str, pa.Table]]:
        self.filled = {}
        for shown, real in files_under(self.path):
            sym = self.symbol or shown.stem.upper()
            table = read_bars(real, str(shown), self.columns, sym, self.timezone, self.options)
            for name, cols in filled_columns(table).items():
                self.filled[name] = tuple(k for k in NUMERIC if k in cols or k in self.filled.get(name, ()))
            yield str(shown), table

    def table(self) -> pa.Table:
        """The validated history; close-only symbols are named in its ``FILLED_KEY`` metadata
        so ``features.compute`` leaves the features built on filled columns unavailable."""
        try:
            table = super().table()
        except DataError as exc:
            # A close-only file's open/high/low are copies of its close: name the user's column.
            copied = {c for cols in self.filled.values() for c in cols if c in RANGE}
            if exc.column in copied:
                raise type(exc)(f"{exc.reason} (close: this close-only file's open, high and low are copies of it)",
                                source=exc.source, row=exc.row, column="close") from None
            raise
        if self.filled and not filled_columns(table):
            self._table = table = with_filled(table, self.filled)
        return table

    def describe(self) -> dict[str, Any]:
        """What the source holds: symbols, the columns filled in for close-only symbols, and
        the features unavailable because of them (feature -> reason)."""
        table = self.table()
        return {
            "name": self.name,
            "path": str(self.path),
            "rows": table.num_rows,
            "symbols": self.symbols(),
            "filled_columns": {k: list(v) for k, v in sorted(self.filled.items())},
            "unavailable_features": unavailable_features(self.filled),
        }
