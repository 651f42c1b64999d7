from __future__ import annotations

import time

import cvxpy as cp
import numpy as np
import pytest
from pydantic import ValidationError

from tinywindow.errors import ConfigError
from tinywindow.portfolio import (
    ConstraintError,
    ConstructionConfig,
    PortfolioConstructor,
    covariance,
    grinold_alpha,
    ledoit_wolf,
)
from tinywindow.portfolio import construction as construction_module

pytestmark = pytest.mark.unit

METHODS = ("mean_variance", "risk_parity", "score_tilt")


def factor_returns(n: int, t: int, seed: int = 0, vol: float = 0.015) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.normal(0, 0.01, (t, 3))
    loadings = rng.normal(0.8, 0.4, (3, n))
    idio = rng.normal(0, 1, (t, n)) * rng.uniform(0.5, 2.0, n) * vol
    return factors @ loadings + idio


def cfg_for(method: str, long_only: bool, **kw: object) -> ConstructionConfig:
    base: dict[str, object] = (
        dict(gross=1.0, net_min=0.5, net_max=1.0, max_weight=0.08)
        if long_only
        else dict(gross=2.0, net_min=-0.1, net_max=0.2, max_weight=0.08)
    )
    base.update(kw)
    return ConstructionConfig(method=method, long_only=long_only, **base)  # type: ignore[arg-type]


def assert_feasible(cfg: ConstructionConfig, w: np.ndarray, scale: float = 1.0) -> None:
    tol = 1e-6
    assert np.abs(w).sum() <= cfg.gross + tol
    assert scale * cfg.net_min - tol <= w.sum() <= scale * cfg.net_max + tol
    assert np.all(np.abs(w) <= cfg.max_weight + tol)
    if cfg.long_only:
        assert np.all(w >= 0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("long_only", [True, False])
def test_every_method_meets_every_constraint(method: str, long_only: bool) -> None:
    n = 40
    rng = np.random.default_rng(1)
    returns = factor_returns(n, 80)
    returns[:70, 3] = np.nan  # 10 rows of history < min_history: excluded
    returns[::3, 5] = np.nan  # missing but enough history: kept
    scores = rng.normal(size=n)
    scores[7] = np.nan
    prev = np.zeros(n)
    prev[7] = 0.05  # a held name that lost its view is sold
    for tp in (0.0, 1e-3):
        cfg = cfg_for(method, long_only, turnover_penalty=tp, vol_target=None)
        c = PortfolioConstructor(cfg).construct(scores, returns, prev)
        assert c.excluded == (3, 7)
        assert c.weights[3] == 0.0 and c.weights[7] == 0.0
        assert c.weights.dtype == np.float64 and c.weights.shape == (n,)
        assert_feasible(cfg, c.weights)
        assert np.abs(c.weights).sum() > 0.1  # not trivially zero
        assert c.turnover == pytest.approx(np.abs(c.weights - prev).sum())


@pytest.mark.parametrize("method", METHODS)
def test_pure_same_inputs_same_outputs(method: str) -> None:
    returns, scores = factor_returns(30, 60, seed=3), np.random.default_rng(3).normal(size=30)
    cfg = cfg_for(method, False, turnover_penalty=1e-3)
    pc = PortfolioConstructor(cfg)
    a = pc.construct(scores, returns)
    pc.construct(scores[::-1].copy(), returns)  # another bar in between
    b = pc.construct(scores, returns)
    c = PortfolioConstructor(cfg).construct(scores, returns)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.weights, c.weights)


def test_ledoit_wolf_matches_sklearn_and_pypfopt() -> None:
    import pandas as pd
    from pypfopt.risk_models import CovarianceShrinkage
    from sklearn.covariance import ledoit_wolf as sk_ledoit_wolf

    for n, t in ((30, 60), (200, 60), (10, 500)):
        x = factor_returns(n, t, seed=n)
        ours = covariance(x)
        ref, shrink = sk_ledoit_wolf(x)
        assert np.max(np.abs(ours - ref)) < 1e-10
        assert ledoit_wolf(x).shrinkage == pytest.approx(shrink, abs=1e-12)
    prices = pd.DataFrame(np.cumprod(1 + x, axis=0))
    peer = CovarianceShrinkage(prices, frequency=1).ledoit_wolf().to_numpy()
    assert np.max(np.abs(covariance(prices.pct_change().dropna().to_numpy()) - peer)) < 1e-10


