"""The event-driven trading engine: signals and bars in, orders and fills out, under risk.

``TradingEngine`` holds one account's whole state (portfolio, open orders, trading state,
volatility trackers, outcome bookkeeping) and changes it *only* by applying events
(``apply(kind, payload)``).  Live processing computes events from inputs and applies them
as it goes; each public call ends with a commit that hands the call's events to a hook
(the PortfolioActor journals them, signed, all or nothing) and only then submits the new
orders to the broker.  Start-up and crash recovery are the same path: a snapshot
(checkpoint) plus ``apply`` of every journaled event after it, then ``resubmit_open_orders``
(idempotent by order id).

Per bar (``on_bars``, per timestamp in order): the broker fills open orders at this bar's
open (``fill``/``expire`` events); decisions of the previous bar get their realized outcome
(``outcome``: the symbol's close-to-close return over the bar after the decision, the label
agents predict); the closes are marked and roll the volatility trackers (``bar``); GARCH
refits (``vol_fit``); the drawdown moves the trading state (``state``; HALTED cancels every
open order).

Per signal (``apply_signals``): one decision per (symbol, ts) - a signal at or before the
symbol's last decision is a duplicate and ignored, so a replayed signal cannot trade twice;
hold (action 0) keeps the position; otherwise the target weight (volatility-targeted) becomes
a target quantity at the reference close, and the difference from position plus open orders
is checked by risk (``risk`` events for every denial or clip) and sent (``order``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tinywindow.execution.accounting import Portfolio, order_id
from tinywindow.execution.broker import (
    ZERO,
    BarPrices,
    Broker,
    Commission,
    Expiry,
    Fill,
    Order,
    PaperBroker,
    Slippage,
    dec_str,
    to_decimal,
)
from tinywindow.execution.config import PortfolioConfig
from tinywindow.risk.checks import (
    Book,
    Limits,
    Proposal,
    Reason,
    RiskEvent,
    TradingState,
    check_order,
    collar_limit,
    next_state,
    target_quantity,
    target_weights,
)
from tinywindow.risk.config import RiskConfig
from tinywindow.risk.volatility import VolTracker

Event = tuple[str, dict[str, Any]]
NEVER = -(2**63)  # before any timestamp
CommitHook = Callable[[list[Event]], None]


@dataclass(frozen=True)
class BarRow:
    symbol: str
    ts: int
    open: float
    close: float


@dataclass(frozen=True)
class SignalRow:
    symbol: str
    ts: int
    action: int
    confidence: float
    reason: str = ""


def paper_broker(cfg: PortfolioConfig) -> PaperBroker:
    """The PaperBroker a PortfolioConfig describes."""
    commission = Commission.from_bps(cfg.commission_bps, cfg.commission_per_share_usd, cfg.commission_min_usd)
    return PaperBroker(commission, Slippage(cfg.slippage_bps))


class TradingEngine:
    """One account's state machine (see the module docstring)."""

    def __init__(
        self,
        risk: RiskConfig,
        portfolio: PortfolioConfig,
        broker: Broker | None = None,
        on_commit: CommitHook | None = None,
    ) -> None:
        self.risk_cfg, self.port_cfg = risk, portfolio
        self.limits = Limits.from_config(risk)
        self.lot = to_decimal(portfolio.lot_size)
        self.broker = broker if broker is not None else paper_broker(portfolio)
        self.on_commit = on_commit
        self.portfolio = Portfolio(to_decimal(portfolio.initial_cash_usd))
        self.state = TradingState.ACTIVE
        self.peak = self.portfolio.cash
        self.open_orders: dict[str, Order] = {}
        self.last_bar_ts: dict[str, int] = {}
        self.last_decision_ts: dict[str, int] = {}
        self.pending_outcome: dict[str, tuple[int, int, str]] = {}  # symbol -> (ts, action, ref)
        self.vol: dict[str, VolTracker] = {}
        self.outcomes: deque[dict[str, Any]] = deque(maxlen=portfolio.events_kept)
        self.outcome_seq = 0
        self.risk_events: deque[RiskEvent] = deque(maxlen=portfolio.events_kept)
        self.equity_curve: deque[tuple[int, Decimal]] = deque(maxlen=portfolio.events_kept)
        self._batch: list[Event] = []

    # ------------------------------------------------------------------ event core
    def _record(self, kind: str, payload: dict[str, Any]) -> None:
        self._batch.append((kind, payload))
        self.apply(kind, payload)

    def _commit(self) -> list[Event]:
        batch, self._batch = self._batch, []
        if batch and self.on_commit is not None:
            self.on_commit(batch)
        for kind, payload in batch:
            if kind == "order" and payload["order_id"] in self.open_orders:
                self.broker.submit(self.open_orders[payload["order_id"]])
        return batch

    def apply(self, kind: str, p: Mapping[str, Any]) -> None:
        """Apply one event to the state: the only way the state changes (live and replay)."""
        if kind == "decision":
            self.last_decision_ts[p["symbol"]] = int(p["ts"])
            if p["ref"] is not None:
                self.pending_outcome[p["symbol"]] = (int(p["ts"]), int(p["action"]), str(p["ref"]))
        elif kind == "order":
            order = Order.from_dict(p)
            self.open_orders[order.order_id] = order
        elif kind == "risk":
            self.risk_events.append(RiskEvent.from_dict(p))
        elif kind == "fill":
            fill = Fill.from_dict(p)
            self.open_orders.pop(fill.order_id, None)
            self.portfolio.apply_fill(fill)
        elif kind == "expire":
            self.open_orders.pop(str(p["order_id"]), None)
        elif kind == "outcome":
            self.outcome_seq = int(p["seq"]) + 1
            self.outcomes.append(dict(p))
            pend = self.pending_outcome.get(p["symbol"])
            if pend is not None and pend[0] == int(p["ts"]):
                del self.pending_outcome[p["symbol"]]
        elif kind == "bar":
            ts = int(p["ts"])
            closes = {s: Decimal(c) for s, c in p["closes"].items()}
            self.portfolio.mark(closes)
            for s, c in closes.items():
                self.last_bar_ts[s] = ts
                self._tracker(s).update(float(c))
            equity = self.portfolio.equity()
            self.peak = max(self.peak, equity)
            self.equity_curve.append((ts, equity))
        elif kind == "vol_fit":
            self._tracker(p["symbol"]).apply_fit(p["fit"])
        elif kind == "state":
            self.state = TradingState(p["to"])
            if p.get("peak") is not None:
                self.peak = Decimal(p["peak"])
        else:
            raise ValueError(f"unknown trading event kind {kind!r}")

    def _tracker(self, symbol: str) -> VolTracker:
        t = self.vol.get(symbol)
        if t is None:
            t = self.vol[symbol] = VolTracker(self.risk_cfg)
        return t

    # ------------------------------------------------------------------ market data
    def on_bars(self, rows: Iterable[BarRow]) -> list[Event]:
        """Process bars (any order; grouped by timestamp, oldest first); returns the events."""
        by_ts: dict[int, dict[str, BarRow]] = {}
        for row in rows:
            if row.ts > self.last_bar_ts.get(row.symbol, NEVER):
                by_ts.setdefault(row.ts, {})[row.symbol] = row
        for ts in sorted(by_ts):
            self._one_bar(ts, by_ts[ts])
        return self._commit()

    def _one_bar(self, ts: int, rows: Mapping[str, BarRow]) -> None:
        bars = {
            s: BarPrices(ts, to_decimal(r.open, name="open"), to_decimal(r.close, name="close"))
            for s, r in sorted(rows.items())
        }
        for ev in self.broker.on_market(bars):
            if ev.order_id not in self.open_orders:
                continue  # not ours (or already booked before a restart)
            self._record("fill" if isinstance(ev, Fill) else "expire", ev.to_dict())
        for s, bar in bars.items():
            pend = self.pending_outcome.get(s)
            if pend is not None and pend[0] < ts:
                ret = float(bar.close / Decimal(pend[2]) - 1)
                self._record(
                    "outcome",
                    {"seq": self.outcome_seq, "symbol": s, "ts": pend[0], "action": pend[1], "realized_return": ret},
                )
        self._record("bar", {"ts": ts, "closes": {s: dec_str(b.close) for s, b in bars.items()}})
        for s in bars:
            tracker = self._tracker(s)
            if tracker.refit_due():
                self._record("vol_fit", {"symbol": s, "fit": tracker.fit()})
        self._update_state(ts)

    def _update_state(self, ts: int) -> None:
        new, dd = next_state(self.state, self.portfolio.equity(), self.peak, self.risk_cfg)
        if new != self.state:
            self._set_state(ts, new, f"drawdown {dd:.4f}", peak=None)

    def _set_state(self, ts: int, new: TradingState, why: str, peak: Decimal | None) -> None:
        old = self.state
        self._record("state", {"ts": ts, "from": old.value, "to": new.value, "reason": why,
                               "peak": None if peak is None else dec_str(peak)})
        self._record("risk", RiskEvent(ts, "*", "", Reason.STATE_CHANGE.value, "state",
                                       detail=f"{old.value} -> {new.value}: {why}").to_dict())
        if new == TradingState.HALTED:
            for exp in self.broker.cancel_all(ts, Reason.HALTED.value):
                if exp.order_id in self.open_orders:
                    self._record("expire", exp.to_dict())
            for oid in sorted(self.open_orders):  # anything the broker did not know of
                o = self.open_orders[oid]
                self._record("expire", Expiry(oid, o.symbol, ts, Reason.HALTED.value).to_dict())

    def halt(self, ts: int, why: str = "operator halt") -> list[Event]:
        """Kill switch: HALTED now, every open order cancelled."""
        if self.state != TradingState.HALTED:
            self._set_state(ts, TradingState.HALTED, why, peak=None)
        return self._commit()

    def resume(self, ts: int, why: str = "operator resume") -> list[Event]:
        """Leave HALTED/REDUCING; the drawdown is measured from the current equity again."""
        if self.state != TradingState.ACTIVE:
            self._set_state(ts, TradingState.ACTIVE, why, peak=self.portfolio.equity())
        return self._commit()

    # ------------------------------------------------------------------ decisions
    def _reference(self, symbol: str, ts: int) -> tuple[Decimal | None, float]:
        bar_ts = self.last_bar_ts.get(symbol)
        if bar_ts is None or bar_ts > ts or symbol not in self.portfolio.prices:
            return None, math.inf
        return self.portfolio.prices[symbol], (ts - bar_ts) / 1e9

    def exposure(self, symbol: str) -> Decimal:
        """Position plus open orders, signed."""
        q = self.portfolio.qty(symbol)
        return q + sum((o.signed_qty for o in self.open_orders.values() if o.symbol == symbol), ZERO)

    def apply_signals(self, signals: Iterable[SignalRow]) -> list[Event]:
        """Decide on each new (symbol, ts) signal; returns the events (orders among them)."""
        todo: list[tuple[SignalRow, Decimal | None, Decimal]] = []
        for sig in sorted(signals, key=lambda s: (s.ts, s.symbol)):
            if sig.ts <= self.last_decision_ts.get(sig.symbol, NEVER):
                continue  # duplicate or out of date: decided already
            ref, _ = self._reference(sig.symbol, sig.ts)
            self._record("decision", {"symbol": sig.symbol, "ts": sig.ts, "action": int(sig.action),
                                      "confidence": float(sig.confidence),
                                      "ref": None if ref is None else dec_str(ref)})
            if sig.action == 0:
                continue
            target = self._target_from_signal(sig, ref)
            if target is not None:
                todo.append((sig, target, self.exposure(sig.symbol)))
        self._send(
            [(s.symbol, s.ts, f"signal:{int(s.action)}", t, s.confidence, f"signal {int(s.action):+d} conf {s.confidence:.3f}")
             for s, t, _ in todo if t is not None]
        )
        return self._commit()

    def rebalance(self, targets: Mapping[str, Decimal | float | int], ts: int, reason: str = "target") -> list[Event]:
        """Move each symbol to an explicit target quantity (a strategy that sizes itself)."""
        orders = []
        for symbol in sorted(targets):
            if ts <= self.last_decision_ts.get(symbol, NEVER):
                continue
            qty = to_decimal(targets[symbol], name="target")
            ref, _ = self._reference(symbol, ts)
            self._record("decision", {"symbol": symbol, "ts": ts, "action": (qty > 0) - (qty < 0),
                                      "confidence": 1.0, "ref": None if ref is None else dec_str(ref)})
            orders.append((symbol, ts, f"target:{dec_str(qty)}", qty, 1.0, reason))
        self._send(orders)
        return self._commit()

    def _target_from_signal(self, sig: SignalRow, ref: Decimal | None) -> Decimal | None:
        vol = self._tracker(sig.symbol).annual_vol()
        w = float(target_weights(float(sig.action), vol, self.risk_cfg))
        if ref is None:
            return self.exposure(sig.symbol) + sig.action * self.lot  # any size: risk denies it
        if not math.isfinite(w):
            self._record("risk", RiskEvent(sig.ts, sig.symbol, "", Reason.NO_VOLATILITY.value, "denied",
                                           detail="no volatility estimate yet").to_dict())
            return None
        qty = target_quantity(w, float(self.portfolio.equity()), float(ref), float(self.lot))
        return to_decimal(qty)

    def _send(self, wanted: Sequence[tuple[str, int, str, Decimal, float, str]]) -> None:
        """Risk-check and record orders; exposure-reducing ones first so they free room."""
        if not wanted:
            return
        held = set(self.portfolio.positions) | {o.symbol for o in self.open_orders.values()}
        book = Book.build(self.portfolio.equity(), {s: self.exposure(s) for s in held}, self.portfolio.prices)
        prepared = []
        for symbol, ts, intent, target, confidence, why in wanted:
            now = book.qty.get(symbol, ZERO)
            delta = target - now
            if delta != 0:
                prepared.append((0 if now * delta < 0 else 1, symbol, ts, intent, delta, confidence, why))
        for _, symbol, ts, intent, delta, confidence, why in sorted(prepared, key=lambda x: (x[0], x[1])):
            oid = order_id(self.port_cfg.account, symbol, ts, intent)
            ref, age = self._reference(symbol, ts)
            allowed, events = check_order(
                Proposal(symbol, ts, oid, delta, ref, confidence=confidence, ref_age_s=age),
                book, self.limits, self.state, self.lot, self.risk_cfg.max_price_age_s,
            )
            for ev in events:
                self._record("risk", ev.to_dict())
            if allowed == 0 or ref is None:
                continue
            side = 1 if allowed > 0 else -1
            order = Order(oid, symbol, ts, side, abs(allowed), ref, collar_limit(side, ref, self.limits.collar), why)
            self._record("order", order.to_dict())
            book = book.after(symbol, allowed, ref)

    # ------------------------------------------------------------------ views
    def outcomes_since(self, seq: int) -> list[dict[str, Any]]:
        return [o for o in self.outcomes if int(o["seq"]) >= seq]

    def resubmit_open_orders(self) -> None:
        """After replay: hand still-open orders back to the broker (idempotent by id)."""
        for oid in sorted(self.open_orders):
            self.broker.submit(self.open_orders[oid])

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data (the checkpoint)."""
        return {
            "portfolio": self.portfolio.snapshot(),
            "state": self.state.value,
            "peak": dec_str(self.peak),
            "open_orders": [self.open_orders[k].to_dict() for k in sorted(self.open_orders)],
            "last_bar_ts": dict(sorted(self.last_bar_ts.items())),
            "last_decision_ts": dict(sorted(self.last_decision_ts.items())),
            "pending_outcome": {s: list(v) for s, v in sorted(self.pending_outcome.items())},
            "vol": {s: t.snapshot() for s, t in sorted(self.vol.items())},
            "outcomes": list(self.outcomes),
            "outcome_seq": self.outcome_seq,
            "risk_events": [e.to_dict() for e in self.risk_events],
            "equity_curve": [[ts, dec_str(e)] for ts, e in self.equity_curve],
        }

    def restore(self, d: Mapping[str, Any]) -> None:
        """Load a snapshot into a fresh engine (before replaying later events)."""
        self.portfolio = Portfolio.from_snapshot(d["portfolio"])
        self.state = TradingState(d["state"])
        self.peak = Decimal(d["peak"])
        self.open_orders = {o["order_id"]: Order.from_dict(o) for o in d["open_orders"]}
        self.last_bar_ts = {s: int(v) for s, v in d["last_bar_ts"].items()}
        self.last_decision_ts = {s: int(v) for s, v in d["last_decision_ts"].items()}
        self.pending_outcome = {s: (int(v[0]), int(v[1]), str(v[2])) for s, v in d["pending_outcome"].items()}
        self.vol = {s: VolTracker.from_snapshot(self.risk_cfg, v) for s, v in d["vol"].items()}
        self.outcomes.clear()
        self.outcomes.extend(d["outcomes"])
        self.outcome_seq = int(d["outcome_seq"])
        self.risk_events.clear()
        self.risk_events.extend(RiskEvent.from_dict(e) for e in d["risk_events"])
        self.equity_curve.clear()
        self.equity_curve.extend((int(ts), Decimal(e)) for ts, e in d["equity_curve"])
