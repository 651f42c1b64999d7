"""Backtest speed and accounting agreement: TinyWindow's vectorised simulator vs backtrader and
vectorbt on the same signals with the same costs, plus backtesting.py on GOOG.

Signals: SMA(10) / SMA(30) crossover, stop-and-reverse between +Q and -Q shares per symbol
(Q ~ $10k at the first close), decided at a close, filled at the next open.  Costs: 10 bps
commission on every fill, 5 bps slippage against the trader.  Every symbol is its own
account with $1M (vectorbt columns, one Cerebro per symbol), so no peer ever clips an order
for cash and the accounts stay comparable.  On GOOG (for backtesting.py,
which models spread on entries only) slippage is 0.

Timing: one run each, wall clock, signals precomputed and shared.  vectorbt's numba
functions are compiled on a tiny input first (compilation is not counted); TinyWindow gets
the same warm-up.  backtrader is timed over every symbol unless ``--bt-symbols`` limits it
(then its time is scaled up linearly and the table says so).

    .venv/bin/python bench/backtest.py [--symbols 500] [--bars 2520]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tinywindow.backtest.simulator import (
    simulate_targets,
    simulate_weights,
    sma_crossover_actions,
    stop_and_reverse_targets,
)
from tinywindow.config import PortfolioConfig, RiskConfig
from tinywindow.execution.costs import Commission, Slippage
from tinywindow.execution.engine import BarRow, TradingEngine

FAST, SLOW = 10, 30
RATE, SLIP = 0.001, 0.0005
CASH = 1_000_000.0  # per symbol: trends of 20x in ten years never run a column out of cash
GOOG_CASH = 100_000.0
NOTIONAL = 10_000.0


def panel_data(n: int, t: int, seed: int) -> tuple[dict[str, np.ndarray], str]:
    try:
        from tinywindow.data.sources.synthetic import generate_panel

        return generate_panel(n, t, seed), "tinywindow.data.sources.synthetic (regime-switching factor model)"
    except ImportError:  # pragma: no cover - the data layer is part of the repo now
        rng = np.random.default_rng(seed)
        r = rng.normal(0.0003, 0.015, (t, n))
        close = rng.uniform(10, 500, n) * np.exp(np.cumsum(r, axis=0))
        open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, 0.003, (t, n)))
        hi, lo = np.maximum(open_, close) * 1.005, np.minimum(open_, close) * 0.995
        return {"open": open_, "high": hi, "low": lo, "close": close, "volume": np.full((t, n), 1e6)}, "own GBM"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# --------------------------------------------------------------------------- runners


def ours(o: np.ndarray, c: np.ndarray, tgt: np.ndarray, slip: float, cash: float = CASH) -> np.ndarray:
    res = simulate_targets(o, c, tgt, initial_cash=cash * c.shape[1], commission=Commission(rate=RATE),
                           slippage=Slippage(bps=slip * 1e4))
    return cash + res.column_pnl  # per-symbol account equity [T, N]


def vectorbt_run(o: np.ndarray, c: np.ndarray, tgt: np.ndarray, slip: float, cash: float = CASH) -> np.ndarray:
    import vectorbt as vbt

    idx = pd.date_range("2000-01-03", periods=c.shape[0], freq="B")
    size = np.vstack([np.full((1, c.shape[1]), np.nan), tgt[:-1]])  # decided at t-1, filled at t
    pf = vbt.Portfolio.from_orders(
        pd.DataFrame(c, index=idx), size=pd.DataFrame(size, index=idx), size_type="targetamount",
        price=pd.DataFrame(o, index=idx), fees=RATE, slippage=slip, init_cash=cash, freq="1D",
    )
    return pf.value().to_numpy()


def backtrader_run(
    ohlc: dict[str, np.ndarray], tgt: np.ndarray, slip: float, cols: list[int], cash: float = CASH
) -> np.ndarray:
    import backtrader as bt

    idx = pd.date_range("2000-01-03", periods=tgt.shape[0], freq="B")
    finals = []
    for n in cols:
        df = pd.DataFrame({k: ohlc[k][:, n] for k in ("open", "high", "low", "close")}, index=idx)
        df["volume"] = 1e6
        col = tgt[:, n]

        class Targets(bt.Strategy):  # type: ignore[misc]
            def next(self, col: np.ndarray = col) -> None:
                t = col[len(self.data) - 1]
                if t == t:
                    self.order_target_size(target=float(t))

        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=df))
        cerebro.addstrategy(Targets)
        cerebro.broker.setcash(cash)
        cerebro.broker.setcommission(commission=RATE)
        if slip:
            # slip_match + slip_out: a slipped open beyond the bar's high/low still fills there (as ours)
            cerebro.broker.set_slippage_perc(slip, slip_open=True, slip_limit=True, slip_match=True, slip_out=True)
        cerebro.run()
        finals.append(cerebro.broker.getvalue())
    return np.array(finals)


def backtesting_py_run(df: pd.DataFrame, tgt: np.ndarray) -> pd.Series:
    from backtesting import Backtest, Strategy

    class Targets(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            t = tgt[len(self.data) - 1]
            if t == t:
                d = int(t - self.position.size)
                if d > 0:
                    self.buy(size=d)
                elif d < 0:
                    self.sell(size=-d)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(df, Targets, cash=GOOG_CASH, commission=RATE, finalize_trades=False).run()


def event_engine_run(df: pd.DataFrame, tgt: np.ndarray) -> TradingEngine:
    risk = RiskConfig(max_position=1.0, max_gross=100.0, max_net=100.0, max_order_notional_usd=1e12, collar=1.0,
                      confidence_floor=0.0, max_weight=1.0, reduce_drawdown=1.0, halt_drawdown=1.0,
                      resume_drawdown=0.5, vol_model="ewma")
    eng = TradingEngine(risk, PortfolioConfig(initial_cash_usd=GOOG_CASH, commission_bps=RATE * 1e4, slippage_bps=0))
    ts = df.index.as_unit("ns").asi8
    o, c = df["Open"].to_numpy(), df["Close"].to_numpy()
    for i in range(len(df)):
        eng.on_bars([BarRow("GOOG", int(ts[i]), float(o[i]), float(c[i]))])
        if tgt[i] == tgt[i]:
            eng.rebalance({"GOOG": int(tgt[i])}, int(ts[i]))
    return eng


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1.0)))


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bt-symbols", type=int, default=0, help="backtrader on the first N symbols (0: all)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    data, source = panel_data(args.symbols, args.bars, args.seed)
    o, c = data["open"], data["close"]
    qty = np.floor(NOTIONAL / c[0])
    tgt = stop_and_reverse_targets(sma_crossover_actions(c, FAST, SLOW), qty)
    n_orders = int(np.isfinite(tgt).sum())

    # warm-up (imports, numba compilation) on a tiny slice for everyone who needs it
    for cols in (slice(0, 2), slice(0, 1)):
        small = (o[:100, cols], c[:100, cols], tgt[:100, cols])
        for slip in (SLIP, 0.0):
            ours(*small, slip)
            vectorbt_run(*small, slip)

    eq_ours, t_ours = timed(lambda: ours(o, c, tgt, SLIP))
    w = np.where(np.isfinite(tgt), np.sign(tgt) * 0.1, np.nan)
    _, t_weights = timed(lambda: simulate_weights(o, c, w, initial_cash=CASH * c.shape[1],
                                                  commission=Commission(rate=RATE), slippage=Slippage(bps=SLIP * 1e4)))
    eq_vbt, t_vbt = timed(lambda: vectorbt_run(o, c, tgt, SLIP))
    bt_cols = list(range(args.bt_symbols or args.symbols))
    fin_bt, t_bt_run = timed(lambda: backtrader_run(data, tgt, SLIP, bt_cols))
    t_bt = t_bt_run * args.symbols / len(bt_cols)
    err_vbt = rel_err(eq_ours, eq_vbt)
    err_bt = rel_err(eq_ours[-1, bt_cols], fin_bt)

    # GOOG: backtesting.py (accounting cross-check), backtrader, vectorbt
    from backtesting.test import GOOG

    goog = GOOG.copy()
    go, gc = goog["Open"].to_numpy()[:, None], goog["Close"].to_numpy()[:, None]
    gtgt = stop_and_reverse_targets(sma_crossover_actions(gc, FAST, SLOW), 50.0)
    g_ours, tg_ours = timed(lambda: ours(go, gc, gtgt, 0.0, GOOG_CASH))
    g_stats, tg_bpy = timed(lambda: backtesting_py_run(goog, gtgt[:, 0]))
    g_eng, tg_eng = timed(lambda: event_engine_run(goog, gtgt[:, 0]))
    g_vbt, tg_vbt = timed(lambda: vectorbt_run(go, gc, gtgt, 0.0, GOOG_CASH))
    g_bt, tg_bt = timed(lambda: backtrader_run({"open": go, "high": goog["High"].to_numpy()[:, None],
                                                 "low": goog["Low"].to_numpy()[:, None], "close": gc},
                                                gtgt, 0.0, [0], GOOG_CASH))
    bpy_final = float(g_stats["Equity Final [$]"])
    err_bpy_vec = abs(g_ours[-1, 0] / bpy_final - 1)
    err_bpy_eng = abs(float(g_eng.portfolio.equity()) / bpy_final - 1)
    trades_ok = len(g_eng.portfolio.trade_pnls) == int(g_stats["# Trades"])

    cells = args.symbols * args.bars
    print(f"Backtest: {args.symbols} symbols x {args.bars} daily bars ({source}, seed {args.seed}), "
          f"SMA({FAST}/{SLOW}) stop-and-reverse, {n_orders} orders, 10 bps fees + 5 bps slippage")
    print(f"{'engine':<34} {'seconds':>9} {'M bar-symbols/s':>16} {'x our time':>11} {'max equity rel err':>19}")
    print("-" * 93)
    rows = [
        ("tinywindow vectorised (targets)", t_ours, 1.0, 0.0),
        ("tinywindow loop (weights; info)", t_weights, t_weights / t_ours, float("nan")),
        ("vectorbt 1.x from_orders", t_vbt, t_vbt / t_ours, err_vbt),
        (f"backtrader ({len(bt_cols)} cerebros{'' if len(bt_cols) == args.symbols else ', scaled'})",
         t_bt, t_bt / t_ours, err_bt),
    ]
    for name, secs, ratio, err in rows:
        print(f"{name:<34} {secs:>9.3f} {cells / secs / 1e6:>16.2f} {ratio:>11.1f} {err:>19.2e}")
    print()
    print(f"GOOG {len(goog)} bars, SMA({FAST}/{SLOW}) +-50 shares, 10 bps commission, no slippage; "
          f"{int(g_stats['# Trades'])} trades (ours {len(g_eng.portfolio.trade_pnls)})")
    print(f"{'engine':<34} {'seconds':>9} {'x our time':>11} {'final equity':>16} {'rel err vs ours':>16}")
    print("-" * 90)
    for name, secs, fin in [
        ("tinywindow vectorised", tg_ours, g_ours[-1, 0]),
        ("tinywindow event engine (Decimal)", tg_eng, float(g_eng.portfolio.equity())),
        ("backtesting.py", tg_bpy, bpy_final),
        ("vectorbt", tg_vbt, float(g_vbt[-1, 0])),
        ("backtrader", tg_bt, float(g_bt[0])),
    ]:
        print(f"{name:<34} {secs:>9.4f} {secs / tg_ours:>11.1f} {fin:>16.6f} {abs(fin / g_ours[-1, 0] - 1):>16.2e}")
    print(f"equity vs backtesting.py: vectorised {err_bpy_vec:.2e}, event engine {err_bpy_eng:.2e}; "
          f"same trade count: {trades_ok}")
    print(json.dumps({
        "vs_backtrader": round(t_bt / t_ours, 1),
        "vs_vectorbt": round(t_vbt / t_ours, 2),
        "equity_rel_err_vs_backtesting_py": float(f"{max(err_bpy_vec, err_bpy_eng):.3e}"),
    }))


if __name__ == "__main__":
    main()
