"""Event engine throughput: TinyWindow's ``TradingEngine`` vs backtrader on the same orders.

The product trades through the event engine (``tinywindow.execution.engine.TradingEngine``:
risk checks, exact ``Decimal`` accounting, typed events, paper broker), not through the
vectorised simulator; ``bench/backtest.py`` measures that one and it stays out of here.

Signals: SMA(10) / SMA(30) on each symbol's closes, as the consensus hands them to the
PortfolioActor: every symbol gets one SIGNALS row per bar with ``action`` = the target
exposure, +1 while the fast SMA is above the slow one, -1 below (stop-and-reverse), 0 until
both exist.  The engine sizes each target by volatility (EWMA) and equity, checks risk and
sends the difference; the paper broker fills at the next open with 5 bps slippage and
10 bps commission.  One account of $1M over every symbol (``max_weight`` = 1 / symbols, so
the book's gross stays near 1).

The per-bar calls are the PortfolioActor's: ``engine.on_bars(rows)`` then
``engine.apply_signals(rows)``, one pair per timestamp with every symbol's row, rows built
beforehand (``BarRow``/``SignalRow``, what ``tables.bar_rows``/``signal_rows`` return).  The
journal is off (``on_commit`` unset): the PortfolioActor adds the journal append (codec +
sign + encrypt each call's events) and the Arrow conversions; ``--journal-bars`` measures
that through a real in-process ``PortfolioActor`` on a slice.

backtrader runs the *same orders*: for every order the engine filled, a market order of that
size at the bar it was decided, one Cerebro per symbol with the same costs (its sizing is
not re-implemented, so backtrader does less work than the engine: no volatility, risk or
signal handling).  Fills and fees are compared order by order.  backtrader may run on the
first ``--bt-symbols`` symbols; its time is then scaled linearly to all of them (the table
says so).

    .venv/bin/python bench/engine.py [--symbols 500] [--bars 2520] [--bt-symbols 25]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event
from tinywindow.execution.config import PortfolioConfig
from tinywindow.execution.engine import BarRow, SignalRow, TradingEngine
from tinywindow.execution.events import OrderExpired, OrderFilled, OrderSubmitted
from tinywindow.risk.config import RiskConfig

FAST, SLOW = 10, 30
COMMISSION_BPS, SLIPPAGE_BPS = 10.0, 5.0
CASH = 1_000_000.0
CODE_PATH = "TradingEngine.on_bars/apply_signals"
DAY_NS = 86_400 * 10**9


def panel(symbols: int, bars: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """OHLC [T, N], the bar timestamps (ns, business days) and the symbol names."""
    from tinywindow.data.sources.synthetic import generate_panel

    data = generate_panel(symbols, bars, seed)
    ts = pd.date_range("2000-01-03", periods=bars, freq="B", tz="UTC").as_unit("ns").asi8
    return data, np.asarray(ts, np.int64), [f"S{n:04d}" for n in range(symbols)]


def sma_exposures(close: np.ndarray) -> np.ndarray:
    """Target exposure per (bar, symbol): sign(SMA fast - SMA slow), 0 before both exist."""
    from tinywindow.backtest.simulator import sma

    f, s = sma(close, FAST), sma(close, SLOW)
    with np.errstate(invalid="ignore"):
        out = np.sign(f - s)
    return np.nan_to_num(out, nan=0.0).astype(np.int8)


def bench_configs(symbols: int) -> tuple[RiskConfig, PortfolioConfig]:
    """Risk as shipped except: EWMA volatility (GARCH refits are arch fits, a separate cost),
    per-symbol caps of 1/symbols, drawdown states out of the way (a halted engine does less)."""
    cap = min(1.0, 1.0 / symbols)
    risk = RiskConfig(max_position=cap, max_weight=cap, max_gross=2.0, max_net=2.0, confidence_floor=0.0,
                      reduce_drawdown=1.0, halt_drawdown=1.0, vol_model="ewma")
    port = PortfolioConfig(initial_cash_usd=CASH, commission_bps=COMMISSION_BPS, slippage_bps=SLIPPAGE_BPS)
    return risk, port


def build_rows(
    data: dict[str, np.ndarray], ts: np.ndarray, names: Sequence[str], exposure: np.ndarray
) -> tuple[list[list[BarRow]], list[list[SignalRow]]]:
    """One list of BarRows and one of SignalRows per timestamp (what tables.py yields)."""
    o, c = data["open"].tolist(), data["close"].tolist()
    a = exposure.tolist()
    bars, sigs = [], []
    for t, tt in enumerate(ts.tolist()):
        bars.append([BarRow(s, tt, o[t][n], c[t][n]) for n, s in enumerate(names)])
        sigs.append([SignalRow(s, tt, a[t][n], 1.0, "sma") for n, s in enumerate(names)])
    return bars, sigs


KEPT = (OrderSubmitted, OrderFilled, OrderExpired)


def run_engine(
    risk: RiskConfig, port: PortfolioConfig, bars: list[list[BarRow]], sigs: list[list[SignalRow]],
    keep_all: bool = False,
) -> tuple[TradingEngine, list[list[Event]], float]:
    """The timed loop: what the PortfolioActor calls per bar, journal off.  Keeps the order,
    fill and expiry events (all of them with ``keep_all``, for the digest).  The prebuilt
    inputs are moved out of the garbage collector's way first (``gc.freeze``): in the actor
    they arrive call by call and are freed, so they are not the engine's heap."""
    eng = TradingEngine(risk, port)
    out: list[list[Event]] = []
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    for b, s in zip(bars, sigs, strict=True):
        for batch in (eng.on_bars(b), eng.apply_signals(s)):
            out.append(batch if keep_all else [e for e in batch if isinstance(e, KEPT)])
    secs = time.perf_counter() - t0
    gc.unfreeze()
    return eng, out, secs


