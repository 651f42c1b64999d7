"""Risk: pre-trade checks, sizing, trading states and volatility forecasts.

* ``checks``: ``check_order`` (deny or clip, with reason codes), ``target_weights``,
  ``next_state``, ``TradingState``, ``Reason``, ``Limits``
* ``events``: ``RiskDenied``, the event every denial, clip and state change emits
* ``volatility``: ``VolTracker``/``VolBook`` (GARCH with EWMA fallback), ``ewma_variance_panel``
* ``config``: ``RiskConfig``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinywindow.core.lazy import lazy_exports

if TYPE_CHECKING:
    from tinywindow.risk.checks import (
        Limits,
        Reason,
        TradingState,
        check_order,
        next_state,
        target_weights,
    )
    from tinywindow.risk.config import RiskConfig
    from tinywindow.risk.events import RiskDenied
    from tinywindow.risk.volatility import VolBook, VolTracker

__all__ = [
    "Limits",
    "Reason",
    "RiskConfig",
    "RiskDenied",
    "TradingState",
    "VolBook",
    "VolTracker",
    "check_order",
    "next_state",
    "target_weights",
]

_EXPORTS = {
    "Limits": "tinywindow.risk.checks",
    "Reason": "tinywindow.risk.checks",
    "RiskConfig": "tinywindow.risk.config",
    "RiskDenied": "tinywindow.risk.events",
    "TradingState": "tinywindow.risk.checks",
    "VolBook": "tinywindow.risk.volatility",
    "VolTracker": "tinywindow.risk.volatility",
    "check_order": "tinywindow.risk.checks",
    "next_state": "tinywindow.risk.checks",
    "target_weights": "tinywindow.risk.checks",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)
