"""The trading engine's events, and their journal spelling (codec version 1).

==================  ============  =====================================================
event               journal kind  what happened
==================  ============  =====================================================
``DecisionMade``    ``decision``  one (symbol, ts) decided, at reference price ``ref``
``OrderSubmitted``  ``order``     a risk-approved order went to the open-order book
``OrderFilled``     ``fill``      the broker filled an open order
``OrderExpired``    ``expire``    an open order left unfilled (collar, halt, cancel)
``OutcomeRealized`` ``outcome``   a decision's close-to-close return is known
``BarMarked``       ``bar``       a bar's closes marked the book and rolled volatility
``VolatilityFitted````vol_fit``   a GARCH refit (or its failure) for one symbol
``StateChanged``    ``state``     the trading state moved (drawdown or operator)
==================  ============  =====================================================

``RiskSettingsChanged`` (kind ``risk_set``): the ``risk`` section changed on a running engine
(``tinywindow config set``), the changed values.  Risk denials are
``tinywindow.risk.events.RiskDenied`` (kind ``risk``).  Amounts are exact
``Decimal``; the payloads spell them with ``dec_str``, exactly as journals before the typed
events did, so those journals replay unchanged.

The per-bar kinds (decisions, orders, fills, expiries, outcomes, bars) register an
``is_canonical`` test with the codec: an event whose fields already have the exact types and
Decimal spelling its decoder produces is applied as it is, without the encode/decode round
trip (``EventCodec.canonical``); the engine and the paper broker build theirs that way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event
from tinywindow.core.money import dec_str, is_canonical
from tinywindow.execution.orders import Expiry, Fill, Order
from tinywindow.risk.checks import TradingState

__all__ = [
    "BarMarked",
    "DecisionMade",
    "OrderExpired",
    "OrderFilled",
    "OrderSubmitted",
    "OutcomeRealized",
    "RiskSettingsChanged",
    "StateChanged",
    "VolatilityFitted",
]


@dataclass(frozen=True, slots=True)
class DecisionMade(Event):
    """The decision for (``symbol``, ``ts``): ``action`` is the target direction, ``ref`` the
    reference close it was made at (None: no price yet, so no outcome to label)."""

    KIND: ClassVar[str] = "decision"
    symbol: str
    ts: int
    action: int
    confidence: float
    ref: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderSubmitted(Event):
    KIND: ClassVar[str] = "order"
    order: Order


@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    KIND: ClassVar[str] = "fill"
    fill: Fill


@dataclass(frozen=True, slots=True)
class OrderExpired(Event):
    KIND: ClassVar[str] = "expire"
    expiry: Expiry


@dataclass(frozen=True, slots=True)
class OutcomeRealized(Event):
    """Number ``seq`` of the account's outcomes: the return of ``symbol`` over the bar after
    the decision at ``ts`` (the label agents predict)."""

    KIND: ClassVar[str] = "outcome"
    seq: int
    symbol: str
    ts: int
    action: int
    realized_return: float


@dataclass(frozen=True, slots=True)
class BarMarked(Event):
    """The closes of the bar at ``ts``, one (symbol, close) per symbol, sorted by symbol."""

    KIND: ClassVar[str] = "bar"
    ts: int
    closes: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True, slots=True)
class VolatilityFitted(Event):
    """A GARCH(1,1) refit for ``symbol``; ``ok`` False: it failed (EWMA until the next)."""

    KIND: ClassVar[str] = "vol_fit"
    symbol: str
    ok: bool
    omega: float | None = None
    alpha: float | None = None
    beta: float | None = None
    var: float | None = None

    @classmethod
    def from_fit(cls, symbol: str, fit: Mapping[str, Any]) -> VolatilityFitted:
        """From ``VolTracker.fit()``'s result."""
        if not fit.get("ok"):
            return cls(symbol, False)
        return cls(symbol, True, float(fit["omega"]), float(fit["alpha"]), float(fit["beta"]), float(fit["var"]))

    def fit(self) -> dict[str, Any]:
        """The form ``VolTracker.apply_fit`` takes."""
        if not self.ok:
            return {"ok": False}
        return {"ok": True, "omega": self.omega, "alpha": self.alpha, "beta": self.beta, "var": self.var}


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """The trading state moved; ``peak`` (when set) restarts the drawdown from there."""

    KIND: ClassVar[str] = "state"
    ts: int
    from_state: TradingState
    to_state: TradingState
    reason: str
    peak: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RiskSettingsChanged(Event):
    """Risk settings changed on a running engine (``tinywindow config set``): ``values`` are
    the changed fields of the ``risk`` section (field, JSON value), sorted; they apply over
    the section in effect from the next call on.  ``change_id`` names the change across the
    actors it was committed on (a retried commit of the same id applies nothing twice)."""

    KIND: ClassVar[str] = "risk_set"
    ts: int
    change_id: str
    values: tuple[tuple[str, Any], ...]


