"""The vectorised simulator and the event-driven engine run the same rules: cross-checked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinywindow.backtest.simulator import (
    simulate_targets,
    simulate_weights,
    sma_crossover_actions,
    stop_and_reverse_targets,
)
from tinywindow.config import PortfolioConfig, RiskConfig
from tinywindow.data.sources.synthetic import generate_panel
from tinywindow.errors import DataError
from tinywindow.execution.costs import Commission, Slippage
from tinywindow.execution.engine import BarRow, SignalRow, TradingEngine
from tinywindow.risk.checks import target_weights
from tinywindow.risk.volatility import ewma_variance_panel

DAY = 86_400 * 10**9
COMM = Commission.from_bps(10.0, per_share=0.002, minimum=0.5)
SLIP = Slippage(bps=5.0)
LOOSE = dict(
    max_position=1.0, max_gross=100.0, max_net=100.0, max_order_notional_usd=1e12, confidence_floor=0.0,
    max_weight=1.0, reduce_drawdown=1.0, halt_drawdown=1.0, resume_drawdown=0.5, vol_model="ewma",
)


@pytest.fixture(scope="module")
def panel() -> dict[str, np.ndarray]:
    return generate_panel(4, 400, seed=3)


def test_bad_prices_are_rejected_with_their_place() -> None:
    o = np.ones((3, 2))
    c = np.ones((3, 2))
    c[2, 1] = np.nan
    with pytest.raises(DataError, match="bar 2, symbol 1"):
        simulate_targets(o, c, np.zeros((3, 2)), initial_cash=1.0)


def test_loop_free_path_equals_the_loop(panel: dict[str, np.ndarray]) -> None:
    o, c = panel["open"], panel["close"]
    tgt = stop_and_reverse_targets(sma_crossover_actions(c, 5, 20), np.array([10, 20, 30, 40]))
    fast = simulate_targets(o, c, tgt, initial_cash=1e6, commission=COMM, slippage=SLIP)
    loop = simulate_targets(o, c, tgt, initial_cash=1e6, commission=COMM, slippage=SLIP, collar=100.0)
    np.testing.assert_allclose(fast.equity, loop.equity, rtol=1e-12)
    np.testing.assert_array_equal(fast.position, loop.position)
    assert fast.closed_trades == loop.closed_trades > 10
    assert fast.n_fills == loop.n_fills and loop.expired == 0
    np.testing.assert_allclose(fast.trade_pnls(), loop.trade_pnls(), rtol=1e-9)
    # P&L by symbol adds up to the book
    np.testing.assert_allclose(fast.column_pnl.sum(axis=1) + 1e6, fast.equity, rtol=1e-12)


def run_engine_targets(o: np.ndarray, c: np.ndarray, tgt: np.ndarray, collar: float) -> TradingEngine:
    risk = RiskConfig(collar=collar, **LOOSE)  # type: ignore[arg-type]
    port = PortfolioConfig(initial_cash_usd=1e6, commission_bps=10.0, commission_per_share_usd=0.002,
                           commission_min_usd=0.5, slippage_bps=5.0)
    eng = TradingEngine(risk, port)
    syms = [f"S{i}" for i in range(c.shape[1])]
    for t in range(c.shape[0]):
        ts = (t + 1) * DAY
        eng.on_bars([BarRow(s, ts, float(o[t, i]), float(c[t, i])) for i, s in enumerate(syms)])
        targets = {s: float(tgt[t, i]) for i, s in enumerate(syms) if np.isfinite(tgt[t, i])}
        if targets:
            eng.rebalance(targets, ts)
    return eng


def test_event_engine_equals_vectorised_on_targets_with_collar(panel: dict[str, np.ndarray]) -> None:
    o, c = panel["open"], panel["close"]
    tgt = stop_and_reverse_targets(sma_crossover_actions(c, 5, 20), np.array([10, 20, 30, 40]))
    collar = 0.006  # tight: some gapped opens expire
    vec = simulate_targets(o, c, tgt, initial_cash=1e6, commission=COMM, slippage=SLIP, collar=collar)
    eng = run_engine_targets(o, c, tgt, collar)
    curve = np.array([float(e) for _, e in eng.equity_curve])
    np.testing.assert_allclose(curve, vec.equity, rtol=1e-9)
    assert vec.expired > 0
    n_expired = sum(1 for e in eng.risk_events if e.reason == "PRICE_COLLAR")
    assert n_expired == 0  # collar expiries are broker events, not risk denials
    assert len(eng.portfolio.trade_pnls) == vec.closed_trades
    ours = sorted(float(x) for x in eng.portfolio.trade_pnls)  # engine: by time; vec: by symbol
    np.testing.assert_allclose(ours, sorted(vec.trade_pnls()), rtol=1e-9)
    assert float(eng.portfolio.fees) == pytest.approx(vec.fees.sum(), rel=1e-9)
    final_pos = [float(eng.portfolio.qty(f"S{i}")) for i in range(4)]
    np.testing.assert_array_equal(final_pos, vec.position[-1])


def test_event_engine_equals_vectorised_on_vol_targeted_signals(panel: dict[str, np.ndarray]) -> None:
    o, c = panel["open"], panel["close"]
    t_len, n = c.shape
    regime = np.where(c > np.nan_to_num(  # long above the 20-bar mean, short below
        np.vstack([np.full((19, n), np.inf), np.lib.stride_tricks.sliding_window_view(c, 20, axis=0).mean(axis=2)])
    ), 1, -1)
    rng = np.random.default_rng(1)
    actions = np.where(rng.random((t_len, n)) < 0.3, 0, regime).astype(np.int8)  # some holds
    risk = RiskConfig(collar=0.05, min_vol_obs=10, target_vol=0.2, **{**LOOSE, "max_weight": 0.3})  # type: ignore[arg-type]
    rets = np.vstack([np.full((1, n), np.nan), np.log(c[1:] / c[:-1])])
    vol = np.sqrt(ewma_variance_panel(rets, risk.ewma_lambda, risk.min_vol_obs) * 252)
    weights = target_weights(actions, vol, risk)
    vec = simulate_weights(o, c, weights, initial_cash=1e6, commission=COMM, slippage=SLIP, collar=0.05, lot=1.0)

    port = PortfolioConfig(initial_cash_usd=1e6, commission_bps=10.0, commission_per_share_usd=0.002,
                           commission_min_usd=0.5, slippage_bps=5.0)
    eng = TradingEngine(risk, port)
    syms = [f"S{i}" for i in range(n)]
    for t in range(t_len):
        ts = (t + 1) * DAY
        eng.on_bars([BarRow(s, ts, float(o[t, i]), float(c[t, i])) for i, s in enumerate(syms)])
        eng.apply_signals([SignalRow(s, ts, int(actions[t, i]), 0.9) for i, s in enumerate(syms)])
    curve = np.array([float(e) for _, e in eng.equity_curve])
    np.testing.assert_allclose(curve, vec.equity, rtol=1e-9)
    assert vec.n_fills > 500  # rebalanced nearly every bar
    assert len(eng.portfolio.trade_pnls) == vec.closed_trades
    no_vol = [e for e in eng.risk_events if e.reason == "NO_VOLATILITY"]
    assert no_vol and all(e.ts <= 11 * DAY for e in no_vol)  # warm-up only


def test_cli_backtest_reproduces_the_cross_checked_goog_run(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tinywindow.cli import main

    argv = ["--set", "portfolio.commission_bps=10", "--set", "portfolio.slippage_bps=0",
            "--set", "portfolio.initial_cash_usd=100000",
            "backtest", "sma", "--source", "goog", "--qty", "50", "--fast", "10", "--slow", "20", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the final equity and trade count backtesting.py gives for the same run (test_backtest_peers)
    assert out["final_equity"] == pytest.approx(158561.571, rel=1e-9) and out["trades"] == 93
    assert -1 < out["max_drawdown"] < 0 and 0 <= out["win_rate"] <= 1


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 40).flatmap(lambda t: st.integers(1, 4).flatmap(lambda n: st.tuples(
        st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=t * n, max_size=t * n),
        st.lists(st.floats(0.5, 2.0), min_size=t * n, max_size=t * n),
        st.just((t, n)),
    ))),
    st.floats(0, 50), st.floats(0, 30),
)
def test_sparse_path_equals_the_loop_on_any_targets(data: tuple, fee_bps: float, slip_bps: float) -> None:
    raw, moves, (t, n) = data
    tgt = np.array([np.nan if v is None else float(v) for v in raw]).reshape(t, n)
    close = 100 * np.cumprod(np.array(moves).reshape(t, n), axis=0)
    open_ = close * 0.99
    kw = dict(initial_cash=1e5, commission=Commission.from_bps(fee_bps, minimum=0.1), slippage=Slippage(slip_bps))
    fast = simulate_targets(open_, close, tgt, **kw)  # type: ignore[arg-type]
    loop = simulate_targets(open_, close, tgt, collar=1e9, **kw)  # type: ignore[arg-type]
    # the two paths sum the same cash flows in different orders: equal to 1e-12 relative, or to
    # 1e-6 absolute (1e-11 of the capital) where a book has lost nearly everything
    np.testing.assert_allclose(fast.equity, loop.equity, rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(fast.cash, loop.cash, rtol=1e-12, atol=1e-6)
    np.testing.assert_array_equal(fast.position, loop.position)
    np.testing.assert_array_equal(fast.fill_qty, loop.fill_qty)
    np.testing.assert_allclose(fast.column_pnl, loop.column_pnl, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(fast.gross, loop.gross, rtol=1e-12, atol=1e-6)
    assert fast.closed_trades == loop.closed_trades