def _pypfopt_weights(mu: np.ndarray, sigma: np.ndarray, cfg: ConstructionConfig) -> np.ndarray:
    from pypfopt import EfficientFrontier

    lo = 0.0 if cfg.long_only else -cfg.max_weight
    ef = EfficientFrontier(mu, sigma, weight_bounds=(lo, cfg.max_weight), solver="CLARABEL")
    if not cfg.long_only:
        ef.add_constraint(lambda w: cp.norm1(w) <= cfg.gross)
    ef.max_quadratic_utility(risk_aversion=cfg.risk_aversion, market_neutral=not cfg.long_only)
    return np.array(list(ef.clean_weights(cutoff=0, rounding=None).values()))


@pytest.mark.parametrize("long_only", [True, False])
def test_mean_variance_matches_pypfopt(long_only: bool) -> None:
    n = 30
    returns = factor_returns(n, 60, seed=5)
    scores = np.random.default_rng(5).normal(size=n)
    net = 1.0 if long_only else 0.0  # pypfopt: sum w = 1, or 0 when market neutral
    cfg = cfg_for("mean_variance", long_only, net_min=net, net_max=1.0 if long_only else 0.0,
                  max_weight=0.2, risk_aversion=50.0, alpha_ic=0.5, vol_target=None)
    ours = PortfolioConstructor(cfg).construct(scores, returns)
    sigma = covariance(returns)
    mu = grinold_alpha(scores, np.sqrt(np.diag(sigma)), cfg.alpha_ic)
    peer = _pypfopt_weights(mu, sigma, cfg)
    assert np.max(np.abs(ours.weights - peer)) < 1e-4
    assert 0 < np.sum(np.abs(ours.weights) >= cfg.max_weight - 1e-6) < n  # a mix of bound and interior


def test_mean_variance_prefers_the_low_vol_name() -> None:
    n = 20
    returns = factor_returns(n, 120, seed=7, vol=0.01)
    returns[:, 0] *= 0.5  # low vol
    returns[:, 1] *= 3.0  # high vol
    scores = np.zeros(n)
    scores[[0, 1]] = 2.0
    cfg = cfg_for("mean_variance", True, net_min=0.0, max_weight=0.5, risk_aversion=200.0, vol_target=None)
    w = PortfolioConstructor(cfg).construct(scores, returns).weights
    assert w[0] > 2 * w[1] + 0.02


@pytest.mark.parametrize("long_only", [True, False])
def test_score_tilt_is_monotone_in_score(long_only: bool) -> None:
    n = 50
    scores = np.random.default_rng(11).normal(size=n)
    cfg = cfg_for("score_tilt", long_only, top_fraction=0.3, max_weight=0.5, net_min=0.0, vol_target=None)
    c = PortfolioConstructor(cfg).construct(scores, factor_returns(n, 60))
    w = c.weights[np.argsort(scores)]
    assert np.all(np.diff(w) >= -1e-9)  # weakly monotone everywhere
    held = np.flatnonzero(w > 0)
    assert len(held) == 15
    assert np.all(np.diff(w[held]) > 0)  # strictly among the held longs
    if not long_only:
        assert np.sum(w < 0) == 15 and abs(w.sum()) < 1e-9  # dollar neutral


@pytest.mark.parametrize(("method", "penalty"), [("mean_variance", 1e-3), ("risk_parity", 0.03), ("score_tilt", 0.1)])
def test_turnover_penalty_reduces_turnover(method: str, penalty: float) -> None:
    n = 40
    returns = factor_returns(n, 60, seed=13)
    scores = np.random.default_rng(13).normal(size=n)
    prev = np.zeros(n)
    prev[:10] = 0.06  # a feasible book (net 0.6)
    turnover = {
        tp: PortfolioConstructor(cfg_for(method, True, vol_target=None, turnover_penalty=tp))
        .construct(scores, returns, prev).turnover
        for tp in (0.0, penalty, 10.0)
    }
    assert turnover[0.0] > 0.5
    assert 0.05 < turnover[penalty] < 0.8 * turnover[0.0]
    assert turnover[10.0] < 1e-6  # prev is feasible: it stays put


def test_vol_target_scales_down() -> None:
    n = 40
    returns = factor_returns(n, 60, seed=17, vol=0.04)  # high vol
    scores = np.random.default_rng(17).normal(size=n)
    for method in METHODS:
        cfg = cfg_for(method, True, vol_target=0.10)
        c = PortfolioConstructor(cfg).construct(scores, returns)
        unscaled = PortfolioConstructor(cfg.model_copy(update={"vol_target": None})).construct(scores, returns)
        assert c.scale < 1
        assert c.ex_ante_vol <= cfg.vol_target + 1e-9  # type: ignore[operator]
        sigma = covariance(returns[:, [i for i in range(n) if i not in c.excluded]])
        assert c.ex_ante_vol == pytest.approx(np.sqrt(c.weights @ sigma @ c.weights * 252), rel=1e-9)
        assert unscaled.ex_ante_vol == pytest.approx(c.ex_ante_vol / c.scale, rel=1e-9)
        assert np.allclose(c.weights, unscaled.weights * c.scale, atol=1e-12)
        assert_feasible(cfg, c.weights, c.scale)


