"""Volatility forecasts for position sizing: GARCH(1,1) from ``arch``, EWMA as the fallback.

A GARCH fit costs tens of milliseconds, so a ``VolTracker`` refits every
``garch_refit_every`` returns and, between fits, rolls the fitted recursion
``var' = omega + alpha * r**2 + beta * var`` forward one return at a time.  It falls back to
EWMA (RiskMetrics, ``var' = lam * var + (1 - lam) * r**2``) when there are too few returns
for a fit, when the optimiser does not converge, or when the fit is not stationary
(``alpha + beta >= 1``).  Returns are daily log returns; forecasts are per period and are
annualised by the caller.

``ewma_variance_panel`` is the same EWMA recursion over a [T, N] panel for the vectorised
backtest; it and ``VolTracker`` agree to rounding (a unit test holds them together).
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinywindow.risk.config import RiskConfig

_SCALE = 100.0  # arch fits are better conditioned on percent returns


@dataclass(frozen=True)
class GarchParams:
    """GARCH(1,1) parameters on returns in percent."""

    omega: float
    alpha: float
    beta: float

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta


def fit_garch(returns: Sequence[float] | np.ndarray) -> tuple[GarchParams, float] | None:
    """Fit GARCH(1,1) (zero mean, normal) and return its params and the variance forecast
    for the next period (in return units squared); None when the fit cannot be trusted."""
    from arch import arch_model

    r = np.asarray(returns, dtype=np.float64) * _SCALE
    if r.size < 50 or not np.all(np.isfinite(r)) or float(np.ptp(r)) == 0.0:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False).fit(
                disp="off", show_warning=False
            )
    except (ValueError, np.linalg.LinAlgError, RuntimeError):
        return None
    p = res.params
    params = GarchParams(float(p["omega"]), float(p["alpha[1]"]), float(p["beta[1]"]))
    if (
        res.convergence_flag != 0
        or not (params.omega > 0 and params.alpha >= 0 and params.beta >= 0)
        or params.persistence >= 0.999
    ):
        return None
    last_var = float(res.conditional_volatility[-1]) ** 2
    next_var = params.omega + params.alpha * r[-1] ** 2 + params.beta * last_var
    return params, next_var / _SCALE**2


def ewma_step(var: float, r: float, lam: float) -> float:
    return lam * var + (1.0 - lam) * r * r


def ewma_variance_panel(returns: np.ndarray, lam: float, min_obs: int) -> np.ndarray:
    """EWMA variance forecast after each row of ``returns`` [T, N] (NaN = no return).

    A column's estimate starts once it has ``min_obs`` returns: the mean of their squares,
    rolled forward by the EWMA recursion with every later return.  NaN before that.
    """
    t_len, n = returns.shape
    out = np.full((t_len, n), np.nan)
    count = np.zeros(n, dtype=np.int64)
    sumsq = np.zeros(n)
    var = np.full(n, np.nan)
    for t in range(t_len):
        r = returns[t]
        ok = np.isfinite(r)
        r0 = np.where(ok, r, 0.0)
        started = count >= min_obs
        roll = ok & started
        var = np.where(roll, lam * var + (1.0 - lam) * r0 * r0, var)
        count = count + ok
        sumsq = sumsq + r0 * r0
        seed = ok & ~started & (count == min_obs)
        var = np.where(seed, sumsq / np.maximum(count, 1), var)
        out[t] = var
    return out


class VolTracker:
    """Per-symbol volatility state, updated one close at a time (see module docstring)."""

    def __init__(self, cfg: RiskConfig) -> None:
        self.cfg = cfg
        self.last_close: float | None = None
        self.count = 0
        self.sumsq = 0.0
        self.ewma_var = math.nan
        self.garch: GarchParams | None = None
        self.garch_var = math.nan
        self.since_fit = 0
        self.window: deque[float] = deque(maxlen=cfg.vol_window)

    def update(self, close: float) -> float | None:
        """Add a close; returns the new log return (None for the first close)."""
        prev, self.last_close = self.last_close, close
        if prev is None:
            return None
        r = math.log(close / prev)
        if self.count >= self.cfg.min_vol_obs:
            self.ewma_var = ewma_step(self.ewma_var, r, self.cfg.ewma_lambda)
        self.count += 1
        self.sumsq += r * r
        if self.count == self.cfg.min_vol_obs:
            self.ewma_var = self.sumsq / self.count
        if self.garch is not None:
            g = self.garch
            self.garch_var = (g.omega + g.alpha * (r * _SCALE) ** 2 + g.beta * self.garch_var * _SCALE**2) / _SCALE**2
        self.window.append(r)
        self.since_fit += 1
        return r

    def refit_due(self) -> bool:
        cfg = self.cfg
        return (
            cfg.vol_model == "garch"
            and len(self.window) >= cfg.garch_min_obs
            and (self.garch is None or self.since_fit >= cfg.garch_refit_every)
        )

    def fit(self) -> dict[str, Any]:
        """Refit GARCH on the window; returns the result as a journal-able dict."""
        got = fit_garch(list(self.window))
        if got is None:
            return {"ok": False}
        params, next_var = got
        return {"ok": True, "omega": params.omega, "alpha": params.alpha, "beta": params.beta, "var": next_var}

    def apply_fit(self, fit: Mapping[str, Any]) -> None:
        """Adopt a fit result (live or replayed from the journal)."""
        self.since_fit = 0
        if fit.get("ok"):
            self.garch = GarchParams(float(fit["omega"]), float(fit["alpha"]), float(fit["beta"]))
            self.garch_var = float(fit["var"])
        else:
            self.garch, self.garch_var = None, math.nan

    def variance(self) -> tuple[float, str]:
        """The next-period variance forecast and the model that made it (NaN: none yet)."""
        if self.cfg.vol_model == "garch" and self.garch is not None and math.isfinite(self.garch_var):
            return self.garch_var, "garch"
        if self.count >= self.cfg.min_vol_obs:
            return self.ewma_var, "ewma"
        return math.nan, "none"

    def annual_vol(self) -> float:
        var, _ = self.variance()
        return math.sqrt(var * self.cfg.periods_per_year) if math.isfinite(var) and var > 0 else math.nan

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        g = self.garch
        return {
            "last_close": self.last_close,
            "count": self.count,
            "sumsq": self.sumsq,
            "ewma_var": None if math.isnan(self.ewma_var) else self.ewma_var,
            "garch": None if g is None else [g.omega, g.alpha, g.beta],
            "garch_var": None if math.isnan(self.garch_var) else self.garch_var,
            "since_fit": self.since_fit,
            "window": list(self.window),
        }

    @classmethod
    def from_snapshot(cls, cfg: RiskConfig, d: Mapping[str, Any]) -> VolTracker:
        t = cls(cfg)
        t.last_close = d["last_close"]
        t.count = int(d["count"])
        t.sumsq = float(d["sumsq"])
        t.ewma_var = math.nan if d["ewma_var"] is None else float(d["ewma_var"])
        t.garch = None if d["garch"] is None else GarchParams(*map(float, d["garch"]))
        t.garch_var = math.nan if d["garch_var"] is None else float(d["garch_var"])
        t.since_fit = int(d["since_fit"])
        t.window.extend(float(x) for x in d["window"])
        return t


class VolBook:
    """One ``VolTracker`` per symbol, created on first use; snapshots as one dict."""

    def __init__(self, cfg: RiskConfig) -> None:
        self.cfg = cfg
        self.trackers: dict[str, VolTracker] = {}

    def tracker(self, symbol: str) -> VolTracker:
        t = self.trackers.get(symbol)
        if t is None:
            t = self.trackers[symbol] = VolTracker(self.cfg)
        return t

    def reconfigure(self, cfg: RiskConfig) -> None:
        """Adopt changed settings (a runtime change, live or replayed): every tracker reads
        them from its next close on; a window keeps its newest ``vol_window`` returns.
        (``min_vol_obs`` is start-up only: ``tinywindow.risk.config.STARTUP_ONLY``.)"""
        self.cfg = cfg
        for t in self.trackers.values():
            t.cfg = cfg
            if t.window.maxlen != cfg.vol_window:
                t.window = deque(t.window, maxlen=cfg.vol_window)

    def snapshot(self) -> dict[str, Any]:
        return {s: t.snapshot() for s, t in sorted(self.trackers.items())}

    def restore(self, d: Mapping[str, Any]) -> None:
        self.trackers = {s: VolTracker.from_snapshot(self.cfg, v) for s, v in d.items()}
