"""The engine's metrics, through ``ray.util.metrics``: the one place that defines them.

Ray's metrics agent on each node exports them in Prometheus format with the ``ray_`` prefix
(a counter gains ``_total``, a histogram ``_bucket``/``_sum``/``_count``);
``cluster/grafana/tinywindow-dashboard.json`` charts every one (a unit test keeps the two in
step) and ``docs/operations.md`` says how to scrape them.

==================================  =========  ==========================================
metric (as defined)                 kind       tags
==================================  =========  ==========================================
``tinywindow_decisions``            counter    run, mode, outcome (long/short/flat/no_decision)
``tinywindow_decision_latency_ms``  histogram  run, mode (bar released -> its orders known)
``tinywindow_equity_usd``           gauge      run, mode
``tinywindow_drawdown_ratio``       gauge      run, mode (1 - equity / peak equity)
``tinywindow_orders``               counter    run, mode, symbol, side (buy/sell)
``tinywindow_risk_denials``         counter    run, mode, reason, action (denied/clipped/cancelled)
``tinywindow_retrains``             counter    run, agent (retrains started)
``tinywindow_promotions``           counter    run, agent, decision (promoted/rejected)
==================================  =========  ==========================================

``run`` and ``mode`` come from the actor's name (``<run>-<mode>-<role>``, ``RunConfig.actor_name``);
an actor named otherwise reports its config's run and mode ``unknown``.

The call sites (one per place an event happens) are the functions at the bottom.  Each
counts from what was *committed* (journaled), so a retried call or a replay at start-up
counts nothing twice.  The ``ray.util.metrics`` objects are made on first use in the process
that records (never pickled into an actor), once per process; each actor's tag dicts are
built once and reused, so a call per bar costs a dict lookup and a record per tag set.  With
no Ray connected (an actor class used in-process by a unit test) every call does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tinywindow.consensus.events import ConsensusDecided
from tinywindow.core.events import Event
from tinywindow.execution.events import BarMarked, OrderFilled, OrderSubmitted, StateChanged
from tinywindow.risk.events import RiskDenied

if TYPE_CHECKING:
    from tinywindow.execution.engine import TradingEngine

__all__ = [
    "METRICS",
    "MetricSpec",
    "consensus_committed",
    "decision_latency",
    "portfolio_committed",
    "promotion_decided",
    "retrain_started",
]

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name as defined (Ray adds ``ray_``), kind, help text and tag keys."""

    name: str
    kind: Kind
    description: str
    tag_keys: tuple[str, ...]
    boundaries: tuple[float, ...] = ()  # histogram bucket upper bounds

    @property
    def exported(self) -> str:
        """The name Prometheus scrapes (a histogram's series add ``_bucket|_sum|_count``)."""
        return f"ray_{self.name}_total" if self.kind == "counter" else f"ray_{self.name}"


LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000)

DECISIONS = MetricSpec("tinywindow_decisions", "counter",
                       "Consensus decisions recorded, by outcome (long, short, flat, no_decision).",
                       ("run", "mode", "outcome"))
DECISION_LATENCY = MetricSpec("tinywindow_decision_latency_ms", "histogram",
                              "Bar released into the actor graph -> its orders known (ms).",
                              ("run", "mode"), tuple(float(b) for b in LATENCY_BUCKETS_MS))
EQUITY = MetricSpec("tinywindow_equity_usd", "gauge", "Account equity after the latest commit (USD).",
                    ("run", "mode"))
DRAWDOWN = MetricSpec("tinywindow_drawdown_ratio", "gauge",
                      "Drawdown from the peak equity after the latest commit (1 - equity / peak).",
                      ("run", "mode"))
ORDERS = MetricSpec("tinywindow_orders", "counter", "Risk-approved orders submitted, by symbol and side.",
                    ("run", "mode", "symbol", "side"))
RISK_DENIALS = MetricSpec("tinywindow_risk_denials", "counter",
                          "Orders or targets risk denied, clipped or cancelled, by reason code.",
                          ("run", "mode", "reason", "action"))
RETRAINS = MetricSpec("tinywindow_retrains", "counter", "Agent retrains started.", ("run", "agent"))
PROMOTIONS = MetricSpec("tinywindow_promotions", "counter",
                        "Promotion gate decisions on retrained challengers (promoted or rejected).",
                        ("run", "agent", "decision"))

METRICS: tuple[MetricSpec, ...] = (DECISIONS, DECISION_LATENCY, EQUITY, DRAWDOWN, ORDERS, RISK_DENIALS,
                                   RETRAINS, PROMOTIONS)