@pytest.mark.parametrize("n", [10, 100])
def test_risk_parity_equal_contributions(n: int) -> None:
    returns = factor_returns(n, 60, seed=19)
    cfg = cfg_for("risk_parity", True, max_weight=1.0, net_min=1.0, vol_target=None)
    c = PortfolioConstructor(cfg).construct(np.random.default_rng(19).normal(size=n), returns)
    w = c.weights
    rc = w * (covariance(returns) @ w)
    assert w.sum() == pytest.approx(1.0)
    assert np.max(np.abs(rc / rc.mean() - 1)) < 1e-3


def test_risk_parity_long_short_signs_and_contributions() -> None:
    n = 20
    returns = factor_returns(n, 60, seed=23)
    scores = np.random.default_rng(23).normal(size=n)
    cfg = cfg_for("risk_parity", False, max_weight=1.0, net_min=-2.0, net_max=2.0, vol_target=None)
    w = PortfolioConstructor(cfg).construct(scores, returns).weights
    assert np.all(np.sign(w) == np.where(scores < 0, -1, 1))
    rc = w * (covariance(returns) @ w)
    assert np.max(np.abs(rc / rc.mean() - 1)) < 1e-3


def test_analytic_infeasibility_names_the_keys() -> None:
    returns, scores = factor_returns(50, 60), np.ones(50)
    for method in METHODS:
        cfg = cfg_for(method, True, max_weight=0.01, net_min=0.9)
        with pytest.raises(ConstraintError) as err:
            PortfolioConstructor(cfg).construct(scores, returns)
        for key in ("long_only", "max_weight", "net_min"):
            assert key in str(err.value) and key in err.value.constraints
        assert "0.50 < net_min 0.9" in str(err.value)
    cfg = cfg_for("mean_variance", False, max_weight=0.01, net_min=-1.0, net_max=-0.6)
    with pytest.raises(ConstraintError) as err:
        PortfolioConstructor(cfg).construct(scores, returns)
    assert set(err.value.constraints) == {"max_weight", "net_max"}
    assert isinstance(err.value, ConfigError)


def test_solver_infeasibility_names_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(construction_module, "_check_feasible", lambda cfg, n: None)
    cfg = cfg_for("mean_variance", True, max_weight=0.01, net_min=0.9)
    with pytest.raises(ConstraintError) as err:
        PortfolioConstructor(cfg).construct(np.ones(50), factor_returns(50, 60))
    assert "infeasible" in str(err.value)
    for key in ("gross", "net_min", "net_max", "max_weight", "long_only"):
        assert key in str(err.value) and key in err.value.constraints


def test_no_views_is_all_zero_not_an_error() -> None:
    c = PortfolioConstructor(cfg_for("mean_variance", True)).construct(
        np.full(5, np.nan), factor_returns(5, 60), np.full(5, 0.1))
    assert c.status == "no_views" and np.all(c.weights == 0) and c.excluded == (0, 1, 2, 3, 4)
    assert c.turnover == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        (dict(net_min=0.5, net_max=0.2), "net_min <= portfolio.construction.net_max"),
        (dict(net_min=1.5, net_max=2.0, gross=1.0), "net_min"),
        (dict(long_only=False, net_min=-3.0, net_max=-2.0, gross=1.0), "net_max"),
        (dict(long_only=True, net_min=-0.5, net_max=0.0), "net_max"),
        (dict(long_only=False, top_fraction=0.6, net_min=-1.0), "top_fraction"),
        (dict(min_history=100, lookback=60), "min_history"),
    ],
)
def test_config_validation(kw: dict[str, object], key: str) -> None:
    with pytest.raises((ValidationError, ConfigError)) as err:
        ConstructionConfig(**kw)  # type: ignore[arg-type]
    assert key in str(err.value)


def test_500_names_warm_rebalance_under_a_second() -> None:
    n = 500
    returns = factor_returns(n, 60, seed=29)
    rng = np.random.default_rng(29)
    cfg = cfg_for("mean_variance", False, max_weight=0.02, turnover_penalty=1e-3)
    pc = PortfolioConstructor(cfg)
    prev = pc.construct(rng.normal(size=n), returns).weights
    t0 = time.perf_counter()
    c = pc.construct(rng.normal(size=n), returns, prev)
    assert time.perf_counter() - t0 < 1.0
    assert c.status == "optimal"
