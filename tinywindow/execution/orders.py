"""Orders, fills and expiries (exact ``Decimal`` amounts), and the book of open orders.

An ``Order`` is a market order with a collar: it may fill only at its ``limit_price`` or
better.  Its ``order_id`` is a pure function of the decision that made it
(``tinywindow.execution.accounting.order_id``), so a replayed decision cannot trade twice.
Their journal spelling is the codec's (``tinywindow.execution.events``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from tinywindow.core.money import ZERO

__all__ = ["BarPrices", "Expiry", "Fill", "Order", "OrderBook"]


@dataclass(frozen=True, slots=True)
class Order:
    """A market order decided at ``ts`` with a collar: it may fill only at ``limit_price`` or
    better (None: no collar).  ``order_id`` is a pure function of the decision that made it."""

    order_id: str
    symbol: str
    ts: int  # ns since the epoch, UTC: when the order was decided
    side: int  # +1 buy, -1 sell
    qty: Decimal  # > 0
    ref_price: Decimal  # the reference price risk approved it against
    limit_price: Decimal | None
    reason: str

    @property
    def signed_qty(self) -> Decimal:
        return self.qty * self.side


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution of a whole order at ``price`` (slippage included), paying ``fee``."""

    order_id: str
    symbol: str
    ts: int  # when it filled
    side: int
    qty: Decimal
    price: Decimal
    fee: Decimal
    reason: str = "filled"

    @property
    def signed_qty(self) -> Decimal:
        return self.qty * self.side


@dataclass(frozen=True, slots=True)
class Expiry:
    """An order that left the book without filling (collar, cancel-all, halt)."""

    order_id: str
    symbol: str
    ts: int
    reason: str


class BarPrices(NamedTuple):
    """What a broker needs from one bar of one symbol."""

    ts: int
    open: Decimal
    close: Decimal


class OrderBook:
    """The account's open orders by id: sent, neither filled nor expired."""

    def __init__(self) -> None:
        self.open: dict[str, Order] = {}

    def __contains__(self, order_id: object) -> bool:
        return order_id in self.open

    def __iter__(self) -> Iterator[Order]:
        """Open orders in order-id order (deterministic)."""
        return (self.open[k] for k in sorted(self.open))

    def add(self, order: Order) -> None:
        self.open[order.order_id] = order

    def remove(self, order_id: str) -> None:
        self.open.pop(order_id, None)

    def pending_qty(self, symbol: str) -> Decimal:
        """The signed quantity of ``symbol`` still to fill."""
        return sum((o.signed_qty for o in self.open.values() if o.symbol == symbol), ZERO)

    def symbols(self) -> set[str]:
        return {o.symbol for o in self.open.values()}
