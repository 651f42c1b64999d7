"""Request and response payloads of the serving API, validated at the boundary.

Features arrive as columnar JSON (``{"symbol": [...], "ts": [...], "ret_1": [...], ...}``),
as an Arrow IPC stream, or as gRPC rows; each becomes a FEATURES table or a
``PayloadError`` naming the field (and row) that was wrong.  Votes and signals leave as JSON
records or protobuf messages.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from tinywindow.contracts import SYMBOL, TS, features_schema, validate
from tinywindow.data.features import FEATURE_NAMES
from tinywindow.errors import DataError
from tinywindow.serving._ipc_limits import IpcLimitError, ipc_cost
from tinywindow.serving.limits import GatewayLimits

FEATURES_SCHEMA = features_schema(FEATURE_NAMES)
DEFAULT_LIMITS = GatewayLimits()
MAX_TS_NS = 2**63 - 1  # 2262-04-11: the end of int64 nanoseconds
FLOAT32_MAX = float(np.finfo(np.float32).max)
_JSON_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


class PayloadError(DataError):
    """A client's request is malformed; ``field`` (and ``row``) say where.  HTTP 400."""

    status = 400

    def __init__(self, field: str, message: str, row: int | None = None) -> None:
        super().__init__(message, source="request", row=row, column=field)
        self.field = field


class PayloadTooLarge(PayloadError):
    """A request is well-formed but over a limit the message names.  HTTP 413."""

    status = 413


def parse_json(body: bytes, limits: GatewayLimits = DEFAULT_LIMITS) -> Any:
    """``json.loads`` for hostile bodies: nesting is bounded before parsing (a scan that
    stops at the first level past ``max_json_depth``), and every parse failure, including
    integers too long to convert, is a ``PayloadError`` on ``body``."""
    depth, in_string, skip = 0, False, -1
    for m in _JSON_STRUCTURE.finditer(body):
        at, c = m.start(), m.group()
        if at == skip:
            continue
        if c == b"\\":
            skip = at + 1
        elif c == b'"':
            in_string = not in_string
        elif in_string:
            continue
        elif c in b"[{":
            depth += 1
            if depth > limits.max_json_depth:
                raise PayloadError("body", f"JSON nested deeper than {limits.max_json_depth} levels (max_json_depth)")
        else:
            depth -= 1
    try:
        return json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadError("body", f"not valid JSON: {str(exc)[:200]}") from None


def _ts_range(value: int, row: int) -> int:
    if not 0 <= value <= MAX_TS_NS:
        raise PayloadError("ts", f"time out of range: {value} ns (allowed: 1970-01-01 to 2262-04-11)", row)
    return value


def _times(values: Sequence[Any]) -> np.ndarray:
    if set(map(type, values)) == {int} and min(values) >= 0 and max(values) <= MAX_TS_NS:
        return np.array(values, dtype=np.int64)  # the fast path: nanoseconds since the epoch
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):  # request-sized: bounded by max_rows
        if isinstance(v, bool) or v is None:
            raise PayloadError("ts", f"not a time: {v!r}", i)
        if isinstance(v, int):
            out[i] = _ts_range(v, i)
            continue
        if not isinstance(v, str):
            raise PayloadError("ts", f"not a time: {str(v)[:80]!r}", i)
        try:
            ts = pd.Timestamp(v)
        except (ValueError, TypeError, OverflowError):
            raise PayloadError("ts", f"not a time: {v[:80]!r}", i) from None
        if ts.tzinfo is None:
            raise PayloadError("ts", f"time without a timezone: {v[:80]!r} (add Z or an offset)", i)
        try:
            out[i] = _ts_range(int(ts.tz_convert("UTC").value), i)
        except (OverflowError, ValueError):
            raise PayloadError("ts", f"time out of range: {v[:80]!r} (allowed: 1970-01-01 to 2262-04-11)", i) from None
    return out


