"""Deflated Sharpe ratio: the paper's numerical example, an independent recomputation, and
hostile inputs (typed errors)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from tinywindow.errors import ConfigError, DataError
from tinywindow.models.evaluation.deflated import (
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    return_moments,
    trial_sharpe_variance,
)

pytestmark = pytest.mark.unit
N = NormalDist()
GAMMA = 0.5772156649015329


def test_paper_numerical_example() -> None:
    """Bailey & Lopez de Prado (2014), section 'A numerical example': annualised SR 2.5 over
    T = 1250 daily returns (250 a year), N = 100 trials with annualised V[SR_n] = 0.5, skew -3,
    kurtosis 10.  The paper reports E[max SR_n] ~ 0.1132 (per day) and DSR ~ 0.9004; to
    four decimals (the paper's precision) both agree."""
    sr = 2.5 / math.sqrt(250)
    emax = expected_max_sharpe(100, 0.5 / 250)
    assert emax == pytest.approx(0.1132, abs=5e-5)
    assert probabilistic_sharpe(sr, emax, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-5)


def test_matches_an_independent_recomputation() -> None:
    """The same formulas written out with the standard library's NormalDist (not scipy)."""
    rng = np.random.default_rng(3)
    r = 0.0005 + 0.01 * rng.standard_t(5, size=800)
    got = deflated_sharpe(r, trials=25, sr_variance=0.3 / 252)
    n = len(r)
    m, sd = r.mean(), r.std(ddof=1)
    sr = m / sd
    z = (r - m) / r.std(ddof=0)
    g3 = float(np.mean(z**3)) * math.sqrt(n * (n - 1)) / (n - 2)  # adjusted Fisher-Pearson
    g2 = float(np.mean(z**4)) - 3.0
    g4 = ((n + 1) * g2 + 6) * (n - 1) / ((n - 2) * (n - 3)) + 3.0  # unbiased excess + 3
    emax = math.sqrt(0.3 / 252) * ((1 - GAMMA) * N.inv_cdf(1 - 1 / 25) + GAMMA * N.inv_cdf(1 - 1 / (25 * math.e)))
    den = math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr * sr)
    assert got.sharpe == pytest.approx(sr, rel=1e-12)
    assert got.skew == pytest.approx(g3, rel=1e-9)
    assert got.kurtosis == pytest.approx(g4, rel=1e-9)
    assert got.expected_max == pytest.approx(emax, rel=1e-9)
    assert got.psr == pytest.approx(N.cdf(sr * math.sqrt(n - 1) / den), abs=1e-9)
    assert got.dsr == pytest.approx(N.cdf((sr - emax) * math.sqrt(n - 1) / den), abs=1e-9)
    assert got.dsr < got.psr  # selection among 25 trials deflates


def test_more_trials_deflate_more() -> None:
    r = 0.001 + 0.01 * np.random.default_rng(0).standard_normal(500)
    dsrs = [deflated_sharpe(r, n, 0.5 / 252).dsr for n in (1, 10, 100, 1000)]
    assert dsrs == sorted(dsrs, reverse=True) and dsrs[0] > dsrs[-1]


def test_one_trial_is_the_psr_against_zero() -> None:
    r = 0.001 + 0.01 * np.random.default_rng(1).standard_normal(300)
    d = deflated_sharpe(r, trials=1, sr_variance=0.5)
    assert d.expected_max == 0.0 and d.dsr == pytest.approx(d.psr)


@pytest.mark.parametrize("trials", [0, -3, 2.5])
def test_bad_trial_counts_are_config_errors(trials: float) -> None:
    with pytest.raises(ConfigError):
        expected_max_sharpe(trials, 0.1)  # type: ignore[arg-type]


def test_negative_variance_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        expected_max_sharpe(10, -0.1)


@pytest.mark.parametrize(
    "returns",
    [np.full(100, 0.001), np.zeros(50), np.array([0.01, -0.01, 0.02]), np.array([]), np.array([0.01, np.nan, 0.0, 0.02, 0.01])],
    ids=["constant", "zeros", "too-few", "empty", "nan"],
)
def test_returns_without_a_sharpe_ratio_are_data_errors(returns: np.ndarray) -> None:
    with pytest.raises(DataError):
        deflated_sharpe(returns, trials=10, sr_variance=0.1)


def test_too_skewed_for_the_approximation_is_a_data_error() -> None:
    with pytest.raises(DataError):
        probabilistic_sharpe(2.0, 0.0, 100, skew=5.0, kurtosis=3.0)


def test_moments_and_trial_variance() -> None:
    sr, skew, kurt, n = return_moments(np.array([0.01, -0.02, 0.03, 0.0, 0.01]))
    assert n == 5 and np.isfinite([sr, skew, kurt]).all()
    assert trial_sharpe_variance([1.0]) == 0.0
    assert trial_sharpe_variance([0.0, math.sqrt(252)]) == pytest.approx(0.5)
    assert trial_sharpe_variance([1.0, float("nan"), 2.0]) == pytest.approx(np.var([1, 2], ddof=1) / 252)
