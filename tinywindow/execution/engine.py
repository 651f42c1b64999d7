"""The event-driven trading engine: signals and bars in, orders and fills out, under risk.

``TradingEngine`` composes one account's components - the ``Portfolio`` (accounting), the
``OrderBook`` (open orders), the ``VolBook`` (volatility per symbol), the ``OutcomeBook``
(outcome labelling), the risk limits and trading state, the equity curve - and changes them
*only* by applying typed events (``tinywindow.execution.events``, ``RiskDenied``) through the
``EventSourced`` base.  Each public call ends with a commit that hands the call's events to
a hook (the PortfolioActor journals them, signed, all or nothing) and only then submits the
new orders to the broker.  Start-up and crash recovery are the same path: a snapshot
(checkpoint) plus ``apply`` of every journaled event after it, then ``resubmit_open_orders``
(idempotent by order id).

Per bar (``on_bars``, per timestamp in order): the broker fills open orders at this bar's
open (``OrderFilled``/``OrderExpired``); decisions of the previous bar get their realized
outcome (``OutcomeRealized``: the symbol's close-to-close return over the bar after the
decision, the label agents predict); the closes are marked and roll the volatility trackers
(``BarMarked``); GARCH refits (``VolatilityFitted``); the drawdown moves the trading state
(``StateChanged``; HALTED cancels every open order).

Per signal (``apply_signals``): one decision per (symbol, ts) - a signal at or before the
symbol's last decision is a duplicate and ignored, so a replayed signal cannot trade twice.
A decided signal's action is a *target exposure*: +1 long and -1 short (volatility-targeted
weight, a target quantity at the reference close), 0 flat (target quantity 0: the position
is closed).  A no-decision (``decided`` False) goes flat or keeps the position, as
``portfolio.no_decision`` says.  With ``risk.allow_short`` off a short target is clipped to
flat (``RiskDenied`` NO_SHORT).  The difference between the target and position plus open
orders is checked by risk (``RiskDenied`` for every denial or clip) and sent
(``OrderSubmitted``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event
from tinywindow.core.money import ZERO, canonical_decimal, dec_str, to_canonical_decimal, to_decimal
from tinywindow.core.runtime_settings import changed_section, replayed_section
from tinywindow.durability.eventsourced import CommitHook, EventSourced, applies
from tinywindow.execution.accounting import Portfolio, order_id
from tinywindow.execution.brokers import Broker, paper_broker
from tinywindow.execution.config import PortfolioConfig
from tinywindow.execution.events import (
    BarMarked,
    DecisionMade,
    OrderExpired,
    OrderFilled,
    OrderSubmitted,
    OutcomeRealized,
    RiskSettingsChanged,
    StateChanged,
    VolatilityFitted,
)
from tinywindow.execution.orders import BarPrices, Expiry, Fill, Order, OrderBook
from tinywindow.execution.outcomes import OutcomeBook
from tinywindow.risk.checks import (
    Book,
    Limits,
    Proposal,
    Reason,
    TradingState,
    check_order,
    collar_limit,
    next_state,
    target_quantity,
    target_weight,
)
from tinywindow.risk.config import STARTUP_ONLY, RiskConfig
from tinywindow.risk.events import RiskDenied
from tinywindow.risk.volatility import VolBook

__all__ = ["BarRow", "SignalRow", "TradingEngine", "WeightRow"]

NEVER = -(2**63)  # before any timestamp


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
    action: int  # target exposure: -1 short, 0 flat, +1 long
    confidence: float
    reason: str = ""
    decided: bool = True  # False: the consensus fell back (action 0); portfolio.no_decision says what to do
    score: float | None = None  # the consensus's cross-sectional score (None: action x confidence)

    @property
    def view(self) -> float:
        """The score portfolio construction reads: none (NaN: weight 0) without a decision or
        on a decision to be flat."""
        if not self.decided or self.action == 0:
            return math.nan
        return float(self.action * self.confidence) if self.score is None else float(self.score)


@dataclass(frozen=True)
class WeightRow:
    """One row of WEIGHTS: the target weight (signed fraction of equity) of ``symbol`` at
    ``ts`` that portfolio construction chose, the score it came from, the signal's
    confidence (for the risk floor) and why."""

    symbol: str
    ts: int
    weight: float
    score: float
    confidence: float
    reason: str


class TradingEngine(EventSourced):
    """One account's state machine (see the module docstring)."""

    def __init__(
        self,
        risk: RiskConfig,
        portfolio: PortfolioConfig,
        broker: Broker | None = None,
        on_commit: CommitHook | None = None,
    ) -> None:
        super().__init__(on_commit)
        self.risk_cfg, self.port_cfg = risk, portfolio
        self.limits = Limits.from_config(risk)
        self.lot = to_decimal(portfolio.lot_size)
        self.broker = broker if broker is not None else paper_broker(portfolio)
        self.portfolio = Portfolio(to_decimal(portfolio.initial_cash_usd))
        self.state = TradingState.ACTIVE
        self.peak = self.portfolio.cash
        self.orders = OrderBook()
        self.vol = VolBook(risk)
        self.labels = OutcomeBook(portfolio.events_kept)
        self.last_bar_ts: dict[str, int] = {}
        self.last_decision_ts: dict[str, int] = {}
        self.risk_events: deque[RiskDenied] = deque(maxlen=portfolio.events_kept)
        self.equity_curve: deque[tuple[int, Decimal]] = deque(maxlen=portfolio.events_kept)
        self.settings_overrides: dict[str, Any] = {}  # risk fields changed at runtime (RiskSettingsChanged)
        self.settings_id: str | None = None  # the change id of the last runtime settings change
        # portfolio construction (``portfolio.construction``): the closes it estimates risk
        # from (kept by applying BarMarked, so replay rebuilds them) and its optimiser
        self.construction = portfolio.construction
        self.constructing = self.construction.method != "none"
        self.close_history: deque[tuple[int, dict[str, float]]] = deque(maxlen=self.construction.lookback + 1)
        self._constructor: Any = None
        self.last_weights: list[WeightRow] = []  # the latest bar's WEIGHTS (a view; not state)

    # ------------------------------------------------------------------ views of the parts
    @property
    def open_orders(self) -> dict[str, Order]:
        return self.orders.open

    @property
    def outcome_seq(self) -> int:
        return self.labels.seq

    def outcomes_since(self, seq: int) -> list[OutcomeRealized]:
        return self.labels.since(seq)

    def exposure(self, symbol: str) -> Decimal:
        """Position plus open orders, signed."""
        return self.portfolio.qty(symbol) + self.orders.pending_qty(symbol)

    # ------------------------------------------------------------------ event core
    def commit(self) -> list[Event]:
        """Journal the call's events (hook), then send its new orders to the broker."""
        batch = super().commit()
        for e in batch:
            if isinstance(e, OrderSubmitted) and e.order.order_id in self.orders:
                self.broker.submit(self.orders.open[e.order.order_id])
        return batch

    @applies(DecisionMade)
    def _decided(self, e: DecisionMade) -> None:
        self.last_decision_ts[e.symbol] = e.ts
        self.labels.on_decision(e)

    @applies(OrderSubmitted)
    def _ordered(self, e: OrderSubmitted) -> None:
        self.orders.add(e.order)

    @applies(RiskDenied)
    def _risk(self, e: RiskDenied) -> None:
        self.risk_events.append(e)

    @applies(OrderFilled)
    def _filled(self, e: OrderFilled) -> None:
        self.orders.remove(e.fill.order_id)
        self.portfolio.apply_fill(e.fill)

    @applies(OrderExpired)
    def _expired(self, e: OrderExpired) -> None:
        self.orders.remove(e.expiry.order_id)

    @applies(OutcomeRealized)
    def _outcome(self, e: OutcomeRealized) -> None:
        self.labels.on_outcome(e)

    @applies(BarMarked)
    def _marked(self, e: BarMarked) -> None:
        closes = dict(e.closes)
        self.portfolio.mark(closes)
        for s, c in closes.items():
            self.last_bar_ts[s] = e.ts
            self.vol.tracker(s).update(float(c))
        if self.constructing:
            if self.close_history and self.close_history[-1][0] == e.ts:
                self.close_history[-1][1].update({s: float(c) for s, c in closes.items()})
            else:
                self.close_history.append((e.ts, {s: float(c) for s, c in closes.items()}))
        equity = self.portfolio.equity()
        self.peak = max(self.peak, equity)
        self.equity_curve.append((e.ts, equity))

    @applies(VolatilityFitted)
    def _vol_fitted(self, e: VolatilityFitted) -> None:
        self.vol.tracker(e.symbol).apply_fit(e.fit())

    @applies(StateChanged)
    def _state(self, e: StateChanged) -> None:
        self.state = e.to_state
        if e.peak is not None:
            self.peak = e.peak

    # ------------------------------------------------------------------ runtime settings
    @property
    def settings_section(self) -> RiskConfig:
        """The risk section in effect."""
        return self.risk_cfg

    def settings_change(self, ts: int, change_id: str, changes: Mapping[str, Any]) -> RiskSettingsChanged | None:
        """The event that would change the risk settings (field -> value), validated like the
        start-up config (the section's model, then ``Limits``' cross-field checks); nothing is
        recorded.  None: nothing differs.  ``STARTUP_ONLY`` fields are refused."""
        new, values = changed_section(self.risk_cfg, "risk", changes, STARTUP_ONLY)
        Limits.from_config(new)
        return RiskSettingsChanged(ts, change_id, tuple(values.items())) if values else None

    def change_settings(self, event: RiskSettingsChanged) -> list[Event]:
        """Apply a prepared settings change and commit it (journaled): from the next call on,
        orders are checked and sized, and the drawdown states moved, by the new settings."""
        self.record(event)
        return self.commit()

    @applies(RiskSettingsChanged)
    def _risk_settings(self, e: RiskSettingsChanged) -> None:
        values = dict(e.values)
        self._adopt_risk(replayed_section(self.risk_cfg, "risk", values))
        self.settings_overrides.update(values)
        self.settings_id = e.change_id

    def _settings_snapshot(self) -> dict[str, Any]:
        """The runtime settings for a checkpoint (none changed: nothing, as before they existed)."""
        if self.settings_id is None:
            return {}
        return {"risk_settings": {"overrides": dict(sorted(self.settings_overrides.items())),
                                  "change_id": self.settings_id}}

    def _adopt_risk(self, cfg: RiskConfig) -> None:
        """Everything that derives from the risk section follows it."""
        self.risk_cfg, self.limits = cfg, Limits.from_config(cfg)
        self.vol.reconfigure(cfg)

    # ------------------------------------------------------------------ market data
    def on_bars(self, rows: Iterable[BarRow]) -> list[Event]:
        """Process bars (any order; grouped by timestamp, oldest first); returns the events."""
        by_ts: dict[int, dict[str, BarRow]] = {}
        for row in rows:
            if row.ts > self.last_bar_ts.get(row.symbol, NEVER):
                by_ts.setdefault(row.ts, {})[row.symbol] = row
        for ts in sorted(by_ts):
            self._one_bar(ts, by_ts[ts])
        return self.commit()

    def _one_bar(self, ts: int, rows: Mapping[str, BarRow]) -> None:
        # closes in their journal spelling from the start: the events built from them need no
        # rebuilding (``EventCodec.canonical``); the values, and so every result, are the same
        bars = {
            s: BarPrices(ts, to_decimal(r.open, name="open"), to_canonical_decimal(r.close, name="close"))
            for s, r in sorted(rows.items())
        }
        for ev in self.broker.on_market(bars):
            if ev.order_id not in self.orders:
                continue  # not ours (or already booked before a restart)
            self.record(OrderFilled(ev) if isinstance(ev, Fill) else OrderExpired(ev))
        for s, bar in bars.items():
            outcome = self.labels.due(s, ts, bar.close)
            if outcome is not None:
                self.record(outcome)
        self.record(BarMarked(ts, tuple((s, b.close) for s, b in bars.items())))
        for s in bars:
            tracker = self.vol.tracker(s)
            if tracker.refit_due():
                self.record(VolatilityFitted.from_fit(s, tracker.fit()))
        self._update_state(ts)

    def _update_state(self, ts: int) -> None:
        new, dd = next_state(self.state, self.portfolio.equity(), self.peak, self.risk_cfg)
        if new != self.state:
            self._set_state(ts, new, f"drawdown {dd:.4f}", peak=None)

    def _set_state(self, ts: int, new: TradingState, why: str, peak: Decimal | None) -> None:
        old = self.state
        self.record(StateChanged(ts, old, new, why, peak))
        self.record(RiskDenied(ts, "*", "", Reason.STATE_CHANGE.value, "state",
                               detail=f"{old.value} -> {new.value}: {why}"))
        if new == TradingState.HALTED:
            for exp in self.broker.cancel_all(ts, Reason.HALTED.value):
                if exp.order_id in self.orders:
                    self.record(OrderExpired(exp))
            for o in list(self.orders):  # anything the broker did not know of
                self.record(OrderExpired(Expiry(o.order_id, o.symbol, ts, Reason.HALTED.value)))

    def halt(self, ts: int, why: str = "operator halt") -> list[Event]:
        """Kill switch: HALTED now, every open order cancelled."""
        if self.state != TradingState.HALTED:
            self._set_state(ts, TradingState.HALTED, why, peak=None)
        return self.commit()

    def resume(self, ts: int, why: str = "operator resume") -> list[Event]:
        """Leave HALTED/REDUCING; the drawdown is measured from the current equity again."""
        if self.state != TradingState.ACTIVE:
            self._set_state(ts, TradingState.ACTIVE, why, peak=self.portfolio.equity())
        return self.commit()

    # ------------------------------------------------------------------ decisions
    def _reference(self, symbol: str, ts: int) -> tuple[Decimal | None, float]:
        bar_ts = self.last_bar_ts.get(symbol)
        if bar_ts is None or bar_ts > ts or symbol not in self.portfolio.prices:
            return None, math.inf
        return self.portfolio.prices[symbol], (ts - bar_ts) / 1e9

    def apply_signals(self, signals: Iterable[SignalRow]) -> list[Event]:
        """Decide on each new (symbol, ts) signal; returns the events (orders among them).
        With portfolio construction on, the signals' scores become target weights first
        (``target_weights``) and those are traded (``apply_weights``)."""
        if self.constructing:
            weights, refused = self.target_weights(signals)
            if weights:
                self.last_weights = weights
            for ts, n, why in refused:
                self.record(RiskDenied(ts, "*", "", Reason.CONSTRUCTION.value, "denied", detail=f"{n} names: {why}"))
            return self.apply_weights(weights)
        todo: list[tuple[str, int, str, Decimal, float, str | SignalRow]] = []
        equity: float | None = None  # no fill lands before _send: computed once, when first needed
        for sig in sorted(signals, key=lambda s: (s.ts, s.symbol)):
            if sig.ts <= self.last_decision_ts.get(sig.symbol, NEVER):
                continue  # duplicate or out of date: decided already
            if not sig.decided and sig.action != 0:
                raise ValueError(f"signal {sig.symbol}@{sig.ts}: a no-decision must have action 0")
            ref, _ = self._reference(sig.symbol, sig.ts)
            self.record(DecisionMade(sig.symbol, sig.ts, int(sig.action), float(sig.confidence), ref))
            if not sig.decided and self.port_cfg.no_decision == "keep":
                continue
            action = self._target_action(sig)
            if action != 0 and equity is None:
                equity = float(self.portfolio.equity())
            target = self._target_from_signal(sig, action, ref, equity)
            if target is not None:
                intent = f"signal:{int(sig.action)}" if sig.decided else "no-decision:flat"
                todo.append((sig.symbol, sig.ts, intent, target, sig.confidence, sig))
        self._send(todo)
        return self.commit()

    def _target_action(self, sig: SignalRow) -> int:
        """The exposure to target for a signal (a short clipped to flat is recorded)."""
        if not sig.decided:
            return 0
        if sig.action < 0 and not self.risk_cfg.allow_short:
            self.record(RiskDenied(sig.ts, sig.symbol, "", Reason.NO_SHORT.value, "clipped",
                                   detail="short target clipped to flat (risk.allow_short is false)"))
            return 0
        return int(sig.action)

    def _why(self, sig: SignalRow) -> str:
        """The order reason that says why a signal traded (built only for orders sent)."""
        if not sig.decided:
            return f"no decision -> flat (portfolio.no_decision) conf {sig.confidence:.3f}"
        why = f"signal {int(sig.action):+d} conf {sig.confidence:.3f}"
        if sig.action < 0 and not self.risk_cfg.allow_short:
            return why + " (short clipped to flat)"
        return why

    # ------------------------------------------------------------------ portfolio construction
    def returns_matrix(self, symbols: Sequence[str]) -> np.ndarray:
        """[T, N] simple returns of ``symbols`` over the kept closes (NaN where one is missing)."""
        from tinywindow.portfolio.construction import returns_from_closes

        return returns_from_closes([marks for _, marks in self.close_history], symbols)

    def current_weights(self, symbols: Sequence[str]) -> np.ndarray:
        """Each symbol's exposure (position plus open orders) as a signed fraction of equity."""
        equity = float(self.portfolio.equity())
        out = np.zeros(len(symbols))
        if equity <= 0:
            return out
        for j, s in enumerate(symbols):
            price = self.portfolio.prices.get(s)
            if price is not None:
                out[j] = float(self.exposure(s) * price) / equity
        return out

    def target_weights(self, signals: Iterable[SignalRow]) -> tuple[list[WeightRow], list[tuple[int, int, str]]]:
        """WEIGHTS for the new signals: per bar time, ``PortfolioConstructor.construct`` on the
        decided signals' scores, the kept closes' returns and the current weights.  No
        decision, a decision to be flat, and a symbol held without a signal at that bar are no
        view (weight 0), so the constraints hold for the whole book.  Records nothing; returns
        the rows and (ts, names, why) of each bar construction refused (``apply_signals``
        records a ``RiskDenied`` CONSTRUCTION: that bar trades nothing)."""
        from tinywindow.errors import TinyWindowError
        from tinywindow.portfolio.construction import PortfolioConstructor

        if self._constructor is None:
            self._constructor = PortfolioConstructor(self.construction)
        by_ts: dict[int, dict[str, SignalRow]] = {}
        for sig in signals:
            if sig.ts <= self.last_decision_ts.get(sig.symbol, NEVER):
                continue  # duplicate or out of date: decided already
            if not sig.decided and sig.action != 0:
                raise ValueError(f"signal {sig.symbol}@{sig.ts}: a no-decision must have action 0")
            by_ts.setdefault(sig.ts, {})[sig.symbol] = sig
        out: list[WeightRow] = []
        refused: list[tuple[int, int, str]] = []
        held = {s for s in set(self.portfolio.positions) | self.orders.symbols() if self.exposure(s) != 0}
        for ts in sorted(by_ts):
            rows = by_ts[ts]
            symbols = sorted(set(rows) | {s for s in held if ts > self.last_decision_ts.get(s, NEVER)})
            scores = np.array([rows[s].view if s in rows else math.nan for s in symbols], dtype=np.float64)
            prev = self.current_weights(symbols)
            try:
                built = self._constructor.construct(scores, self.returns_matrix(symbols), prev)
            except TinyWindowError as exc:  # infeasible constraints, unusable prices: no trade this bar
                refused.append((ts, len(symbols), str(exc)))
                continue
            method = self.construction.method
            for j, s in enumerate(symbols):
                got = rows.get(s)
                w = float(built.weights[j])
                if got is None:
                    why, conf = "no signal at this bar -> weight 0", 1.0
                elif not got.decided:
                    why, conf = "no decision -> weight 0", got.confidence
                elif got.action == 0:
                    why, conf = "decided flat -> weight 0", got.confidence
                else:
                    why, conf = f"weight {w:+.4f} ({method}, score {scores[j]:+.3f})", got.confidence
                score = 0.0 if not math.isfinite(scores[j]) else float(scores[j])
                # score and confidence as WEIGHTS carries them (float32): one value everywhere
                out.append(WeightRow(s, ts, w, float(np.float32(score)), float(np.float32(conf)), why))
        return out, refused

    def apply_weights(self, weights: Iterable[WeightRow]) -> list[Event]:
        """Trade to target weights: a decision per new (symbol, ts) row, the target quantity
        ``weight x equity / reference close`` in lots, every order through the risk checks
        (``_send``)."""
        todo: list[tuple[str, int, str, Decimal, float, str | SignalRow]] = []
        equity: float | None = None
        for row in sorted(weights, key=lambda r: (r.ts, r.symbol)):
            if row.ts <= self.last_decision_ts.get(row.symbol, NEVER):
                continue
            if not math.isfinite(row.weight):
                raise ValueError(f"weight {row.symbol}@{row.ts} is not finite")
            ref, _ = self._reference(row.symbol, row.ts)
            action = (row.weight > 0) - (row.weight < 0)
            self.record(DecisionMade(row.symbol, row.ts, action, float(row.confidence), ref))
            if equity is None:
                equity = float(self.portfolio.equity())
            if ref is None:
                target = self.exposure(row.symbol) + (action or 1) * self.lot  # any size: risk denies it
            else:
                target = to_decimal(target_quantity(row.weight, equity, float(ref), float(self.lot)))
            todo.append((row.symbol, row.ts, f"weight:{row.weight:+.6f}", target, row.confidence, row.reason))
        self._send(todo)
        return self.commit()

    def rebalance(self, targets: Mapping[str, Decimal | float | int], ts: int, reason: str = "target") -> list[Event]:
        """Move each symbol to an explicit target quantity (a strategy that sizes itself)."""
        orders: list[tuple[str, int, str, Decimal, float, str | SignalRow]] = []
        for symbol in sorted(targets):
            if ts <= self.last_decision_ts.get(symbol, NEVER):
                continue
            qty = to_decimal(targets[symbol], name="target")
            ref, _ = self._reference(symbol, ts)
            self.record(DecisionMade(symbol, ts, (qty > 0) - (qty < 0), 1.0, ref))
            orders.append((symbol, ts, f"target:{dec_str(qty)}", qty, 1.0, reason))
        self._send(orders)
        return self.commit()

    def _target_from_signal(
        self, sig: SignalRow, action: int, ref: Decimal | None, equity: float | None
    ) -> Decimal | None:
        """The target quantity of ``action`` (0: flat, no volatility needed; None: no target)
        for an account of ``equity`` (the portfolio's, as a float)."""
        if action == 0 or equity is None:
            return ZERO
        vol = self.vol.tracker(sig.symbol).annual_vol()
        w = target_weight(float(action), vol, self.risk_cfg)
        if ref is None:
            return self.exposure(sig.symbol) + action * self.lot  # any size: risk denies it
        if not math.isfinite(w):
            self.record(RiskDenied(sig.ts, sig.symbol, "", Reason.NO_VOLATILITY.value, "denied",
                                   detail="no volatility estimate yet"))
            return None
        qty = target_quantity(w, equity, float(ref), float(self.lot))
        return to_decimal(qty)

    def _send(self, wanted: Sequence[tuple[str, int, str, Decimal, float, str | SignalRow]]) -> None:
        """Risk-check and record orders; exposure-reducing ones first so they free room.  Each
        wants an order reason, or the signal to spell one for (``_why``)."""
        if not wanted:
            return
        held = set(self.portfolio.positions) | self.orders.symbols()
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
                self.record(ev)
            if allowed == 0 or ref is None:
                continue
            side = 1 if allowed > 0 else -1
            # amounts in their journal spelling (``ref`` is a mark, so it is already)
            order = Order(oid, symbol, ts, side, canonical_decimal(abs(allowed)), ref,
                          canonical_decimal(collar_limit(side, ref, self.limits.collar)),
                          why if isinstance(why, str) else self._why(why))
            self.record(OrderSubmitted(order))
            book.count(symbol, allowed, ref)

    def resubmit_open_orders(self) -> None:
        """After replay: hand still-open orders back to the broker (idempotent by id)."""
        for order in self.orders:
            self.broker.submit(order)

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data (the checkpoint); orders, outcomes and risk
        events in their codec spelling."""
        return {
            "portfolio": self.portfolio.snapshot(),
            "state": self.state.value,
            "peak": dec_str(self.peak),
            "open_orders": [CODEC.payload(OrderSubmitted(o)) for o in self.orders],
            "last_bar_ts": dict(sorted(self.last_bar_ts.items())),
            "last_decision_ts": dict(sorted(self.last_decision_ts.items())),
            "vol": self.vol.snapshot(),
            **self.labels.snapshot(),
            "risk_events": [CODEC.payload(e) for e in self.risk_events],
            "equity_curve": [[ts, dec_str(e)] for ts, e in self.equity_curve],
            **self._settings_snapshot(),
            **({"close_history": [[ts, dict(sorted(m.items()))] for ts, m in self.close_history]}
               if self.constructing else {}),
        }

    def restore(self, d: Mapping[str, Any]) -> None:
        """Load a snapshot into a fresh engine (before replaying later events)."""
        # runtime settings over the start-up section (a checkpoint written before they existed
        # has none: the start-up section stays); first, so the volatility trackers get them
        saved = d.get("risk_settings") or {}
        if saved.get("overrides"):
            self._adopt_risk(replayed_section(self.risk_cfg, "risk", saved["overrides"]))
            self.settings_overrides = dict(saved["overrides"])
        self.settings_id = saved.get("change_id")
        self.portfolio = Portfolio.from_snapshot(d["portfolio"])
        self.state = TradingState(d["state"])
        self.peak = Decimal(d["peak"])
        self.orders = OrderBook()
        for o in d["open_orders"]:
            self.orders.add(CODEC.decode_as(OrderSubmitted, o).order)
        self.last_bar_ts = {s: int(v) for s, v in d["last_bar_ts"].items()}
        self.last_decision_ts = {s: int(v) for s, v in d["last_decision_ts"].items()}
        self.vol.restore(d["vol"])
        self.labels.restore(d)
        self.risk_events.clear()
        self.risk_events.extend(CODEC.decode_as(RiskDenied, e) for e in d["risk_events"])
        self.equity_curve.clear()
        self.equity_curve.extend((int(ts), Decimal(e)) for ts, e in d["equity_curve"])
        self.close_history.clear()
        self.close_history.extend((int(ts), {s: float(c) for s, c in m.items()}) for ts, m in d.get("close_history", []))
