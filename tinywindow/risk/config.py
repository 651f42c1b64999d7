"""Configuration of the risk checks: limits, collar, volatility targeting, drawdown states.

Defined beside the package that uses it and composed into the root ``tinywindow.config.Config``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tinywindow.core.settings import Section, require_ordered

# Read only when the engine starts: the volatility trackers seed their EWMA estimate once they
# hold ``min_vol_obs`` returns, so a running change would leave them in a state no start reaches.
STARTUP_ONLY = frozenset({"min_vol_obs"})


class RiskConfig(Section):
    max_position: float = Field(default=0.2, gt=0, le=1.0)  # fraction of equity per symbol
    max_gross: float = Field(default=1.0, gt=0, le=100.0)  # sum of |exposure| / equity
    max_net: float = Field(default=1.0, gt=0, le=100.0)
    max_order_notional_usd: float = Field(default=1_000_000.0, gt=0, le=1e15)
    collar: float = Field(default=0.05, gt=0, le=1.0)
    confidence_floor: float = Field(default=0.5, ge=0.0, le=1.0)
    allow_short: bool = True  # False: a short target is clipped to flat (risk event NO_SHORT)
    max_weight: float = Field(default=0.25, gt=0, le=1.0)
    target_vol: float = Field(default=0.15, gt=0, le=10.0)
    reduce_drawdown: float = Field(default=0.10, gt=0, le=1.0)
    halt_drawdown: float = Field(default=0.20, gt=0, le=1.0)
    resume_drawdown: float = Field(default=0.05, ge=0, le=1.0)  # REDUCING -> ACTIVE below this
    max_price_age_s: float = Field(default=4 * 86400.0, gt=0, le=365 * 86400.0)  # older reference price: fail closed
    vol_model: Literal["garch", "ewma"] = "garch"
    ewma_lambda: float = Field(default=0.94, gt=0, lt=1.0)
    min_vol_obs: int = Field(default=20, ge=2, le=100_000)  # fewer returns: no estimate, no new exposure
    garch_min_obs: int = Field(default=250, ge=50, le=100_000)  # fewer returns: EWMA
    garch_refit_every: int = Field(default=21, ge=1, le=100_000)
    vol_window: int = Field(default=1000, ge=50, le=1_000_000)
    periods_per_year: int = Field(default=252, ge=1, le=365 * 86400)  # up to one per second

    @model_validator(mode="after")
    def _ordered(self) -> RiskConfig:
        require_ordered(
            "risk",
            ("resume_drawdown", self.resume_drawdown),
            ("reduce_drawdown", self.reduce_drawdown),
            ("halt_drawdown", self.halt_drawdown),
        )
        # a window shorter than garch_min_obs would never fit GARCH: EWMA forever, silently
        require_ordered("risk", ("garch_min_obs", self.garch_min_obs), ("vol_window", self.vol_window))
        return self
