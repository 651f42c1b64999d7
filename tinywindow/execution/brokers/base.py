"""The broker port: the interface a venue adapter implements (paper, or a live broker)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping

from tinywindow.execution.orders import BarPrices, Expiry, Fill, Order

__all__ = ["Broker", "resubmit"]


class Broker(ABC):
    """Where orders go.  Submission is idempotent by ``order_id`` (a replayed order that the
    venue already holds is ignored), so restarting an actor cannot double-trade."""

    @abstractmethod
    def submit(self, order: Order) -> None:
        """Hand an order to the venue (no-op if an order with this id was seen before)."""

    @abstractmethod
    def cancel_all(self, ts: int, reason: str) -> list[Expiry]:
        """Cancel every open order; the expiries say which."""

    @abstractmethod
    def open_orders(self) -> list[Order]:
        """Orders submitted and neither filled nor expired."""

    @abstractmethod
    def on_market(self, bars: Mapping[str, BarPrices]) -> list[Fill | Expiry]:
        """New market data (one bar per symbol); returns what happened to open orders.

        A live adapter ignores the bars and returns the executions its venue reported.
        """


def resubmit(broker: Broker, orders: Iterable[Order]) -> None:
    """After a restart, hand the still-open orders back to the broker (idempotent)."""
    for order in orders:
        broker.submit(order)
