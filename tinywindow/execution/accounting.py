"""Accounting: cash, positions, average cost, realized and unrealized P&L, fees.

Every amount is a ``Decimal``: cash moves by exactly ``-(qty * price) - fee`` on a fill, so
cash plus positions valued at the fill price is conserved across a fill, less its fee (a
property test holds this).  A position keeps its signed cost basis (``qty * average
price``) and the fees paid to open it; reducing a position realizes
``closed_qty * (price - average price)`` and closes a *trade* whose P&L is net of its share
of entry fees and of the exit fee, the way backtesting.py counts trades (win rate and
profit factor come from these).

``position_after_fill`` is the one accounting rule; it is generic over ``Decimal`` and
``float`` so the vectorised simulator's trade statistics use it too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from tinywindow.core.money import ZERO, dec_str
from tinywindow.execution.orders import Fill

N = TypeVar("N", Decimal, float)


def order_id(account: str, symbol: str, ts_ns: int, intent: str) -> str:
    """The idempotency key of an order: a pure function of the decision that made it.

    ``intent`` names the decision (a signal's action, or an explicit target), so the same
    signal replayed after a crash produces the same id and is recognised, never re-traded.
    """
    key = f"{account}|{symbol}|{int(ts_ns)}|{intent}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


@dataclass(frozen=True)
class Position:
    """One symbol's holding: signed quantity, signed cost basis, fees paid to open it."""

    qty: Decimal = ZERO
    cost: Decimal = ZERO
    entry_fees: Decimal = ZERO

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.qty if self.qty else ZERO

    def to_dict(self) -> dict[str, str]:
        return {"qty": dec_str(self.qty), "cost": dec_str(self.cost), "entry_fees": dec_str(self.entry_fees)}

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> Position:
        return cls(Decimal(d["qty"]), Decimal(d["cost"]), Decimal(d["entry_fees"]))


def _sign(x: N) -> int:
    return (x > 0) - (x < 0)


def position_after_fill(
    qty: N, cost: N, entry_fees: N, fill_qty: N, price: N, fee: N
) -> tuple[N, N, N, N, N | None]:
    """Apply a signed fill to a position ``(qty, cost, entry_fees)``.

    Returns the new ``(qty, cost, entry_fees)``, the realized P&L (gross of fees) and the
    net P&L of the trade this fill closed (None when it closed nothing).  A fill that flips
    the position closes the old trade and opens a new one with the rest; its fee is split
    between the two legs by quantity.
    """
    zero = qty * 0
    if fill_qty == 0:
        return qty, cost, entry_fees, zero, None
    if qty == 0 or _sign(qty) == _sign(fill_qty):
        return qty + fill_qty, cost + fill_qty * price, entry_fees + fee, zero, None
    closing = min(abs(fill_qty), abs(qty))  # magnitude of the closed part
    closed_signed = closing * _sign(qty)  # the part of the position that is closed
    frac = closing / abs(qty)
    cost_closed = cost * frac
    realized = closed_signed * price - cost_closed
    fee_close = fee * closing / abs(fill_qty)
    entry_closed = entry_fees * frac
    trade_pnl = realized - fee_close - entry_closed
    rest = fill_qty + closed_signed  # what is left of the fill after closing
    new_qty = qty - closed_signed
    if rest != 0:  # flipped: open the new side with the rest
        return rest, rest * price, fee - fee_close, realized, trade_pnl
    if new_qty == 0:
        return zero, zero, zero, realized, trade_pnl
    return new_qty, cost - cost_closed, entry_fees - entry_closed, realized, trade_pnl


@dataclass
class Portfolio:
    """Cash, positions and P&L of one account, updated by fills and marked by prices."""

    cash: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)  # last mark per symbol
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    traded_notional: Decimal = ZERO
    trade_pnls: list[Decimal] = field(default_factory=list)
    initial_cash: Decimal | None = None

    def __post_init__(self) -> None:
        if self.initial_cash is None:
            self.initial_cash = self.cash

    # ------------------------------------------------------------------ updates
    def apply_fill(self, fill: Fill) -> Decimal | None:
        """Book a fill; returns the net P&L of the trade it closed, if any."""
        pos = self.positions.get(fill.symbol, Position())
        q, c, e, realized, trade = position_after_fill(
            pos.qty, pos.cost, pos.entry_fees, fill.signed_qty, fill.price, fill.fee
        )
        self.cash -= fill.signed_qty * fill.price + fill.fee
        self.fees += fill.fee
        self.realized_pnl += realized
        self.traded_notional += fill.qty * fill.price
        if q == 0:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = Position(q, c, e)
        if trade is not None:
            self.trade_pnls.append(trade)
        self.prices.setdefault(fill.symbol, fill.price)
        return trade

    def mark(self, prices: Mapping[str, Decimal]) -> None:
        """Record the latest prices (the closes of a bar)."""
        self.prices.update(prices)

    # ------------------------------------------------------------------ views
    def qty(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.qty if pos else ZERO

    def _price(self, symbol: str, prices: Mapping[str, Decimal] | None) -> Decimal:
        if prices is not None and symbol in prices:
            return prices[symbol]
        return self.prices[symbol]

    def market_value(self, prices: Mapping[str, Decimal] | None = None) -> Decimal:
        return sum((p.qty * self._price(s, prices) for s, p in self.positions.items()), ZERO)

    def equity(self, prices: Mapping[str, Decimal] | None = None) -> Decimal:
        """Cash plus positions at ``prices`` (default: the last marks)."""
        return self.cash + self.market_value(prices)

    def unrealized_pnl(self, prices: Mapping[str, Decimal] | None = None) -> Decimal:
        return sum(
            (p.qty * self._price(s, prices) - p.cost for s, p in self.positions.items()), ZERO
        )

    def gross_exposure(self, prices: Mapping[str, Decimal] | None = None) -> Decimal:
        return sum((abs(p.qty * self._price(s, prices)) for s, p in self.positions.items()), ZERO)

    def net_exposure(self, prices: Mapping[str, Decimal] | None = None) -> Decimal:
        return self.market_value(prices)

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        """JSON-able state; Decimals as exact strings."""
        return {
            "cash": dec_str(self.cash),
            "initial_cash": dec_str(self.initial_cash or ZERO),
            "positions": {s: p.to_dict() for s, p in sorted(self.positions.items())},
            "prices": {s: dec_str(p) for s, p in sorted(self.prices.items())},
            "realized_pnl": dec_str(self.realized_pnl),
            "fees": dec_str(self.fees),
            "traded_notional": dec_str(self.traded_notional),
            "trade_pnls": [dec_str(x) for x in self.trade_pnls],
        }

    @classmethod
    def from_snapshot(cls, d: Mapping[str, Any]) -> Portfolio:
        return cls(
            cash=Decimal(d["cash"]),
            initial_cash=Decimal(d["initial_cash"]),
            positions={s: Position.from_dict(p) for s, p in d["positions"].items()},
            prices={s: Decimal(p) for s, p in d["prices"].items()},
            realized_pnl=Decimal(d["realized_pnl"]),
            fees=Decimal(d["fees"]),
            traded_notional=Decimal(d["traded_notional"]),
            trade_pnls=[Decimal(x) for x in d["trade_pnls"]],
        )
