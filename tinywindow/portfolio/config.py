"""Configuration of portfolio construction: scores -> target weights under constraints.

Defined beside ``tinywindow.portfolio.construction`` and meant to be composed into the root
config as ``portfolio.construction`` (the key prefix every message here uses)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tinywindow.core.settings import Section, config_error, require_ordered

SECTION = "portfolio.construction"


class ConstructionConfig(Section):
    method: Literal["none", "mean_variance", "risk_parity", "score_tilt"] = "none"  # none: per-symbol sizing
    long_only: bool = True
    gross: float = Field(default=1.0, gt=0, le=10.0)  # sum |w| <= gross
    net_min: float = Field(default=0.0, ge=-10.0, le=10.0)  # net = sum w in [net_min, net_max]
    net_max: float = Field(default=1.0, ge=-10.0, le=10.0)
    max_weight: float = Field(default=0.10, gt=0, le=1.0)  # |w_i| <= max_weight
    turnover_penalty: float = Field(default=0.0, ge=0, le=1e6)  # objective += penalty * sum |w - w_prev|
    vol_target: float | None = Field(default=0.10, gt=0, le=10.0)  # annualised; scales down only; None: off
    risk_aversion: float = Field(default=1.0, gt=0, le=1e9)  # mean-variance lambda
    alpha_ic: float = Field(default=0.05, ge=0, le=1.0)  # mu_i = alpha_ic * zscore(score)_i * sigma_i per bar
    lookback: int = Field(default=60, ge=2, le=100_000)  # bars of returns for the covariance
    min_history: int = Field(default=20, ge=2, le=100_000)  # fewer finite returns: weight 0 (excluded)
    annualization: int = Field(default=252, ge=1, le=365 * 86400)
    top_fraction: float = Field(default=0.2, gt=0, le=1.0)  # score_tilt: fraction of names held per side

    @model_validator(mode="after")
    def _consistent(self) -> ConstructionConfig:
        require_ordered(SECTION, ("net_min", self.net_min), ("net_max", self.net_max))
        require_ordered(SECTION, ("min_history", self.min_history), ("lookback", self.lookback))
        if self.net_min > self.gross:
            raise config_error(
                f"{SECTION}.net_min={self.net_min!r} exceeds {SECTION}.gross={self.gross!r}: "
                "a book of gross G has net within [-G, G]", key=f"{SECTION}.net_min")
        if self.net_max < -self.gross:
            raise config_error(
                f"{SECTION}.net_max={self.net_max!r} is below -{SECTION}.gross={-self.gross!r}: "
                "a book of gross G has net within [-G, G]", key=f"{SECTION}.net_max")
        if self.long_only and self.net_max <= 0:
            raise config_error(
                f"{SECTION}.long_only needs {SECTION}.net_max > 0; got {self.net_max!r}",
                key=f"{SECTION}.net_max")
        if not self.long_only and self.top_fraction > 0.5:
            raise config_error(
                f"{SECTION}.top_fraction={self.top_fraction!r}: long-short holds the top and the bottom "
                "fraction, so it must be <= 0.5", key=f"{SECTION}.top_fraction")
        return self
