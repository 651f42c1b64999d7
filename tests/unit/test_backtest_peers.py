"""Accounting cross-checks against independent peers: backtesting.py on GOOG, backtrader."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from tinywindow.backtest.metrics import win_rate
from tinywindow.backtest.simulator import (
    simulate_targets,
    sma_crossover_actions,
    stop_and_reverse_targets,
)
from tinywindow.config import PortfolioConfig, RiskConfig
from tinywindow.data.sources.synthetic import generate_panel
from tinywindow.execution.costs import Commission, Slippage
from tinywindow.execution.engine import BarRow, TradingEngine

CASH = 100_000.0
QTY = 50  # shares per side: stop-and-reverse between +50 and -50
RATE = 0.001  # 10 bps commission on every fill
NO_LIMITS = RiskConfig(
    max_position=1.0, max_gross=100.0, max_net=100.0, max_order_notional_usd=1e12, collar=1.0,
    confidence_floor=0.0, max_weight=1.0, reduce_drawdown=1.0, halt_drawdown=1.0, resume_drawdown=0.5,
    vol_model="ewma",
)


@pytest.fixture(scope="module")
def goog() -> pd.DataFrame:
    from backtesting.test import GOOG

    return GOOG.copy()


def backtesting_py(df: pd.DataFrame, targets: np.ndarray) -> pd.Series:
    from backtesting import Backtest, Strategy

    class Targets(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            t = targets[len(self.data) - 1]
            if np.isfinite(t):
                delta = int(t - self.position.size)
                if delta > 0:
                    self.buy(size=delta)
                elif delta < 0:
                    self.sell(size=-delta)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(df, Targets, cash=CASH, commission=RATE, finalize_trades=False).run()


def test_sma_crossover_on_goog_matches_backtesting_py(goog: pd.DataFrame) -> None:
    close, open_ = goog["Close"].to_numpy(), goog["Open"].to_numpy()
    actions = sma_crossover_actions(close, 10, 20)
    targets = stop_and_reverse_targets(actions, QTY)
    stats = backtesting_py(goog, targets)
    their_final = float(stats["Equity Final [$]"])
    their_curve = stats["_equity_curve"]["Equity"].to_numpy()
    their_pnl = stats["_trades"]["PnL"].to_numpy()

    # our event-driven portfolio: engine + PaperBroker, bar by bar
    eng = TradingEngine(NO_LIMITS, PortfolioConfig(initial_cash_usd=CASH, commission_bps=RATE * 1e4, slippage_bps=0))
    ts = goog.index.tz_localize("America/New_York").tz_convert("UTC").as_unit("ns").asi8
    for i in range(len(goog)):
        eng.on_bars([BarRow("GOOG", int(ts[i]), float(open_[i]), float(close[i]))])
        if np.isfinite(targets[i]):
            eng.rebalance({"GOOG": int(targets[i])}, int(ts[i]))
    ours = float(eng.portfolio.equity())
    assert ours == pytest.approx(their_final, rel=1e-9)
    np.testing.assert_allclose([float(e) for _, e in eng.equity_curve], their_curve, rtol=1e-9)
    assert len(eng.portfolio.trade_pnls) == stats["# Trades"] == len(their_pnl) > 50
    np.testing.assert_allclose([float(p) for p in eng.portfolio.trade_pnls], their_pnl, rtol=1e-9)
    assert win_rate([float(p) for p in eng.portfolio.trade_pnls]) * 100 == pytest.approx(stats["Win Rate [%]"])

    # our vectorised simulator on the same signals
    vec = simulate_targets(open_[:, None], close[:, None], targets[:, None], initial_cash=CASH,
                           commission=Commission(rate=RATE))
    assert vec.equity[-1] == pytest.approx(their_final, rel=1e-9)
    assert vec.closed_trades == stats["# Trades"]
    np.testing.assert_allclose(vec.trade_pnls(), their_pnl, rtol=1e-9)


def test_backtrader_agrees_with_slippage_and_commission() -> None:
    import backtrader as bt

    panel = generate_panel(1, 1000, seed=9)
    o, h, low, c = (panel[k][:, 0] for k in ("open", "high", "low", "close"))
    targets = stop_and_reverse_targets(sma_crossover_actions(c, 10, 30), 100)
    idx = pd.date_range("2015-01-01", periods=len(c), freq="B")
    df = pd.DataFrame({"open": o, "high": h, "low": low, "close": c, "volume": 1e6}, index=idx)

    class Targets(bt.Strategy):  # type: ignore[misc]
        def next(self) -> None:
            t = targets[len(self.data) - 1]
            if np.isfinite(t):
                self.order_target_size(target=float(t))

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(Targets)
    cerebro.broker.setcash(1e6)
    cerebro.broker.setcommission(commission=RATE)
    # slip_match + slip_out: a slipped open beyond the bar's high/low still fills there (as ours)
    cerebro.broker.set_slippage_perc(0.0005, slip_open=True, slip_limit=True, slip_match=True, slip_out=True)
    cerebro.run()
    theirs = cerebro.broker.getvalue()

    vec = simulate_targets(o[:, None], c[:, None], targets[:, None], initial_cash=1e6,
                           commission=Commission(rate=RATE), slippage=Slippage(bps=5.0))
    assert vec.equity[-1] == pytest.approx(theirs, rel=1e-9)
    assert vec.n_fills > 20
