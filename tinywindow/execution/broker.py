"""Orders, fills, cost models and the broker seam.

Money is exact here: quantities, prices and fees are ``Decimal`` (a float price from a
BARS batch enters through ``to_decimal``, which keeps its shortest decimal spelling).  The
same commission and slippage rules exist in two spellings, ``Decimal`` for the event-driven
portfolio and float64 arrays for the vectorised simulator (``tinywindow.backtest.simulator``), side by
side in one class so they cannot drift apart; a unit test holds them equal.

``Broker`` is the interface live adapters implement.  ``PaperBroker`` fills every open order
at the open of the next bar of its symbol (a bar stamped after the order), moved against the
trader by the slippage model; an order whose fill price falls outside its collar (its limit
price) expires unfilled instead, so a gap never fills at a price risk did not approve.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np

from tinywindow.errors import DataError

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal(10_000)


def to_decimal(value: float | int | str | Decimal, *, name: str = "value") -> Decimal:
    """An exact Decimal for a price, quantity or amount; NaN and infinities are refused."""
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            raise DataError(f"{name} is not finite: {value!r}", column=name)
        out = Decimal(repr(float(value)))
    else:
        out = Decimal(value)
    if not out.is_finite():
        raise DataError(f"{name} is not finite: {value!r}", column=name)
    return out


def dec_str(value: Decimal) -> str:
    """Canonical text for a Decimal in journals and checkpoints (no exponent surprises)."""
    return format(value.normalize(), "f") if value != 0 else "0"


# --------------------------------------------------------------------------- costs


@dataclass(frozen=True)
class Commission:
    """Commission per fill: ``max(minimum, rate * notional + per_share * qty)``.

    ``rate`` is a fraction of notional (10 bps = 0.001).  The minimum applies to every fill
    with a positive quantity.
    """

    rate: float = 0.0
    per_share: float = 0.0
    minimum: float = 0.0

    @classmethod
    def from_bps(cls, bps: float, per_share: float = 0.0, minimum: float = 0.0) -> Commission:
        return cls(rate=bps / 10_000.0, per_share=per_share, minimum=minimum)

    def fee(self, qty: Decimal, price: Decimal) -> Decimal:
        """Exact fee for a fill of ``qty`` (> 0) at ``price``."""
        raw = abs(qty) * price * to_decimal(self.rate) + abs(qty) * to_decimal(self.per_share)
        return max(raw, to_decimal(self.minimum)) if qty != 0 else ZERO

    def fee_array(self, qty: np.ndarray, price: np.ndarray) -> np.ndarray:
        """The same rule on float64 arrays (zero where ``qty`` is zero)."""
        aq = np.abs(qty)
        raw = aq * price * self.rate + aq * self.per_share
        if self.minimum:
            raw = np.maximum(raw, self.minimum)
        return np.where(aq > 0, raw, 0.0)


@dataclass(frozen=True)
class Slippage:
    """Fills move against the trader by ``bps`` of the price: buys pay more, sells get less."""

    bps: float = 0.0

    def price(self, side: int, price: Decimal) -> Decimal:
        return price * (ONE + side * to_decimal(self.bps) / BPS)

    def price_array(self, side: np.ndarray, price: np.ndarray) -> np.ndarray:
        return price * (1.0 + side * (self.bps / 10_000.0))


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True)
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("qty", "ref_price", "limit_price"):
            d[k] = None if d[k] is None else dec_str(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Order:
        return cls(
            order_id=str(d["order_id"]),
            symbol=str(d["symbol"]),
            ts=int(d["ts"]),
            side=int(d["side"]),
            qty=Decimal(d["qty"]),
            ref_price=Decimal(d["ref_price"]),
            limit_price=None if d["limit_price"] is None else Decimal(d["limit_price"]),
            reason=str(d["reason"]),
        )


@dataclass(frozen=True)
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("qty", "price", "fee"):
            d[k] = dec_str(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fill:
        return cls(
            order_id=str(d["order_id"]),
            symbol=str(d["symbol"]),
            ts=int(d["ts"]),
            side=int(d["side"]),
            qty=Decimal(d["qty"]),
            price=Decimal(d["price"]),
            fee=Decimal(d["fee"]),
            reason=str(d.get("reason", "filled")),
        )


@dataclass(frozen=True)
class Expiry:
    """An order that left the book without filling (collar, cancel-all, halt)."""

    order_id: str
    symbol: str
    ts: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Expiry:
        return cls(str(d["order_id"]), str(d["symbol"]), int(d["ts"]), str(d["reason"]))


class BarPrices(NamedTuple):
    """What a broker needs from one bar of one symbol."""

    ts: int
    open: Decimal
    close: Decimal


# --------------------------------------------------------------------------- brokers


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
            price = self.fill_price(order, bar.open)
            del self._open[order.order_id]
            if order.limit_price is not None and (
                (order.side > 0 and price > order.limit_price)
                or (order.side < 0 and price < order.limit_price)
            ):
                out.append(Expiry(order.order_id, order.symbol, bar.ts, "PRICE_COLLAR"))
                continue
            fee = self.commission.fee(order.qty, price)
            out.append(Fill(order.order_id, order.symbol, bar.ts, order.side, order.qty, price, fee))
        return out


def resubmit(broker: Broker, orders: Iterable[Order]) -> None:
    """After a restart, hand the still-open orders back to the broker (idempotent)."""
    for order in orders:
        broker.submit(order)