def digest(eng: TradingEngine, batches: list[list[Event]]) -> str:
    """sha256 of every event's journal record and the final snapshot: equal digests mean the
    same decisions, orders, fills and Decimal amounts, exponent for exponent."""
    h = hashlib.sha256()
    for batch in batches:
        for e in batch:
            h.update(json.dumps(CODEC.encode(e), sort_keys=True).encode())
    h.update(json.dumps(eng.snapshot(), sort_keys=True, default=str).encode())
    return h.hexdigest()


def filled_orders(
    batches: list[list[Event]], names: Sequence[str], ts: np.ndarray
) -> tuple[np.ndarray, dict[str, tuple[Decimal, Decimal]], int, int, int]:
    """Signed size of each filled order at the bar it was decided [T, N], each fill's
    (price, fee) by order id, and the counts of orders, fills and expiries."""
    col = {s: n for n, s in enumerate(names)}
    row = {int(t): i for i, t in enumerate(ts.tolist())}
    orders: dict[str, tuple[int, int, Decimal]] = {}
    fills: dict[str, tuple[Decimal, Decimal]] = {}
    n_exp = 0
    for batch in batches:
        for e in batch:
            if isinstance(e, OrderSubmitted):
                o = e.order
                orders[o.order_id] = (row[o.ts], col[o.symbol], o.signed_qty)
            elif isinstance(e, OrderFilled):
                fills[e.fill.order_id] = (e.fill.price, e.fill.fee)
            elif isinstance(e, OrderExpired):
                n_exp += 1
    size = np.zeros((len(ts), len(names)))
    for oid in fills:
        t, n, q = orders[oid]
        size[t, n] += float(q)
    return size, fills, len(orders), len(fills), n_exp


def backtrader_run(data: dict[str, np.ndarray], ts: np.ndarray, size: np.ndarray, cols: Sequence[int]) -> tuple[int, float]:
    """One Cerebro per symbol executing ``size`` (market orders at the next open); returns
    the number of fills and the fees they paid."""
    import backtrader as bt

    idx = pd.to_datetime(ts, utc=True).tz_localize(None)
    n_fills, fees = 0, 0.0
    for n in cols:
        df = pd.DataFrame({k: data[k][:, n] for k in ("open", "high", "low", "close")}, index=idx)
        df["volume"] = 1e6
        col = size[:, n]
        tally = {"fills": 0, "fees": 0.0}

        class Orders(bt.Strategy):  # type: ignore[misc]
            def next(self, col: np.ndarray = col) -> None:
                d = col[len(self.data) - 1]
                if d > 0:
                    self.buy(size=d)
                elif d < 0:
                    self.sell(size=-d)

            def notify_order(self, order: Any, tally: dict[str, Any] = tally) -> None:
                if order.status == order.Completed:
                    tally["fills"] += 1
                    tally["fees"] += order.executed.comm

        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=df))
        cerebro.addstrategy(Orders)
        cerebro.broker.setcash(CASH)
        cerebro.broker.setcommission(commission=COMMISSION_BPS / 1e4)
        cerebro.broker.set_slippage_perc(SLIPPAGE_BPS / 1e4, slip_open=True, slip_limit=True, slip_match=True,
                                         slip_out=True)
        cerebro.run()
        n_fills += int(tally["fills"])
        fees += float(tally["fees"])
    return n_fills, fees