def _finite32(field: str, out: np.ndarray, values: Sequence[Any]) -> np.ndarray:
    """``out`` (float64) as float32, refusing inf and values past float32's range."""
    bad = np.flatnonzero(np.abs(out) > FLOAT32_MAX)  # NaN compares False: missing stays missing
    if len(bad):
        row = int(bad[0])
        what = "infinite value" if np.isinf(out[row]) else "number out of range (float32)"
        raise PayloadError(field, f"{what} {str(values[row])[:40]}", row)
    return out.astype(np.float32)


def _numbers(field: str, values: Sequence[Any]) -> np.ndarray:
    if set(map(type, values)) <= {float, int, type(None)}:  # the fast path, no bools or text
        try:
            return _finite32(field, np.array(values, dtype=np.float64), values)  # None -> NaN
        except OverflowError:
            pass  # an integer past float64: the slow path names its row
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            out[i] = np.nan
        elif isinstance(v, int | float) and not isinstance(v, bool):
            try:
                out[i] = float(v)
            except OverflowError:
                raise PayloadError(field, f"number out of range: {str(v)[:40]}...", i) from None
        else:
            raise PayloadError(field, f"not a number: {str(v)[:80]!r}", i)
    return _finite32(field, out, values)


def _symbol_ok(s: Any, limits: GatewayLimits) -> bool:
    return (
        isinstance(s, str)
        and 0 < len(s) <= limits.max_symbol_chars
        and s.isprintable()  # no control characters, no lone surrogates
        and not any(c.isspace() for c in s)
    )


def _check_symbols(values: Sequence[Any], limits: GatewayLimits) -> None:
    for i, s in enumerate(values):
        if not _symbol_ok(s, limits):
            raise PayloadError(
                "symbol",
                f"not a symbol: {str(s)[:40]!r} (1-{limits.max_symbol_chars} printable characters, no spaces)",
                i,
            )


def _check_rows(n: int, limits: GatewayLimits) -> None:
    if n > limits.max_rows:
        raise PayloadTooLarge("symbol", f"{n} rows, more than {limits.max_rows} (max_rows)")


def features_from_columns(
    columns: Any, names: Sequence[str] = FEATURE_NAMES, limits: GatewayLimits = DEFAULT_LIMITS
) -> pa.Table:
    """A FEATURES table from columnar JSON; nulls are missing values (warm-up)."""
    if not isinstance(columns, Mapping):
        raise PayloadError("features", "must be an object mapping column names to arrays")
    expected = ["symbol", "ts", *names]
    for key in columns:
        if key not in expected:
            raise PayloadError(str(key)[:80], f"unknown column {str(key)[:80]!r} (expected: {', '.join(expected)})")
    for key in expected:
        if key not in columns:
            raise PayloadError(key, f"missing column {key!r}")
        if not isinstance(columns[key], list):
            raise PayloadError(key, "must be an array")
    n = len(columns["symbol"])
    if n == 0:
        raise PayloadError("symbol", "no rows")
    _check_rows(n, limits)
    for key in expected:
        if len(columns[key]) != n:
            raise PayloadError(key, f"has {len(columns[key])} values, 'symbol' has {n}")
    _check_symbols(columns["symbol"], limits)
    arrays: list[pa.Array] = [
        pa.array(columns["symbol"], pa.string()).dictionary_encode().cast(SYMBOL),
        pa.array(_times(columns["ts"]), TS),
    ]
    arrays += [pa.array(_numbers(k, columns[k])) for k in names]
    return _checked(pa.Table.from_arrays(arrays, schema=features_schema(names)), names)


