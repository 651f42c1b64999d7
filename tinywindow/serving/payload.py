"""Request and response payloads of the serving API, validated at the boundary.

Features arrive as columnar JSON (``{"symbol": [...], "ts": [...], "ret_1": [...], ...}``),
as an Arrow IPC stream, or as gRPC rows; each becomes a FEATURES table or a
``PayloadError`` naming the field (and row) that was wrong.  Votes and signals leave as JSON
records or protobuf messages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from tinywindow.data.features import FEATURE_NAMES
from tinywindow.errors import DataError
from tinywindow.schema import SYMBOL, TS, features_schema, validate

FEATURES_SCHEMA = features_schema(FEATURE_NAMES)


class PayloadError(DataError):
    """A client's request is malformed; ``field`` (and ``row``) say where."""

    def __init__(self, field: str, message: str, row: int | None = None) -> None:
        super().__init__(message, source="request", row=row, column=field)
        self.field = field


def _times(values: Sequence[Any]) -> np.ndarray:
    if set(map(type, values)) == {int}:  # the fast path: nanoseconds since the epoch
        return np.array(values, dtype=np.int64)
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):  # request-sized: a few thousand rows at most
        if isinstance(v, bool) or v is None:
            raise PayloadError("ts", f"not a time: {v!r}", i)
        if isinstance(v, int):
            out[i] = v
            continue
        if not isinstance(v, str):
            raise PayloadError("ts", f"not a time: {v!r}", i)
        try:
            ts = pd.Timestamp(v)
        except (ValueError, TypeError):
            raise PayloadError("ts", f"not a time: {v!r}", i) from None
        if ts.tzinfo is None:
            raise PayloadError("ts", f"time without a timezone: {v!r} (add Z or an offset)", i)
        out[i] = ts.tz_convert("UTC").value
    return out


def _numbers(field: str, values: Sequence[Any]) -> np.ndarray:
    if set(map(type, values)) <= {float, int, type(None)}:  # the fast path, no bools or text
        out = np.array(values, dtype=np.float64)  # None -> NaN
        if np.isinf(out).any():
            row = int(np.flatnonzero(np.isinf(out))[0])
            raise PayloadError(field, f"infinite value {values[row]!r}", row)
        return out.astype(np.float32)
    out = np.empty(len(values), dtype=np.float32)
    for i, v in enumerate(values):
        if v is None:
            out[i] = np.nan
        elif isinstance(v, int | float) and not isinstance(v, bool):
            if math.isinf(v):
                raise PayloadError(field, f"infinite value {v!r}", i)
            out[i] = v
        else:
            raise PayloadError(field, f"not a number: {v!r}", i)
    return out


def features_from_columns(columns: Any, names: Sequence[str] = FEATURE_NAMES) -> pa.Table:
    """A FEATURES table from columnar JSON; nulls are missing values (warm-up)."""
    if not isinstance(columns, Mapping):
        raise PayloadError("features", "must be an object mapping column names to arrays")
    expected = ["symbol", "ts", *names]
    for key in columns:
        if key not in expected:
            raise PayloadError(str(key), f"unknown column {key!r} (expected: {', '.join(expected)})")
    for key in expected:
        if key not in columns:
            raise PayloadError(key, f"missing column {key!r}")
        if not isinstance(columns[key], list):
            raise PayloadError(key, "must be an array")
    n = len(columns["symbol"])
    if n == 0:
        raise PayloadError("symbol", "no rows")
    for key in expected:
        if len(columns[key]) != n:
            raise PayloadError(key, f"has {len(columns[key])} values, 'symbol' has {n}")
    for i, s in enumerate(columns["symbol"]):
        if not isinstance(s, str) or not s:
            raise PayloadError("symbol", f"not a symbol: {s!r}", i)
    arrays: list[pa.Array] = [
        pa.array(columns["symbol"], pa.string()).dictionary_encode().cast(SYMBOL),
        pa.array(_times(columns["ts"]), TS),
    ]
    arrays += [pa.array(_numbers(k, columns[k])) for k in names]
    return _checked(pa.Table.from_arrays(arrays, schema=features_schema(names)), names)


def features_from_ipc(data: bytes, names: Sequence[str] = FEATURE_NAMES) -> pa.Table:
    try:
        table = ipc.open_stream(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise PayloadError("arrow_ipc", f"not an Arrow IPC stream: {exc}") from None
    for f in table.schema:
        if f.name not in ("symbol", "ts", *names):
            raise PayloadError(f.name, f"unknown column {f.name!r}")
    return _checked(table, names)


def features_from_rows(
    feature_names: Sequence[str], rows: Sequence[tuple[str, int, Sequence[float]]], names: Sequence[str] = FEATURE_NAMES
) -> pa.Table:
    """A FEATURES table from (symbol, ts_ns, values) rows with their column names."""
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
    return features_from_columns(cols, names)


def _checked(table: pa.Table, names: Sequence[str]) -> pa.Table:
    try:
        return validate(table, features_schema(names), source="request")
    except DataError as exc:
        raise PayloadError(exc.column or "features", exc.reason, exc.row) from None


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
