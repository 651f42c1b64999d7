"""Execution: the event-driven trading engine and the parts it composes.

* ``engine``: ``TradingEngine`` (signals and bars in, orders and fills out, under risk)
* ``events``: its typed events (``OrderSubmitted``, ``OrderFilled``, ...)
* ``orders``: ``Order``, ``Fill``, ``Expiry``, the ``OrderBook`` of open orders
* ``costs``: ``Commission``, ``Slippage`` (Decimal and float64 spellings)
* ``accounting``: ``Portfolio`` (cash, positions, P&L), ``order_id``
* ``outcomes``: ``OutcomeBook`` (decision -> realized return)
* ``brokers``: the ``Broker`` port and the ``PaperBroker``
* ``tables``: Arrow in and out (BARS/SIGNALS rows, ORDERS/FILLS/OUTCOMES tables)
* ``config``: ``PortfolioConfig``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinywindow.core.lazy import lazy_exports

if TYPE_CHECKING:
    from tinywindow.execution.accounting import Portfolio, order_id
    from tinywindow.execution.brokers import Broker, PaperBroker, paper_broker
    from tinywindow.execution.config import PortfolioConfig
    from tinywindow.execution.costs import Commission, Slippage
    from tinywindow.execution.engine import BarRow, SignalRow, TradingEngine
    from tinywindow.execution.orders import Expiry, Fill, Order

__all__ = [
    "BarRow",
    "Broker",
    "Commission",
    "Expiry",
    "Fill",
    "Order",
    "PaperBroker",
    "Portfolio",
    "PortfolioConfig",
    "SignalRow",
    "Slippage",
    "TradingEngine",
    "order_id",
    "paper_broker",
]

_EXPORTS = {
    "BarRow": "tinywindow.execution.engine",
    "Broker": "tinywindow.execution.brokers",
    "Commission": "tinywindow.execution.costs",
    "Expiry": "tinywindow.execution.orders",
    "Fill": "tinywindow.execution.orders",
    "Order": "tinywindow.execution.orders",
    "PaperBroker": "tinywindow.execution.brokers",
    "Portfolio": "tinywindow.execution.accounting",
    "PortfolioConfig": "tinywindow.execution.config",
    "SignalRow": "tinywindow.execution.engine",
    "Slippage": "tinywindow.execution.costs",
    "TradingEngine": "tinywindow.execution.engine",
    "order_id": "tinywindow.execution.accounting",
    "paper_broker": "tinywindow.execution.brokers",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)