# --------------------------------------------------------------------------- codec, v1


def _opt_dec(v: Decimal | None) -> str | None:
    return None if v is None else dec_str(v)


def _dec_or_none(v: Any) -> Decimal | None:
    return None if v is None else Decimal(v)


def _enc_decision(e: DecisionMade) -> dict[str, Any]:
    return {"symbol": e.symbol, "ts": e.ts, "action": e.action, "confidence": e.confidence, "ref": _opt_dec(e.ref)}


def _dec_decision(p: Mapping[str, Any], version: int) -> DecisionMade:
    return DecisionMade(str(p["symbol"]), int(p["ts"]), int(p["action"]), float(p["confidence"]), _dec_or_none(p["ref"]))


def _enc_order(e: OrderSubmitted) -> dict[str, Any]:
    o = e.order
    return {"order_id": o.order_id, "symbol": o.symbol, "ts": o.ts, "side": o.side, "qty": dec_str(o.qty),
            "ref_price": dec_str(o.ref_price), "limit_price": _opt_dec(o.limit_price), "reason": o.reason}


def _dec_order(p: Mapping[str, Any], version: int) -> OrderSubmitted:
    return OrderSubmitted(Order(
        order_id=str(p["order_id"]), symbol=str(p["symbol"]), ts=int(p["ts"]), side=int(p["side"]),
        qty=Decimal(p["qty"]), ref_price=Decimal(p["ref_price"]), limit_price=_dec_or_none(p["limit_price"]),
        reason=str(p["reason"]),
    ))


def _enc_fill(e: OrderFilled) -> dict[str, Any]:
    f = e.fill
    return {"order_id": f.order_id, "symbol": f.symbol, "ts": f.ts, "side": f.side, "qty": dec_str(f.qty),
            "price": dec_str(f.price), "fee": dec_str(f.fee), "reason": f.reason}


def _dec_fill(p: Mapping[str, Any], version: int) -> OrderFilled:
    return OrderFilled(Fill(
        order_id=str(p["order_id"]), symbol=str(p["symbol"]), ts=int(p["ts"]), side=int(p["side"]),
        qty=Decimal(p["qty"]), price=Decimal(p["price"]), fee=Decimal(p["fee"]), reason=str(p.get("reason", "filled")),
    ))


def _enc_expire(e: OrderExpired) -> dict[str, Any]:
    x = e.expiry
    return {"order_id": x.order_id, "symbol": x.symbol, "ts": x.ts, "reason": x.reason}


def _dec_expire(p: Mapping[str, Any], version: int) -> OrderExpired:
    return OrderExpired(Expiry(str(p["order_id"]), str(p["symbol"]), int(p["ts"]), str(p["reason"])))


def _enc_outcome(e: OutcomeRealized) -> dict[str, Any]:
    return {"seq": e.seq, "symbol": e.symbol, "ts": e.ts, "action": e.action, "realized_return": e.realized_return}


def _dec_outcome(p: Mapping[str, Any], version: int) -> OutcomeRealized:
    return OutcomeRealized(int(p["seq"]), str(p["symbol"]), int(p["ts"]), int(p["action"]), float(p["realized_return"]))


def _enc_bar(e: BarMarked) -> dict[str, Any]:
    return {"ts": e.ts, "closes": {s: dec_str(c) for s, c in e.closes}}


def _dec_bar(p: Mapping[str, Any], version: int) -> BarMarked:
    return BarMarked(int(p["ts"]), tuple((str(s), Decimal(c)) for s, c in sorted(p["closes"].items())))


def _enc_vol_fit(e: VolatilityFitted) -> dict[str, Any]:
    return {"symbol": e.symbol, "fit": e.fit()}


