"""The summary a run writes beside what it prints (``<data_dir>/summary.json``, one key per
mode): signals by action, orders, fees, the ledger digest, the agents' versions, retrains
used / promoted / rejected, and the metrics of the book and of equal-weight buy-and-hold.

``bars``, ``signals`` and ``orders_this_run`` count what this run traded; ``orders``,
``order_sides``, fees and the book are the account's whole ledger (a resumed run's journal
included).  The ledger digest is SHA-256 over the canonical JSON of every order the account submitted
(from its signed journal) and its final cash, positions, realized P&L and fees (exact decimal
strings): two runs that trade the same ledger have the same digest, whatever their timing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinywindow.backtest.metrics import summarize

LEDGER_KEYS = ("cash", "equity", "realized_pnl", "fees", "positions", "closed_trades")


def ledger(orders: Sequence[Mapping[str, Any]], snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """What the digest covers: the orders and the final book (exact strings)."""
    return {"orders": [dict(o) for o in orders], "book": {k: snapshot[k] for k in LEDGER_KEYS}}


def ledger_digest(orders: Sequence[Mapping[str, Any]], snapshot: Mapping[str, Any]) -> str:
    text = json.dumps(ledger(orders, snapshot), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def metrics(equity: Sequence[float], start_cash: float, periods: int = 252) -> dict[str, float | None]:
    m = summarize([start_cash, *equity], periods=periods)
    return {"total_return": _finite(m.total_return), "cagr": _finite(m.cagr), "sharpe": _finite(m.sharpe),
            "max_drawdown": _finite(m.max_drawdown), "volatility": _finite(m.volatility)}


def build(
    *,
    mode: str,
    run: str,
    signals: Mapping[str, int],
    orders: Sequence[Mapping[str, Any]],
    order_sides: Mapping[str, int],
    snapshot: Mapping[str, Any],
    equity: Sequence[float],
    benchmark: Sequence[float],
    start_cash: float,
    first: str | None,
    last: str | None,
    versions: Mapping[str, Sequence[str]],
    serving: Mapping[str, str | None],
    promotions: Sequence[Mapping[str, Any]] = (),
    outcomes: int = 0,
    risk_events: int = 0,
    journal_ok: bool = True,
    seconds: float = 0.0,
    periods: int = 252,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    promoted = sum(1 for p in promotions if p.get("promote"))
    sides = [int((o.get("order") or o).get("side", 0)) for o in orders]
    return {
        "run": run,
        "mode": mode,
        "bars": len(equity),
        "first": first,
        "last": last,
        "signals": dict(signals),
        "orders": len(orders),  # the whole ledger (a resumed run's journal included)
        "order_sides": {"buy": sum(1 for x in sides if x > 0), "sell": sum(1 for x in sides if x < 0)},
        "orders_this_run": sum(order_sides.values()),
        "fees": str(snapshot["fees"]),
        "final_equity": str(snapshot["equity"]),
        "closed_trades": snapshot["closed_trades"],
        "ledger_digest": ledger_digest(orders, snapshot),
        "agents": {a: {"serving": serving.get(a), "voted": list(v)} for a, v in sorted(versions.items())},
        "retrains": {"used": len(promotions), "promoted": promoted, "rejected": len(promotions) - promoted},
        "outcomes": outcomes,
        "risk_events": risk_events,
        "journal_verified": journal_ok,
        "metrics": {"book": metrics(equity, start_cash, periods), "buy_and_hold": metrics(benchmark, start_cash, periods)},
        "seconds": round(seconds, 1),
        **dict(extra or {}),
    }


def write(path: str | Path, mode: str, summary: Mapping[str, Any]) -> Path:
    """Put ``summary`` under its mode's key in the JSON file at ``path`` (other modes kept);
    written to a temporary file and renamed, so a reader never sees half of it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {}
    if p.exists():
        try:
            loaded = json.loads(p.read_text())
            doc = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            doc = {}
    doc[mode] = dict(summary)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
    os.replace(tmp, p)
    return p
