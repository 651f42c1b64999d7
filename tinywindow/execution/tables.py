"""Arrow in and out of the trading engine: BARS and SIGNALS rows in, ORDERS, FILLS and
OUTCOMES tables out.  Every table is validated against its contract where it enters.

Quantities, prices and fees leave as exact decimals (``schema.EXACT``, 18 places): the
engine's Decimal amounts rounded half-even at the 18th place, never through a float."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pyarrow as pa

from tinywindow.contracts import BARS, EXACT, FILLS, ORDERS, OUTCOMES, SIGNALS, WEIGHTS, validate
from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event
from tinywindow.execution.engine import BarRow, SignalRow, WeightRow
from tinywindow.execution.events import OrderFilled, OrderSubmitted, OutcomeRealized

_TS = pa.timestamp("ns", tz="UTC")
_QUANTUM = Decimal(1).scaleb(-EXACT.scale)


def exact(values: Iterable[str | Decimal]) -> pa.Array:
    """Decimal strings as an EXACT array (rounded half-even to its scale)."""
    return pa.array([Decimal(v).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN) for v in values], EXACT)


def _strings(table: pa.Table, name: str) -> list[str]:
    return table.column(name).cast(pa.string()).to_pylist()


def bar_rows(bars: pa.Table, source: str = "bars") -> list[BarRow]:
    t = validate(bars, BARS, source=source)
    return [
        BarRow(s, int(ts), float(o), float(c))
        for s, ts, o, c in zip(
            _strings(t, "symbol"), t.column("ts").cast(pa.int64()).to_pylist(),
            t.column("open").to_pylist(), t.column("close").to_pylist(), strict=True,
        )
    ]


def signal_rows(signals: pa.Table, source: str = "signals") -> list[SignalRow]:
    t = validate(signals, SIGNALS, source=source)
    return [
        SignalRow(s, int(ts), int(a), float(c), r, bool(d), float(sc))
        for s, ts, a, c, r, d, sc in zip(
            _strings(t, "symbol"), t.column("ts").cast(pa.int64()).to_pylist(), t.column("action").to_pylist(),
            t.column("confidence").to_pylist(), t.column("reason").to_pylist(), t.column("decided").to_pylist(),
            t.column("score").to_pylist(),
            strict=True,
        )
    ]


def weights_table(rows: Sequence[WeightRow]) -> pa.Table:
    """WEIGHTS from the engine's target weights (the decision -> execution contract)."""
    table = pa.table(
        {
            "symbol": pa.array([r.symbol for r in rows], pa.string()),
            "ts": pa.array([r.ts for r in rows], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "weight": pa.array([r.weight for r in rows], pa.float64()),
            "score": pa.array([r.score for r in rows], pa.float32()),
            "confidence": pa.array([r.confidence for r in rows], pa.float32()),
            "reason": pa.array([r.reason for r in rows], pa.string()),
        }
    )
    return validate(table, WEIGHTS, source="weights")


def weight_rows(weights: pa.Table, source: str = "weights") -> list[WeightRow]:
    """The rows of a WEIGHTS table, validated (a bad batch raises before any effect)."""
    t = validate(weights, WEIGHTS, source=source)
    return [
        WeightRow(s, int(ts), float(w), float(sc), float(c), r)
        for s, ts, w, sc, c, r in zip(
            _strings(t, "symbol"), t.column("ts").cast(pa.int64()).to_pylist(), t.column("weight").to_pylist(),
            t.column("score").to_pylist(), t.column("confidence").to_pylist(), t.column("reason").to_pylist(),
            strict=True,
        )
    ]


def _order_like(rows: Sequence[Mapping[str, Any]], schema: pa.Schema, price_key: str, fee: bool) -> pa.Table:
    table = pa.table(
        {
            "order_id": pa.array([r["order_id"] for r in rows], pa.string()),
            "symbol": pa.array([r["symbol"] for r in rows], pa.string()),
            "ts": pa.array([int(r["ts"]) for r in rows], pa.int64()).cast(_TS),
            "side": pa.array([int(r["side"]) for r in rows], pa.int8()),
            "qty": exact(r["qty"] for r in rows),
            "price": exact(r[price_key] for r in rows),
            "fee": exact(r["fee"] if fee else "0" for r in rows),
            "reason": pa.array([str(r["reason"]) for r in rows], pa.string()),
        }
    )
    return validate(table, schema, source="trading")


def orders_table(events: Iterable[Event]) -> pa.Table:
    """ORDERS from a call's events (price: the reference price risk approved against)."""
    return _order_like([CODEC.payload(e) for e in events if isinstance(e, OrderSubmitted)], ORDERS, "ref_price", fee=False)


def fills_table(events: Iterable[Event]) -> pa.Table:
    """FILLS from a call's events."""
    return _order_like([CODEC.payload(e) for e in events if isinstance(e, OrderFilled)], FILLS, "price", fee=True)


def outcomes_table(outcomes: Sequence[OutcomeRealized]) -> pa.Table:
    """OUTCOMES from realized outcomes."""
    table = pa.table(
        {
            "symbol": pa.array([o.symbol for o in outcomes], pa.string()),
            "ts": pa.array([o.ts for o in outcomes], pa.int64()).cast(_TS),
            "action": pa.array([o.action for o in outcomes], pa.int8()),
            "realized_return": pa.array([o.realized_return for o in outcomes], pa.float64()),
        }
    )
    return validate(table, OUTCOMES, source="trading")
