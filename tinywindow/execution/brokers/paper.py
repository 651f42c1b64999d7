"""``PaperBroker``: a simulated venue.

Every open order fills at the open of the next bar of its symbol (a bar stamped after the
order), moved against the trader by the slippage model, paying the commission; an order
whose fill price falls outside its collar (its limit price) expires unfilled instead, so a
gap never fills at a price risk did not approve.  Fill prices and fees are in their journal
spelling (``canonical_decimal``), so the engine books them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from tinywindow.core.money import canonical_decimal
from tinywindow.execution.brokers.base import Broker
from tinywindow.execution.config import PortfolioConfig
from tinywindow.execution.costs import Commission, Slippage
from tinywindow.execution.orders import BarPrices, Expiry, Fill, Order

__all__ = ["PaperBroker", "paper_broker"]


class PaperBroker(Broker):
    """Simulated venue: next-bar-open fills with slippage, commission, collar expiry."""

    def __init__(self, commission: Commission | None = None, slippage: Slippage | None = None) -> None:
        self.commission = commission or Commission()
        self.slippage = slippage or Slippage()
        self._open: dict[str, Order] = {}
        self._seen: set[str] = set()

    def submit(self, order: Order) -> None:
        if order.order_id in self._seen:
            return
        self._seen.add(order.order_id)
        self._open[order.order_id] = order

    def cancel_all(self, ts: int, reason: str) -> list[Expiry]:
        out = [Expiry(o.order_id, o.symbol, ts, reason) for o in self._sorted()]
        self._open.clear()
        return out

    def open_orders(self) -> list[Order]:
        return self._sorted()

    def _sorted(self) -> list[Order]:
        return sorted(self._open.values(), key=lambda o: (o.ts, o.symbol, o.order_id))

    def fill_price(self, order: Order, open_price: Decimal) -> Decimal:
        return self.slippage.price(order.side, open_price)

    def on_market(self, bars: Mapping[str, BarPrices]) -> list[Fill | Expiry]:
        out: list[Fill | Expiry] = []
        for order in self._sorted():
            bar = bars.get(order.symbol)
            if bar is None or bar.ts <= order.ts:
                continue
            price = canonical_decimal(self.fill_price(order, bar.open))
            del self._open[order.order_id]
            if order.limit_price is not None and (
                (order.side > 0 and price > order.limit_price)
                or (order.side < 0 and price < order.limit_price)
            ):
                out.append(Expiry(order.order_id, order.symbol, bar.ts, "PRICE_COLLAR"))
                continue
            fee = canonical_decimal(self.commission.fee(order.qty, price))
            out.append(Fill(order.order_id, order.symbol, bar.ts, order.side, order.qty, price, fee))
        return out


def paper_broker(cfg: PortfolioConfig) -> PaperBroker:
    """The PaperBroker a PortfolioConfig describes."""
    commission = Commission.from_bps(cfg.commission_bps, cfg.commission_per_share_usd, cfg.commission_min_usd)
    return PaperBroker(commission, Slippage(cfg.slippage_bps))
