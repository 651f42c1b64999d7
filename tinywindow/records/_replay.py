"""``PortfolioReplay``: a portfolio journal applied to a fresh ``TradingEngine``, as rows.

The engine's own ``apply`` (the PortfolioActor's start-up path) rebuilds the book; each event
also leaves the rows a projection stores: an order, a fill, an equity mark (the engine's
equity right after the ``BarMarked``), a risk event.  Amounts stay exact ``Decimal``; every
row carries the journal ``seq`` of its record.  The full loader (``load_run``) and the live
``StoreWriter`` both go through here, so a live projection and a rebuild cannot differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event
from tinywindow.core.money import ZERO
from tinywindow.crypto.journal import Record
from tinywindow.execution.accounting import position_after_fill
from tinywindow.execution.config import PortfolioConfig
from tinywindow.execution.engine import TradingEngine
from tinywindow.execution.events import BarMarked, OrderFilled, OrderSubmitted
from tinywindow.risk.config import RiskConfig
from tinywindow.risk.events import RiskDenied

__all__ = ["PortfolioReplay", "Rows"]


@dataclass
class Rows:
    """Rows derived from a run of events (money as ``Decimal``, ``ts`` as ns)."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    equity: list[dict[str, Any]] = field(default_factory=list)
    risk_events: list[dict[str, Any]] = field(default_factory=list)
    closes: list[tuple[int, str, Decimal]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.orders or self.fills or self.equity or self.risk_events)


class PortfolioReplay:
    """A fresh engine fed one journal's events in order (see the module docstring)."""

    def __init__(self, risk: RiskConfig | None = None, portfolio: PortfolioConfig | None = None) -> None:
        self.engine = TradingEngine(risk or RiskConfig(), portfolio or PortfolioConfig())
        self.seq = -1  # the last journal seq applied
        self.realized: dict[str, Decimal] = {}  # per symbol, gross of fees (as the book counts it)
        self._book: dict[str, tuple[Decimal, Decimal, Decimal]] = {}

    @property
    def initial_cash(self) -> Decimal:
        cash = self.engine.portfolio.initial_cash
        return cash if cash is not None else ZERO

    def apply_records(self, records: Iterable[Record], rows: Rows) -> None:
        """Decode and apply journal records (seq order), adding their rows to ``rows``."""
        for rec in records:
            self.apply(rec.seq, CODEC.decode(rec.kind, rec.payload), rows)

    def apply(self, seq: int, event: Event, rows: Rows) -> None:
        """Apply one event (journal record ``seq``) and add the rows it leaves."""
        self.engine.apply(event)
        self.seq = max(self.seq, seq)
        if isinstance(event, OrderSubmitted):
            o = event.order
            rows.orders.append({"seq": seq, "order_id": o.order_id, "symbol": o.symbol, "ts": o.ts, "side": o.side,
                                "qty": o.qty, "price": o.ref_price, "limit_price": o.limit_price, "reason": o.reason})
        elif isinstance(event, OrderFilled):
            f = event.fill
            q, c, e = self._book.get(f.symbol, (ZERO, ZERO, ZERO))
            q, c, e, realized, _ = position_after_fill(q, c, e, f.signed_qty, f.price, f.fee)
            self._book[f.symbol] = (q, c, e)
            self.realized[f.symbol] = self.realized.get(f.symbol, ZERO) + realized
            rows.fills.append({"seq": seq, "order_id": f.order_id, "symbol": f.symbol, "ts": f.ts, "side": f.side,
                               "qty": f.qty, "price": f.price, "fee": f.fee, "reason": f.reason})
        elif isinstance(event, BarMarked):
            rows.equity.append({"seq": seq, "ts": event.ts, "equity": self.engine.portfolio.equity()})
            rows.closes.extend((event.ts, s, c) for s, c in event.closes)
        elif isinstance(event, RiskDenied):
            rows.risk_events.append({"seq": seq, "ts": event.ts, "symbol": event.symbol, "order_id": event.order_id,
                                     "reason": event.reason, "action": event.action, "detail": event.detail,
                                     "requested_qty": event.requested_qty, "allowed_qty": event.allowed_qty})

    def positions(self) -> list[dict[str, Any]]:
        """The final book, one row per symbol ever traded (qty 0 once closed), exact."""
        p = self.engine.portfolio
        out = []
        for symbol in sorted(set(self.realized) | set(p.positions)):
            pos = p.positions.get(symbol)
            qty = pos.qty if pos is not None else ZERO
            avg = pos.avg_price if pos is not None else ZERO
            last = p.prices.get(symbol)
            cost = pos.cost if pos is not None else ZERO
            value = qty * last if last is not None else cost  # unmarked: at cost, as the book values it
            unrealized = value - cost
            out.append({"symbol": symbol, "qty": qty, "avg_price": avg, "last_price": last, "market_value": value,
                        "unrealized_pnl": unrealized, "realized_pnl": self.realized.get(symbol, ZERO)})
        return out
