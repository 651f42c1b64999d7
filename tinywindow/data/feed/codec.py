"""BARS tables <-> protobuf messages of the feed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from tinywindow.contracts import BARS, SYMBOL
from tinywindow.data.feed import market_data_pb2 as pb

_PRICES = ("open", "high", "low", "close", "volume")


def table_to_bars(table: pa.Table, first_seq: int) -> list[pb.Bar]:
    """One Bar message per row, numbered from ``first_seq``."""
    symbols = table.column("symbol").cast(pa.string()).to_pylist()
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    cols = [table.column(k).to_pylist() for k in _PRICES]
    return [
        pb.Bar(seq=first_seq + i, symbol=s, ts_ns=t, open=o, high=h, low=lo, close=c, volume=v)
        for i, (s, t, o, h, lo, c, v) in enumerate(zip(symbols, ts, *cols, strict=True))
    ]


def bars_to_table(bars: Sequence[pb.Bar]) -> pa.Table:
    """A BARS table (not yet validated) from Bar messages."""
    n = len(bars)
    symbol = pa.array([b.symbol for b in bars], pa.string()).dictionary_encode().cast(SYMBOL)
    ts = pa.array(np.fromiter((b.ts_ns for b in bars), np.int64, n), BARS.field("ts").type)
    cols = [pa.array(np.fromiter((getattr(b, k) for b in bars), np.float64, n)) for k in _PRICES]
    return pa.Table.from_arrays([symbol, ts, *cols], schema=BARS)