def journaled_run(risk: RiskConfig, port: PortfolioConfig, data: dict[str, np.ndarray], ts: np.ndarray,
                  names: Sequence[str], exposure: np.ndarray, bars: int) -> float:
    """Seconds for ``bars`` timestamps through an in-process PortfolioActor: Arrow in and out,
    every call's events journaled (codec, signed, encrypted; fsync off), checkpoints every
    ``port.checkpoint_every`` records."""
    import pyarrow as pa

    from actors.portfolio import PortfolioActor
    from tinywindow.config import Config, CryptoConfig
    from tinywindow.crypto import keystore_dir
    from tinywindow.crypto.keystore import KeyStore

    n = len(names)
    zeros = np.zeros(n)
    secret = "bench engine passphrase"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(data_dir=tmp, crypto=CryptoConfig(journal_fsync=False), risk=risk, portfolio=port)
        KeyStore.init(keystore_dir(cfg.crypto, tmp), secret, scrypt_log2_n=10)
        actor = PortfolioActor(cfg, passphrase=secret)
        sym = pa.array(list(names), pa.string())
        tables = []
        for t in range(bars):
            stamp = pa.array(np.full(n, ts[t]), pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
            b = pa.table({"symbol": sym, "ts": stamp, "open": data["open"][t], "high": data["high"][t],
                          "low": data["low"][t], "close": data["close"][t], "volume": zeros + 1e6})
            s = pa.table({"symbol": sym, "ts": stamp, "action": pa.array(exposure[t], pa.int8()),
                          "decided": pa.array(np.ones(n, bool)), "confidence": pa.array(np.ones(n), pa.float32()),
                          "agreement": pa.array(np.ones(n), pa.float32()), "votes": pa.array(np.full(n, 3), pa.int16()),
                          "reason": pa.array(["sma"] * n)})
            tables.append((b, s))
        try:
            t0 = time.perf_counter()
            for b, s in tables:
                actor.on_bars(b)
                actor.apply_signals(s)
            return time.perf_counter() - t0
        finally:
            actor.close()


def run(symbols: int = 500, bars: int = 2520, bt_symbols: int = 25, seed: int = 7, journal_bars: int = 0,
        verbose: bool = False) -> dict[str, Any]:
    """Measure both; returns the figures (the JSON line's keys first)."""
    warnings.filterwarnings("ignore")
    data, ts, names = panel(symbols, bars, seed)
    exposure = sma_exposures(data["close"])
    risk, port = bench_configs(symbols)
    rows_b, rows_s = build_rows(data, ts, names, exposure)
    run_engine(risk, port, rows_b[:40], rows_s[:40])  # warm-up: imports, first-call paths
    eng, batches, t_eng = run_engine(risk, port, rows_b, rows_s, keep_all=verbose)
    size, _, n_orders, n_fills, n_exp = filled_orders(batches, names, ts)
    cells = symbols * bars

    bt_cols = list(range(min(bt_symbols or symbols, symbols)))
    backtrader_run({k: v[:60] for k, v in data.items()}, ts[:60], size[:60], bt_cols[:1])  # warm-up
    t0 = time.perf_counter()
    bt_fills, bt_fees = backtrader_run(data, ts, size, bt_cols)
    t_bt = (time.perf_counter() - t0) * symbols / len(bt_cols)
    subset = set(bt_cols)
    col = {s: i for i, s in enumerate(names)}
    our_fees = float(sum((e.fill.fee for b in batches for e in b
                          if isinstance(e, OrderFilled) and col[e.fill.symbol] in subset), Decimal(0)))
    our_fills = sum(1 for b in batches for e in b if isinstance(e, OrderFilled) and col[e.fill.symbol] in subset)

    t_journal = t_journal_nockpt = float("nan")
    if journal_bars:
        t_journal = journaled_run(risk, port, data, ts, names, exposure, journal_bars)
        rare = port.model_copy(update={"checkpoint_every": 10_000_000})
        t_journal_nockpt = journaled_run(risk, rare, data, ts, names, exposure, journal_bars)

    eng_rate, bt_rate = cells / t_eng, cells / t_bt
    out: dict[str, Any] = {
        "engine_bar_events_s": round(eng_rate),
        "backtrader_bar_events_s": round(bt_rate),
        "engine_vs_backtrader": round(eng_rate / bt_rate, 1),
        "symbols": symbols, "bars": bars, "bt_symbols": len(bt_cols),
        "engine_s": t_eng, "backtrader_s_scaled": t_bt,
        "orders": n_orders, "fills": n_fills, "expired": n_exp,
        "fills_subset": our_fills, "bt_fills_subset": bt_fills,
        "fees_rel_err_subset": abs(bt_fees / our_fees - 1) if our_fees else 0.0,
        "journal_bars": journal_bars,
        "journaled_bar_events_s": round(symbols * journal_bars / t_journal) if journal_bars else None,
        "journaled_no_checkpoint_bar_events_s": round(symbols * journal_bars / t_journal_nockpt) if journal_bars else None,
        "checkpoint_every": port.checkpoint_every,
        "final_equity": str(eng.portfolio.equity()),
        "digest": digest(eng, batches) if verbose else None,
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--bt-symbols", type=int, default=25, help="backtrader on the first N symbols, scaled (0: all)")
    ap.add_argument("--journal-bars", type=int, default=0,
                    help="also time this many bars through an in-process PortfolioActor with its journal")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--digest", action="store_true", help="print a digest of every event and the final state")
    args = ap.parse_args()
    r = run(args.symbols, args.bars, args.bt_symbols, args.seed, args.journal_bars, args.digest)
    cells = r["symbols"] * r["bars"]
    scaled = "" if r["bt_symbols"] == r["symbols"] else f", timed on {r['bt_symbols']}, scaled"
    print(f"Event engine: {r['symbols']} symbols x {r['bars']} daily bars = {cells:,} bar-events "
          f"(tinywindow.data.sources.synthetic, seed {args.seed}); SMA({FAST}/{SLOW}) target exposure on every "
          f"symbol every bar; {COMMISSION_BPS:g} bps fees + {SLIPPAGE_BPS:g} bps slippage; one $1M account")
    print(f"{r['orders']:,} orders, {r['fills']:,} fills, {r['expired']:,} expired (collar); "
          f"final equity {Decimal(r['final_equity']):.2f}")
    print(f"{'code path':<66} {'seconds':>9} {'bar-events/s':>13} {'vs backtrader':>14}")
    print("-" * 105)
    rows = [(f"{CODE_PATH} (journal off)", r["engine_s"], cells / r["engine_s"])]
    if r["journal_bars"]:
        jc = r["symbols"] * r["journal_bars"]
        rows.append((f"PortfolioActor.on_bars/apply_signals, journal on ({r['journal_bars']} bars)",
                     jc / r["journaled_bar_events_s"], r["journaled_bar_events_s"]))
        rows.append(("  same, checkpoints off (journal append only)",
                     jc / r["journaled_no_checkpoint_bar_events_s"], r["journaled_no_checkpoint_bar_events_s"]))
    rows.append((f"backtrader, same orders ({r['bt_symbols']} cerebros{scaled})", r["backtrader_s_scaled"],
                 cells / r["backtrader_s_scaled"]))
    bt_rate = cells / r["backtrader_s_scaled"]
    for name, secs, rate in rows:
        print(f"{name:<66} {secs:>9.2f} {rate:>13,.0f} {rate / bt_rate:>13.1f}x")
    print(f"agreement on the backtrader symbols: fills {r['fills_subset']:,} (ours) vs {r['bt_fills_subset']:,} "
          f"(backtrader), total fees rel err {r['fees_rel_err_subset']:.1e}")
    if r["journal_bars"]:
        print(f"PortfolioActor rows: in-process, Arrow BARS/SIGNALS in, FILLS/ORDERS out, each call's events "
              f"journaled (signed, encrypted, fsync off); checkpoint every {r['checkpoint_every']} records "
              f"(the default), i.e. about every call at this width")
    if r["digest"]:
        print(f"digest {r['digest']}")
    print(json.dumps({k: r[k] for k in ("engine_bar_events_s", "backtrader_bar_events_s", "engine_vs_backtrader")}))


if __name__ == "__main__":
    main()
