"""Performance metrics of a backtest or a live book, on simple period returns.

The return-based metrics follow empyrical-reloaded's definitions exactly (a unit test holds
them equal to 1e-9 on the same returns): NaN returns are skipped, volatility is the sample
standard deviation (ddof=1) scaled by ``sqrt(periods)``, Sharpe divides the mean return by
it (0 dispersion: infinite or NaN, never 1e15), Sortino divides the annualised mean by the
downside deviation ``sqrt(mean(min(r, 0)**2))``, CAGR compounds over ``len(r) / periods``
years, and Calmar is CAGR over the magnitude of the maximum drawdown (NaN without one).

Trade metrics come from the net P&L of closed trades (``Portfolio.trade_pnls``): win rate
is the share with P&L > 0, profit factor is gross profit over gross loss.  Turnover and
exposure come from the book: annual one-way turnover is traded notional / (2 * mean equity)
per year; exposure time is the share of periods with any position; average gross exposure
is mean(gross / equity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PERIODS_PER_YEAR = 252


def _arr(returns: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(returns, dtype=np.float64)


def returns_from_equity(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """Simple returns between consecutive equity values (length n - 1)."""
    e = _arr(equity)
    return e[1:] / e[:-1] - 1.0


def total_return(returns: Sequence[float] | np.ndarray) -> float:
    r = _arr(returns)
    if r.size == 0:
        return float("nan")
    return float(np.nanprod(r + 1.0) - 1.0)


def cagr(returns: Sequence[float] | np.ndarray, periods: int = PERIODS_PER_YEAR) -> float:
    """Compound annual growth rate (empyrical ``annual_return``)."""
    r = _arr(returns)
    if r.size < 1:
        return float("nan")
    years = r.size / periods
    return float(np.nanprod(r + 1.0) ** (1.0 / years) - 1.0)


def annual_volatility(returns: Sequence[float] | np.ndarray, periods: int = PERIODS_PER_YEAR) -> float:
    r = _arr(returns)
    if r.size < 2:
        return float("nan")
    return float(np.nanstd(r, ddof=1) * periods**0.5)


def _std_zero_aware(r: np.ndarray) -> float:
    """Sample std, exactly 0 when every present value is equal (not a 1e-18 residue)."""
    std = float(np.nanstd(r, ddof=1))
    present = r[~np.isnan(r)]
    if present.size and np.isfinite(std) and present.max() == present.min():
        return 0.0
    return std


def sharpe(returns: Sequence[float] | np.ndarray, risk_free: float = 0.0, periods: int = PERIODS_PER_YEAR) -> float:
    r = _arr(returns)
    if r.size < 2:
        return float("nan")
    adj = r - risk_free
    std = _std_zero_aware(adj)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(np.nanmean(adj)) / np.float64(std) * np.sqrt(periods))


def downside_risk(returns: Sequence[float] | np.ndarray, required: float = 0.0, periods: int = PERIODS_PER_YEAR) -> float:
    r = _arr(returns)
    if r.size < 1:
        return float("nan")
    d = np.clip(r - required, -np.inf, 0.0)
    return float(np.sqrt(np.nanmean(d * d)) * np.sqrt(periods))


def sortino(returns: Sequence[float] | np.ndarray, required: float = 0.0, periods: int = PERIODS_PER_YEAR) -> float:
    r = _arr(returns)
    if r.size < 2:
        return float("nan")
    mean_annual = np.float64(np.nanmean(r - required)) * periods
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(mean_annual / np.float64(downside_risk(r, required, periods)))


def drawdowns(returns: Sequence[float] | np.ndarray) -> np.ndarray:
    """Drawdown after each period, as a negative fraction of the running peak (peak starts at
    the initial value)."""
    r = np.nan_to_num(_arr(returns), nan=0.0)
    wealth = np.concatenate([[100.0], 100.0 * np.cumprod(r + 1.0)])
    peak = np.fmax.accumulate(wealth)
    return ((wealth - peak) / peak)[1:]


def max_drawdown(returns: Sequence[float] | np.ndarray) -> float:
    """The worst drawdown, as a negative number (0 when equity never fell)."""
    r = _arr(returns)
    if r.size < 1:
        return float("nan")
    return float(np.nanmin(drawdowns(r)))


def calmar(returns: Sequence[float] | np.ndarray, periods: int = PERIODS_PER_YEAR) -> float:
    mdd = max_drawdown(returns)
    if not mdd < 0:
        return float("nan")
    out = cagr(returns, periods) / abs(mdd)
    return float("nan") if np.isinf(out) else out


def win_rate(trade_pnls: Sequence[float] | np.ndarray) -> float:
    p = _arr(trade_pnls)
    return float((p > 0).mean()) if p.size else float("nan")


def profit_factor(trade_pnls: Sequence[float] | np.ndarray) -> float:
    """Gross profit / gross loss of closed trades (inf with no losing trade, NaN with none)."""
    p = _arr(trade_pnls)
    if p.size == 0:
        return float("nan")
    loss = -p[p < 0].sum()
    gain = p[p > 0].sum()
    if loss == 0:
        return float("inf") if gain > 0 else float("nan")
    return float(gain / loss)


def turnover(traded_notional: Sequence[float] | np.ndarray, equity: Sequence[float] | np.ndarray, periods: int = PERIODS_PER_YEAR) -> float:
    """Annual one-way turnover: traded notional / (2 * mean equity) / years."""
    tn = _arr(traded_notional)
    e = _arr(equity)
    if e.size == 0 or np.nanmean(e) <= 0:
        return float("nan")
    years = e.size / periods
    return float(np.nansum(tn) / (2.0 * np.nanmean(e)) / years)


def exposure_time(gross: Sequence[float] | np.ndarray) -> float:
    """Share of periods with any position."""
    g = _arr(gross)
    return float((g != 0).mean()) if g.size else float("nan")


def average_exposure(gross: Sequence[float] | np.ndarray, equity: Sequence[float] | np.ndarray) -> float:
    g, e = _arr(gross), _arr(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.nanmean(g / e)) if g.size else float("nan")


@dataclass(frozen=True)
class Summary:
    """Every metric of one equity curve (returns are simple, per period)."""

    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float
    win_rate: float
    profit_factor: float
    trades: int
    turnover: float
    exposure_time: float
    avg_gross_exposure: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def summarize(
    equity: Sequence[float] | np.ndarray,
    *,
    trade_pnls: Sequence[float] | np.ndarray = (),
    traded_notional: Sequence[float] | np.ndarray | None = None,
    gross: Sequence[float] | np.ndarray | None = None,
    periods: int = PERIODS_PER_YEAR,
) -> Summary:
    """All metrics from an equity curve (one value per period, starting with the initial
    equity) plus optional per-period traded notional and gross exposure."""
    e = _arr(equity)
    r = returns_from_equity(e)
    tn = np.zeros_like(e) if traded_notional is None else _arr(traded_notional)
    g = np.zeros_like(e) if gross is None else _arr(gross)
    return Summary(
        total_return=total_return(r),
        cagr=cagr(r, periods),
        volatility=annual_volatility(r, periods),
        sharpe=sharpe(r, periods=periods),
        sortino=sortino(r, periods=periods),
        max_drawdown=max_drawdown(r),
        calmar=calmar(r, periods),
        win_rate=win_rate(trade_pnls),
        profit_factor=profit_factor(trade_pnls),
        trades=len(_arr(trade_pnls)),
        turnover=turnover(tn, e, periods),
        exposure_time=exposure_time(g),
        avg_gross_exposure=average_exposure(g, e),
    )
