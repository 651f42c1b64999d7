"""Risk rules, checked before every order: pure functions from a proposed order to the part
of it that may go out, plus the events saying why anything was cut.

Denials are events with reason codes, never exceptions.  A rule either *denies* the whole
order (halted, no usable reference price, price outside the collar) or *clips* it to the
largest size that keeps every limit (per-order notional, max position per symbol, the
diversification cap ``max_weight`` per symbol, max gross, max net; REDUCING state and the
confidence floor allow only the exposure-reducing part; with ``allow_short`` off a sell may
only close a long, ``NO_SHORT``).  ``max_position`` is the hard
limit, ``max_weight`` the diversification target; both are fractions of equity and the
tighter one binds (the reason code says which).  Every limit is evaluated at the reference price with open (unfilled) orders counted
as if filled, and follows one rule: an order may never take a metric from inside its limit
to beyond it, nor push a metric that is already beyond it (prices move) further out.

Sizing (``target_weights``) is the other half: a signal's direction scaled to a target
volatility, capped for diversification by ``max_weight`` and by ``max_position``.  It works
on scalars and on [T, N] arrays alike, so the vectorised backtest sizes exactly as the
event-driven engine does.

Trading states follow the drawdown from the equity peak: ACTIVE, REDUCING (only
exposure-reducing orders) from ``reduce_drawdown``, back to ACTIVE below
``resume_drawdown``, and HALTED from ``halt_drawdown`` (cancel all, deny all) until an
operator resumes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

import numpy as np

from tinywindow.core.money import ONE, ZERO, dec_str, to_decimal
from tinywindow.errors import ConfigError
from tinywindow.risk.config import RiskConfig
from tinywindow.risk.events import RiskDenied


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only orders that reduce a position's size
    HALTED = "HALTED"  # cancel all open orders, deny every new one


class Reason(StrEnum):
    """Reason codes of risk events."""

    HALTED = "HALTED"
    REDUCE_ONLY = "REDUCE_ONLY"
    NO_REFERENCE_PRICE = "NO_REFERENCE_PRICE"
    STALE_REFERENCE_PRICE = "STALE_REFERENCE_PRICE"
    PRICE_COLLAR = "PRICE_COLLAR"
    CONFIDENCE_FLOOR = "CONFIDENCE_FLOOR"
    NO_VOLATILITY = "NO_VOLATILITY"
    ORDER_NOTIONAL = "ORDER_NOTIONAL"
    MAX_POSITION = "MAX_POSITION"
    MAX_WEIGHT = "MAX_WEIGHT"
    MAX_GROSS = "MAX_GROSS"
    MAX_NET = "MAX_NET"
    LOT_SIZE = "LOT_SIZE"
    DUPLICATE = "DUPLICATE"
    STATE_CHANGE = "STATE_CHANGE"
    NO_SHORT = "NO_SHORT"  # risk.allow_short is false: a short target or order clipped to flat
    CONSTRUCTION = "CONSTRUCTION"  # portfolio construction found no weights for a bar (infeasible): no trade


RiskEvent = RiskDenied  # the name the checks and their callers have always used


@dataclass(frozen=True)
class Limits:
    """The order-time limits of a RiskConfig as Decimals (fractions of equity, USD)."""

    max_position: Decimal
    max_weight: Decimal
    max_gross: Decimal
    max_net: Decimal
    max_order_notional: Decimal
    collar: Decimal
    confidence_floor: float
    allow_short: bool = True

    @classmethod
    def from_config(cls, cfg: RiskConfig) -> Limits:
        check_config(cfg)
        return cls(
            max_position=to_decimal(cfg.max_position),
            max_weight=to_decimal(cfg.max_weight),
            max_gross=to_decimal(cfg.max_gross),
            max_net=to_decimal(cfg.max_net),
            max_order_notional=to_decimal(cfg.max_order_notional_usd),
            collar=to_decimal(cfg.collar),
            confidence_floor=cfg.confidence_floor,
            allow_short=cfg.allow_short,
        )


def check_config(cfg: RiskConfig) -> None:
    """Cross-field rules pydantic cannot express per field."""
    if not cfg.resume_drawdown <= cfg.reduce_drawdown <= cfg.halt_drawdown:
        raise ConfigError(
            "risk: need resume_drawdown <= reduce_drawdown <= halt_drawdown, got "
            f"{cfg.resume_drawdown}, {cfg.reduce_drawdown}, {cfg.halt_drawdown}",
            key="risk.reduce_drawdown",
        )


@dataclass
class Book:
    """What the checks see: equity, exposure per symbol (positions plus open orders) and
    reference prices."""

    equity: Decimal
    qty: dict[str, Decimal]
    prices: dict[str, Decimal]
    gross: Decimal = field(default=ZERO)
    net: Decimal = field(default=ZERO)

    @classmethod
    def build(cls, equity: Decimal, qty: Mapping[str, Decimal], prices: Mapping[str, Decimal]) -> Book:
        gross = sum((abs(q) * prices[s] for s, q in qty.items() if q), ZERO)
        net = sum((q * prices[s] for s, q in qty.items() if q), ZERO)
        return cls(equity, dict(qty), dict(prices), gross, net)

    def count(self, symbol: str, dq: Decimal, price: Decimal) -> None:
        """Count an order of ``dq`` at ``price`` in place (``after`` without the copies: an
        engine sending many orders in one call pays O(1) per order, not O(symbols))."""
        q0 = self.qty.get(symbol, ZERO)
        p0 = self.prices.get(symbol, price)
        self.qty[symbol] = q0 + dq
        self.prices[symbol] = price
        self.gross = self.gross - abs(q0) * p0 + abs(q0 + dq) * price
        self.net = self.net - q0 * p0 + (q0 + dq) * price

    def after(self, symbol: str, dq: Decimal, price: Decimal) -> Book:
        """The book once an order of ``dq`` at ``price`` is counted (a new book)."""
        book = Book(self.equity, dict(self.qty), dict(self.prices), self.gross, self.net)
        book.count(symbol, dq, price)
        return book


@dataclass(frozen=True)
class Proposal:
    """An order a strategy wants: signed quantity, the price it expects, its confidence."""

    symbol: str
    ts: int
    order_id: str
    qty: Decimal  # signed, non-zero
    ref_price: Decimal | None  # independent reference; None or <= 0: fail closed
    order_price: Decimal | None = None  # the price the strategy sized with (default: ref)
    confidence: float = 1.0
    ref_age_s: float = 0.0


def _lots(x: Decimal, lot: Decimal) -> Decimal:
    """``x`` (>= 0) rounded down to a whole number of lots."""
    if x <= 0:
        return ZERO
    return (x / lot).to_integral_value(rounding=ROUND_DOWN) * lot


def collar_limit(side: int, ref: Decimal, collar: Decimal) -> Decimal:
    """The worst price an order may fill at: ``ref * (1 + collar)`` for buys."""
    return ref * (ONE + side * collar)


def check_order(
    p: Proposal,
    book: Book,
    limits: Limits,
    state: TradingState,
    lot: Decimal,
    max_price_age_s: float = math.inf,
) -> tuple[Decimal, list[RiskDenied]]:
    """The signed quantity of ``p`` that may be sent, and the events explaining any cut."""

    def event(reason: Reason, action: str, allowed: Decimal, detail: str) -> RiskDenied:
        return RiskDenied(p.ts, p.symbol, p.order_id, reason.value, action, dec_str(p.qty), dec_str(allowed), detail)

    if state == TradingState.HALTED:
        return ZERO, [event(Reason.HALTED, "denied", ZERO, "trading is halted")]
    ref = p.ref_price
    if ref is None or not ref.is_finite() or ref <= 0:
        return ZERO, [event(Reason.NO_REFERENCE_PRICE, "denied", ZERO, "no reference price")]
    if p.ref_age_s > max_price_age_s:
        return ZERO, [
            event(Reason.STALE_REFERENCE_PRICE, "denied", ZERO, f"reference price is {p.ref_age_s:.0f}s old")
        ]
    order_price = p.order_price if p.order_price is not None else ref
    if abs(order_price / ref - ONE) > limits.collar:
        return ZERO, [
            event(Reason.PRICE_COLLAR, "denied", ZERO, f"price {order_price} vs reference {ref} beyond {limits.collar}")
        ]

    side = 1 if p.qty > 0 else -1
    want = abs(p.qty)
    q0 = book.qty.get(p.symbol, ZERO)
    p0 = book.prices.get(p.symbol, ref)
    reducing_room = abs(q0) if q0 * side < 0 else ZERO  # size that only reduces
    e = book.equity
    # Largest size t >= 0 in direction `side` each rule allows (see module docstring); each
    # with the detail text of its event as a format and its arguments (spelled only if it binds)
    caps: list[tuple[Reason, Decimal, str, tuple[object, ...]]] = [
        (Reason.ORDER_NOTIONAL, limits.max_order_notional / ref, "notional cap {}", (limits.max_order_notional,))
    ]
    pos_bound = max(limits.max_position * e, abs(q0) * ref)
    caps.append((Reason.MAX_POSITION, (pos_bound - side * q0 * ref) / ref, "max position {}", (limits.max_position,)))
    weight_bound = max(limits.max_weight * e, abs(q0) * ref)
    caps.append((Reason.MAX_WEIGHT, (weight_bound - side * q0 * ref) / ref, "max weight {}", (limits.max_weight,)))
    gross_rest = book.gross - abs(q0) * p0
    gross_bound = max(limits.max_gross * e, gross_rest + abs(q0) * ref)
    caps.append((Reason.MAX_GROSS, (gross_bound - gross_rest - side * q0 * ref) / ref, "max gross {}",
                 (limits.max_gross,)))
    net_now = book.net - q0 * p0 + q0 * ref
    net_bound = max(limits.max_net * e, abs(net_now))
    caps.append((Reason.MAX_NET, (net_bound - side * net_now) / ref, "max net {}", (limits.max_net,)))
    if state == TradingState.REDUCING:
        caps.append((Reason.REDUCE_ONLY, reducing_room, "state REDUCING: only reducing orders", ()))
    if side < 0 and not limits.allow_short:
        caps.append((Reason.NO_SHORT, max(q0, ZERO), "short positions not allowed (risk.allow_short)", ()))
    if p.confidence < limits.confidence_floor:
        caps.append(
            (Reason.CONFIDENCE_FLOOR, reducing_room, "confidence {:.3f} < {}", (p.confidence, limits.confidence_floor))
        )

    allowed = want
    binding: tuple[Reason, str, tuple[object, ...]] | None = None
    for reason, cap, fmt, args in caps:
        if cap < allowed:
            allowed, binding = max(cap, ZERO), (reason, fmt, args)
    rounded = _lots(allowed, lot)
    if binding is None and rounded < want:
        binding = (Reason.LOT_SIZE, "lot {}", (lot,))
    signed = rounded * side
    if binding is None:
        return signed, []
    action = "denied" if rounded == 0 else "clipped"
    return signed, [event(binding[0], action, signed, binding[1].format(*binding[2]))]


def next_state(
    state: TradingState, equity: Decimal, peak: Decimal, cfg: RiskConfig
) -> tuple[TradingState, float]:
    """The trading state after a mark, and the drawdown from the peak that decided it.

    HALTED is sticky: only an operator (``resume``) leaves it.
    """
    dd = float(ONE - equity / peak) if peak > 0 else 1.0
    if state == TradingState.HALTED:
        return state, dd
    if dd >= cfg.halt_drawdown:
        return TradingState.HALTED, dd
    if dd >= cfg.reduce_drawdown:
        return TradingState.REDUCING, dd
    if state == TradingState.REDUCING and dd > cfg.resume_drawdown:
        return state, dd
    return TradingState.ACTIVE, dd


# --------------------------------------------------------------------------- sizing


def target_weights(
    action: np.ndarray | float,
    annual_vol: np.ndarray | float,
    cfg: RiskConfig,
) -> np.ndarray:
    """Target weight per (row, symbol): ``action * min(cap, target_vol / vol)``.

    ``action`` is a target exposure (-1 short, 0 flat, +1 long); ``cap = min(max_weight,
    max_position)``.  Flat is weight 0 whatever the volatility (closing needs no estimate);
    with ``allow_short`` off a short is flat too.  Where a long or short meets an unknown
    volatility the result is NaN, meaning *no new target*: the position is left alone (no
    new exposure without a volatility estimate).  NaN is also how a caller spells "keep".
    """
    a = np.asarray(action, dtype=np.float64)
    if not cfg.allow_short:
        a = np.where(a < 0, 0.0, a)
    v = np.asarray(annual_vol, dtype=np.float64)
    cap = min(cfg.max_weight, cfg.max_position)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.minimum(cap, cfg.target_vol / v)
    ok = np.isfinite(v) & (v > 0)
    return np.where(a == 0, 0.0, np.where(ok, a * size, np.nan))


def target_weight(action: float, annual_vol: float, cfg: RiskConfig) -> float:
    """``target_weights`` of one (action, volatility), in plain floats: the same IEEE
    operations in the same order, so the same bits (the engine calls it once per signal)."""
    if action < 0 and not cfg.allow_short:
        action = 0.0
    if action == 0:
        return 0.0
    if not (math.isfinite(annual_vol) and annual_vol > 0):
        return math.nan
    return action * min(min(cfg.max_weight, cfg.max_position), cfg.target_vol / annual_vol)


def target_quantity(weight: float, equity: float, price: float, lot: float) -> float:
    """Shares for a target weight: ``weight * equity / price`` rounded toward zero to lots.

    Float on purpose: it is a decision, not accounting, and the vectorised simulator makes
    the identical computation on arrays (``target_quantity_array``).
    """
    if price != 0 and lot != 0:  # plain floats: the same operations as the array form
        raw = weight * equity / price / lot
        if math.isfinite(raw):
            return math.copysign(float(math.trunc(raw)), raw) * lot
    return float(target_quantity_array(np.float64(weight), np.float64(equity), np.float64(price), lot))


def target_quantity_array(
    weight: np.ndarray | np.floating | float,
    equity: np.ndarray | np.floating | float,
    price: np.ndarray | np.floating | float,
    lot: float,
) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = weight * equity / price / lot
    return np.trunc(raw) * lot