_made: dict[str, Any] = {}  # name -> the ray.util.metrics object, made once per process
_tags: dict[tuple[str, ...], dict[str, str]] = {}  # every tag set recorded, built once


def _enabled() -> bool:
    """Ray connected in this process (never imports ray: a plain in-process run stays plain)."""
    ray = sys.modules.get("ray")
    return ray is not None and bool(ray.is_initialized())


def _metric(spec: MetricSpec) -> Any:
    m = _made.get(spec.name)
    if m is None:
        from ray.util import metrics

        if spec.kind == "counter":
            m = metrics.Counter(spec.name, spec.description, spec.tag_keys)
        elif spec.kind == "gauge":
            m = metrics.Gauge(spec.name, spec.description, spec.tag_keys)
        else:
            m = metrics.Histogram(spec.name, spec.description, list(spec.boundaries), spec.tag_keys)
        _made[spec.name] = m
    return m


def _tagset(spec: MetricSpec, *values: str) -> dict[str, str]:
    """The tag dict of ``spec`` with ``values`` (in ``tag_keys`` order), built once."""
    key = (spec.name, *values)
    tags = _tags.get(key)
    if tags is None:
        tags = _tags[key] = dict(zip(spec.tag_keys, values, strict=True))
    return tags


def run_mode(name: str, role: str, run: str = "unknown") -> tuple[str, str]:
    """(run, mode) of an actor named ``<run>-<mode>-<role>``; otherwise (``run``, ``unknown``)."""
    parts = name.rsplit("-", 2)
    if len(parts) == 3 and parts[2] == role and parts[0] and parts[1]:
        return parts[0], parts[1]
    return run, "unknown"


# --------------------------------------------------------------------------- call sites


def portfolio_committed(run: str, account: str, engine: TradingEngine, events: Sequence[Event]) -> None:
    """A PortfolioActor call committed ``events``: count its orders (by symbol and side) and
    risk denials (by reason), and set equity and drawdown when a mark or fill moved them."""
    if not events or not _enabled():
        return
    r, mode = run_mode(account, "portfolio", run)
    moved = False
    for e in events:
        if isinstance(e, OrderSubmitted):
            side = "buy" if e.order.side > 0 else "sell"
            _metric(ORDERS).inc(1, _tagset(ORDERS, r, mode, e.order.symbol, side))
        elif isinstance(e, RiskDenied):
            if e.action != "state":  # a trading-state change is journaled as a risk event too
                _metric(RISK_DENIALS).inc(1, _tagset(RISK_DENIALS, r, mode, e.reason, e.action))
        elif isinstance(e, BarMarked | OrderFilled | StateChanged):
            moved = True
    if moved:
        equity, peak = engine.portfolio.equity(), engine.peak
        _metric(EQUITY).set(float(equity), _tagset(EQUITY, r, mode))
        _metric(DRAWDOWN).set(float(1 - equity / peak) if peak > 0 else 1.0, _tagset(DRAWDOWN, r, mode))


def consensus_committed(run: str, name: str, events: Sequence[Event]) -> None:
    """A ConsensusActor call committed ``events``: count its new decisions by outcome."""
    if not events or not _enabled():
        return
    r, mode = run_mode(name, "consensus", run)
    counts = {"long": 0, "short": 0, "flat": 0, "no_decision": 0}
    for e in events:
        if isinstance(e, ConsensusDecided):
            for sig in e.signals:  # symbol, action, confidence, agreement, votes, reason, decided, score
                action, decided = sig[1], sig[6]
                counts["no_decision" if not decided else "long" if action > 0 else "short" if action < 0 else "flat"] += 1
    for outcome, n in counts.items():
        if n:
            _metric(DECISIONS).inc(n, _tagset(DECISIONS, r, mode, outcome))


def decision_latency(graph: str, latency_ms: float) -> None:
    """The actor graph ``graph`` (``<run>-<mode>-graph``) knows a bar's orders ``latency_ms``
    after it released the bar."""
    if not _enabled():
        return
    r, mode = run_mode(graph, "graph", graph)
    _metric(DECISION_LATENCY).observe(latency_ms, _tagset(DECISION_LATENCY, r, mode))


def retrain_started(run: str, agent: str) -> None:
    """An agent started a retrain (a challenger)."""
    if _enabled():
        _metric(RETRAINS).inc(1, _tagset(RETRAINS, run, agent))


def promotion_decided(run: str, agent: str, promoted: bool) -> None:
    """The promotion gate decided on an agent's challenger."""
    if _enabled():
        decision = "promoted" if promoted else "rejected"
        _metric(PROMOTIONS).inc(1, _tagset(PROMOTIONS, run, agent, decision))