def features_from_ipc(
    data: bytes, names: Sequence[str] = FEATURE_NAMES, limits: GatewayLimits = DEFAULT_LIMITS
) -> pa.Table:
    """A FEATURES table from an Arrow IPC stream (compressed or not).  Rows and decoded
    bytes are checked from the stream's metadata before anything is decompressed
    (``PayloadTooLarge`` past ``max_rows`` / ``max_decoded_bytes``), the schema before any
    batch is read, and the data fully (offsets, UTF-8) before it is used."""
    try:
        ipc_cost(data, max_rows=limits.max_rows, max_decoded_bytes=limits.max_decoded_bytes)
    except IpcLimitError as exc:
        raise (PayloadTooLarge if exc.too_large else PayloadError)("arrow_ipc", str(exc)) from None
    try:
        reader = ipc.open_stream(pa.py_buffer(data))
        seen: set[str] = set()
        for f in reader.schema:
            if f.name not in ("symbol", "ts", *names):
                raise PayloadError(f.name[:80], f"unknown column {f.name[:80]!r}")
            if f.name in seen:
                raise PayloadError(f.name, f"column {f.name!r} given twice")
            seen.add(f.name)
        table = reader.read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise PayloadError("arrow_ipc", f"not a valid Arrow IPC stream: {str(exc)[:200]}") from None
    if table.num_rows == 0:
        raise PayloadError("symbol", "no rows")
    if "symbol" in table.column_names:
        try:
            _check_symbols(pc.unique(table.column("symbol").cast(pa.string())).to_pylist(), limits)
        except pa.ArrowException as exc:
            raise PayloadError("symbol", f"not symbols: {str(exc)[:200]}") from None
    checked = _checked(table, names)
    ts = checked.column("ts").cast(pa.int64())
    if len(ts) and pc.min(ts).as_py() < 0:
        row = int(np.flatnonzero(ts.to_numpy() < 0)[0])
        raise PayloadError("ts", "time out of range: before 1970-01-01", row)
    return checked


def features_from_rows(
    feature_names: Sequence[str],
    rows: Sequence[tuple[str, int, Sequence[float]]],
    names: Sequence[str] = FEATURE_NAMES,
    limits: GatewayLimits = DEFAULT_LIMITS,
) -> pa.Table:
    """A FEATURES table from (symbol, ts_ns, values) rows with their column names."""
    _check_rows(len(rows), limits)
    cols: dict[str, Any] = {"symbol": [r[0] for r in rows], "ts": [int(r[1]) for r in rows]}
    for j, name in enumerate(feature_names):
        if name in cols:
            raise PayloadError(name, f"column {name!r} given twice")
        cols[name] = []
        for i, r in enumerate(rows):
            if len(r[2]) != len(feature_names):
                raise PayloadError("values", f"has {len(r[2])} values, expected {len(feature_names)}", i)
            v = float(r[2][j])
            cols[name].append(None if math.isnan(v) else v)
    return features_from_columns(cols, names, limits)


def _checked(table: pa.Table, names: Sequence[str]) -> pa.Table:
    try:
        return validate(table, features_schema(names), source="request")
    except DataError as exc:
        raise PayloadError(exc.column or "features", exc.reason, exc.row) from None
    except (pa.ArrowException, OverflowError, ValueError, KeyError) as exc:  # a cast that does not fit
        raise PayloadError("features", f"does not fit the FEATURES contract: {str(exc)[:200]}") from None


def to_ipc(table: pa.Table) -> bytes:
    """A table as Arrow IPC stream bytes: the cheap way to move a small table between Ray
    processes (Ray's generic Table serialization costs milliseconds per call; this costs
    tens of microseconds).  Large tables should travel as Tables: they go zero-copy."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_ipc(data: bytes) -> pa.Table:
    """The table of ``to_ipc`` (an internal hop: validation happened where it entered)."""
    return ipc.open_stream(pa.py_buffer(data)).read_all()


def _iso(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").isoformat()


def records(table: pa.Table) -> list[dict[str, Any]]:
    """VOTES or SIGNALS rows as JSON-ready dicts (``ts`` ISO-8601, plus ``ts_ns``)."""
    out = []
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    cols = {c: table.column(c).to_pylist() for c in table.column_names if c != "ts"}
    for i, t in enumerate(ts):
        row: dict[str, Any] = {"ts": _iso(t), "ts_ns": t}
        for c, values in cols.items():
            v = values[i]
            row[c] = round(v, 6) if isinstance(v, float) else v
        out.append(row)
    return out
