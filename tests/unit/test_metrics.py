from __future__ import annotations

import empyrical as ep
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinywindow.backtest import metrics as m


def close(a: float, b: float) -> bool:
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    if np.isinf(a) or np.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def compare(r: np.ndarray) -> None:
    pairs = {
        "total_return": (m.total_return(r), ep.cum_returns_final(r)),
        "cagr": (m.cagr(r), ep.annual_return(r)),
        "volatility": (m.annual_volatility(r), ep.annual_volatility(r)),
        "sharpe": (m.sharpe(r), ep.sharpe_ratio(r)),
        "sortino": (m.sortino(r), ep.sortino_ratio(r)),
        "max_drawdown": (m.max_drawdown(r), ep.max_drawdown(r)),
        "calmar": (m.calmar(r), ep.calmar_ratio(r)),
        "downside": (m.downside_risk(r), ep.downside_risk(r)),
    }
    for name, (ours, theirs) in pairs.items():
        assert close(float(ours), float(theirs)), (name, ours, theirs)


def test_equal_to_empyrical_on_market_like_returns() -> None:
    rng = np.random.default_rng(11)
    for scale in (0.001, 0.01, 0.03):
        compare(rng.standard_t(4, 2520) * scale + 0.0003)
    r = rng.normal(0, 0.01, 500)
    r[[3, 50, 400]] = np.nan  # missing periods are skipped, as empyrical does
    compare(r)


def test_edge_cases_match_empyrical() -> None:
    compare(np.array([0.01]))
    compare(np.full(30, 0.002))  # zero dispersion: infinite Sharpe, no drawdown
    compare(np.zeros(30))
    compare(np.array([0.1, -0.5, 0.2, 0.0, -0.1]))
    compare(np.array([0.05, 0.02, 0.01]))  # never down: Calmar NaN


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-0.5, 0.5, allow_nan=False), min_size=2, max_size=300))
def test_equal_to_empyrical_on_any_returns(values: list[float]) -> None:
    compare(np.array(values))


def test_trade_metrics() -> None:
    pnls = [100.0, -50.0, 25.0, -25.0, 0.0]
    assert m.win_rate(pnls) == pytest.approx(0.4)
    assert m.profit_factor(pnls) == pytest.approx(125 / 75)
    assert m.profit_factor([5.0]) == float("inf")
    assert np.isnan(m.win_rate([])) and np.isnan(m.profit_factor([]))


def test_turnover_and_exposure() -> None:
    equity = np.full(252, 1_000_000.0)
    traded = np.zeros(252)
    traded[[0, 100, 200]] = [500_000, 1_000_000, 500_000]  # 2M traded in a year
    assert m.turnover(traded, equity) == pytest.approx(1.0)
    gross = np.zeros(252)
    gross[:63] = 500_000
    assert m.exposure_time(gross) == pytest.approx(0.25)
    assert m.average_exposure(gross, equity) == pytest.approx(0.125)


def test_summary_from_an_equity_curve() -> None:
    rng = np.random.default_rng(5)
    equity = 1e6 * np.cumprod(1 + rng.normal(0.0005, 0.01, 757))
    s = m.summarize(equity, trade_pnls=[1.0, -2.0, 3.0])
    r = equity[1:] / equity[:-1] - 1
    assert s.total_return == pytest.approx(equity[-1] / equity[0] - 1, rel=1e-12)
    assert s.sharpe == pytest.approx(ep.sharpe_ratio(r), rel=1e-9)
    assert s.cagr == pytest.approx(ep.annual_return(r), rel=1e-9)
    assert s.trades == 3 and s.win_rate == pytest.approx(2 / 3)
    assert set(s.as_dict()) >= {"calmar", "sortino", "turnover", "exposure_time"}