def _dec_vol_fit(p: Mapping[str, Any], version: int) -> VolatilityFitted:
    return VolatilityFitted.from_fit(str(p["symbol"]), p["fit"])


def _enc_state(e: StateChanged) -> dict[str, Any]:
    return {"ts": e.ts, "from": e.from_state.value, "to": e.to_state.value, "reason": e.reason, "peak": _opt_dec(e.peak)}


def _dec_state(p: Mapping[str, Any], version: int) -> StateChanged:
    return StateChanged(int(p["ts"]), TradingState(p["from"]), TradingState(p["to"]), str(p["reason"]),
                        _dec_or_none(p.get("peak")))


# ``is_canonical`` tests: true only where the decoder, given the payload, would rebuild the
# event field for field (``str``/``int``/``float`` of an exact str/int/float is that object;
# a Decimal reads back as ``canonical_decimal`` of itself; a bar's closes come back sorted by
# symbol, one per symbol).  Anything else takes the codec's round trip.


def _dec_ok(v: Any) -> bool:
    return type(v) is Decimal and is_canonical(v)


def _opt_dec_ok(v: Any) -> bool:
    return v is None or (type(v) is Decimal and is_canonical(v))


def _decision_ok(e: DecisionMade) -> bool:
    return (type(e.symbol) is str and type(e.ts) is int and type(e.action) is int
            and type(e.confidence) is float and _opt_dec_ok(e.ref))


def _order_ok(e: OrderSubmitted) -> bool:
    o = e.order
    return (type(o) is Order and type(o.order_id) is str and type(o.symbol) is str and type(o.ts) is int
            and type(o.side) is int and type(o.reason) is str and _dec_ok(o.qty) and _dec_ok(o.ref_price)
            and _opt_dec_ok(o.limit_price))


def _fill_ok(e: OrderFilled) -> bool:
    f = e.fill
    return (type(f) is Fill and type(f.order_id) is str and type(f.symbol) is str and type(f.ts) is int
            and type(f.side) is int and type(f.reason) is str and _dec_ok(f.qty) and _dec_ok(f.price)
            and _dec_ok(f.fee))


def _expire_ok(e: OrderExpired) -> bool:
    x = e.expiry
    return (type(x) is Expiry and type(x.order_id) is str and type(x.symbol) is str and type(x.ts) is int
            and type(x.reason) is str)


def _outcome_ok(e: OutcomeRealized) -> bool:
    return (type(e.seq) is int and type(e.symbol) is str and type(e.ts) is int and type(e.action) is int
            and type(e.realized_return) is float)


def _bar_ok(e: BarMarked) -> bool:
    if type(e.ts) is not int or type(e.closes) is not tuple:
        return False
    prev: str | None = None
    for pair in e.closes:
        if type(pair) is not tuple or len(pair) != 2:
            return False
        s, c = pair
        if type(s) is not str or (prev is not None and s <= prev) or type(c) is not Decimal or not is_canonical(c):
            return False
        prev = s
    return True


CODEC.register(DecisionMade, _enc_decision, _dec_decision, is_canonical=_decision_ok)
CODEC.register(OrderSubmitted, _enc_order, _dec_order, is_canonical=_order_ok)
CODEC.register(OrderFilled, _enc_fill, _dec_fill, is_canonical=_fill_ok)
CODEC.register(OrderExpired, _enc_expire, _dec_expire, is_canonical=_expire_ok)
CODEC.register(OutcomeRealized, _enc_outcome, _dec_outcome, is_canonical=_outcome_ok)
CODEC.register(BarMarked, _enc_bar, _dec_bar, is_canonical=_bar_ok)
CODEC.register(VolatilityFitted, _enc_vol_fit, _dec_vol_fit)
CODEC.register(StateChanged, _enc_state, _dec_state)


def _enc_risk_set(e: RiskSettingsChanged) -> dict[str, Any]:
    return {"ts": e.ts, "change_id": e.change_id, "values": dict(e.values)}


def _dec_risk_set(p: Mapping[str, Any], version: int) -> RiskSettingsChanged:
    return RiskSettingsChanged(int(p["ts"]), str(p["change_id"]), tuple(sorted(dict(p["values"]).items())))


CODEC.register(RiskSettingsChanged, _enc_risk_set, _dec_risk_set)
