"""Portfolio construction: one bar's cross-sectional scores -> target weights under constraints."""

from tinywindow.portfolio.config import ConstructionConfig
from tinywindow.portfolio.construction import (
    ConstraintError,
    Construction,
    PortfolioConstructor,
    ShrunkCovariance,
    covariance,
    equal_risk_contribution,
    grinold_alpha,
    ledoit_wolf,
    zscore,
)

__all__ = [
    "ConstraintError",
    "Construction",
    "ConstructionConfig",
    "PortfolioConstructor",
    "ShrunkCovariance",
    "covariance",
    "equal_risk_contribution",
    "grinold_alpha",
    "ledoit_wolf",
    "zscore",
]
