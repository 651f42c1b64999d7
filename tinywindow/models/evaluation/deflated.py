"""The deflated Sharpe ratio (Bailey and Lopez de Prado, 2014): is a Sharpe ratio still
significant once you account for how many configurations were tried to find it?

All Sharpe ratios here are *per observation* (not annualised): SR = mean / std of the
strategy's returns; ``T`` is the number of returns.

* Probabilistic Sharpe ratio, the probability that the true SR exceeds ``sr_benchmark``::

      PSR(SR*) = Phi( (SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )

  with g3 the skewness and g4 the (non-excess) kurtosis of the returns (3 for normal).
* Expected maximum Sharpe ratio of N independent trials whose SRs have variance V and true
  mean 0 (the false-strategy theorem)::

      E[max SR_n] = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

  gamma the Euler-Mascheroni constant.  With one trial there is no selection: 0.
* DSR = PSR(E[max SR_n]): the probability that the strategy's true SR is above what the best
  of N skill-less trials would show.  DSR > 0.95 is the usual bar.

Inputs a caller cannot fix by trying again raise typed errors: ``DataError`` for returns that
cannot carry a Sharpe ratio (too few, non-finite, no variance), ``ConfigError`` for a trial
count below 1 or a negative variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from tinywindow.errors import ConfigError, DataError

EULER_GAMMA = 0.5772156649015329
MIN_OBSERVATIONS = 4  # skewness and kurtosis of fewer points mean nothing


def expected_max_sharpe(trials: int, sr_variance: float) -> float:
    """E[max] of ``trials`` per-observation Sharpe ratios with variance ``sr_variance`` and
    true mean 0 (0 for one trial: nothing was selected)."""
    if int(trials) != trials or trials < 1:
        raise ConfigError(f"the number of trials must be an integer >= 1, got {trials!r}", key="trials")
    if not math.isfinite(sr_variance) or sr_variance < 0:
        raise ConfigError(f"the variance of the trials' Sharpe ratios must be >= 0, got {sr_variance!r}", key="sr_variance")
    if trials == 1 or sr_variance == 0:
        return 0.0
    z1 = stats.norm.ppf(1.0 - 1.0 / trials)
    z2 = stats.norm.ppf(1.0 - 1.0 / (trials * math.e))
    return float(math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def probabilistic_sharpe(sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """PSR: P(true SR > ``sr_benchmark``) from an observed per-observation ``sr`` over
    ``n_obs`` returns with the given skewness and (non-excess) kurtosis."""
    if n_obs < MIN_OBSERVATIONS:
        raise DataError(f"a probabilistic Sharpe ratio needs >= {MIN_OBSERVATIONS} returns, got {n_obs}")
    if not all(math.isfinite(v) for v in (sr, sr_benchmark, skew, kurtosis)):
        raise DataError("Sharpe ratio, benchmark, skewness and kurtosis must be finite")
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not var > 0:
        raise DataError(
            f"the Sharpe ratio's estimated variance is not positive (1 - skew SR + (kurt - 1)/4 SR^2 = {var:.4g}): "
            "the returns are too skewed for the normal approximation"
        )
    return float(stats.norm.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var)))


@dataclass(frozen=True)
class Deflated:
    """The deflated Sharpe ratio of one return series and the numbers behind it."""

    sharpe: float  # per observation
    n_obs: int
    skew: float
    kurtosis: float  # non-excess (normal = 3)
    trials: int
    sr_variance: float  # of the trials' per-observation Sharpe ratios
    expected_max: float  # E[max SR] of the trials, per observation
    psr: float  # P(true SR > 0)
    dsr: float  # P(true SR > expected_max)

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def return_moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """(per-observation Sharpe, skewness, non-excess kurtosis, n) of ``returns``."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if len(r) < MIN_OBSERVATIONS:
        raise DataError(f"a deflated Sharpe ratio needs >= {MIN_OBSERVATIONS} returns, got {len(r)}")
    if not np.isfinite(r).all():
        bad = int(np.argmax(~np.isfinite(r)))
        raise DataError("returns must be finite", row=bad)
    sd = r.std(ddof=1)
    if not sd > 1e-12 * max(1.0, float(np.abs(r).max())):
        raise DataError("returns are constant: a Sharpe ratio needs some variance")
    skew = float(stats.skew(r, bias=False))
    kurt = float(stats.kurtosis(r, fisher=False, bias=False))
    return float(r.mean() / sd), skew, kurt, len(r)


def deflated_sharpe(returns: np.ndarray, trials: int, sr_variance: float) -> Deflated:
    """DSR of ``returns`` (one per period) selected as the best of ``trials`` configurations
    whose per-observation Sharpe ratios have variance ``sr_variance``."""
    sr, skew, kurt, n = return_moments(returns)
    emax = expected_max_sharpe(trials, sr_variance)
    return Deflated(
        sharpe=sr, n_obs=n, skew=skew, kurtosis=kurt, trials=int(trials), sr_variance=float(sr_variance),
        expected_max=emax,
        psr=probabilistic_sharpe(sr, 0.0, n, skew, kurt),
        dsr=probabilistic_sharpe(sr, emax, n, skew, kurt),
    )


def trial_sharpe_variance(annual_sharpes: list[float], periods: int = 252) -> float:
    """Variance of the trials' Sharpe ratios, per observation, from annualised ones (0 when
    fewer than two finite values: no dispersion can be measured)."""
    v = np.asarray([s for s in annual_sharpes if s is not None and math.isfinite(s)], dtype=np.float64)
    if len(v) < 2:
        return 0.0
    return float(np.var(v / math.sqrt(periods), ddof=1))
