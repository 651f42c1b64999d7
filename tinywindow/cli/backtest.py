"""``tinywindow backtest sma``: an SMA-crossover backtest on bundled or synthetic data.

Runs the vectorised simulator (the event engine's cost and accounting rules) with the
configured costs (``portfolio.commission_bps``, ``portfolio.slippage_bps``, ...) and
prints the metrics.  Stop-and-reverse on every cross, sized either as a fixed number of
shares (``--qty``) or as a fraction of equity at the decision (``--weight``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import pyarrow as pa

from tinywindow.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser("backtest", help="backtest a strategy on bundled or synthetic data")
    cmds = p.add_subparsers(dest="backtest_command", metavar="STRATEGY")
    cmds.required = True
    sma = cmds.add_parser("sma", help="SMA crossover, stop-and-reverse")
    sma.add_argument("--source", default="goog",
                     help="a configured source or bundled dataset (default goog); 'synthetic' for generated bars")
    sma.add_argument("--symbols", type=int, default=20, help="synthetic: number of symbols")
    sma.add_argument("--bars", type=int, default=2520, help="synthetic: bars per symbol")
    sma.add_argument("--seed", type=int, default=7, help="synthetic: seed")
    sma.add_argument("--fast", type=int, default=10)
    sma.add_argument("--slow", type=int, default=30)
    size = sma.add_mutually_exclusive_group()
    size.add_argument("--qty", type=float, help="shares per side")
    size.add_argument("--weight", type=float, help="fraction of equity per symbol per side (default 1/N)")
    sma.add_argument("--json", action="store_true", help="print the metrics as JSON")
    sma.set_defaults(func=cmd_sma)


def panel(bars: pa.Table) -> tuple[list[str], np.ndarray, np.ndarray]:
    """[T, N] open and close panels, on the timestamps every symbol has a bar for."""
    df = bars.select(["symbol", "ts", "open", "close"]).to_pandas()
    df["symbol"] = df["symbol"].astype(str)
    wide = df.pivot_table(index="ts", columns="symbol", values=["open", "close"]).dropna()
    symbols = sorted(df["symbol"].unique())
    return symbols, wide["open"][symbols].to_numpy(), wide["close"][symbols].to_numpy()


def load(args: argparse.Namespace, cfg: Config) -> pa.Table:
    if args.source == "synthetic":
        from tinywindow.data.sources.synthetic import generate

        return generate(args.symbols, args.bars, args.seed)
    from tinywindow.cli.data import resolve_source
    from tinywindow.data.sources import build_source

    return build_source(resolve_source(cfg, args.source), cfg.data.on_bad_rows).fetch()


def cmd_sma(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.backtest.metrics import summarize
    from tinywindow.backtest.simulator import (
        simulate_targets,
        simulate_weights,
        sma_crossover_actions,
        stop_and_reverse_targets,
    )
    from tinywindow.cli._tables import table
    from tinywindow.execution.costs import Commission, Slippage

    symbols, o, c = panel(load(args, cfg))
    pc = cfg.portfolio
    costs = dict(commission=Commission.from_bps(pc.commission_bps, pc.commission_per_share_usd, pc.commission_min_usd),
                 slippage=Slippage(pc.slippage_bps))
    actions = sma_crossover_actions(c, args.fast, args.slow)
    if args.qty is not None:
        res = simulate_targets(o, c, stop_and_reverse_targets(actions, args.qty),
                               initial_cash=pc.initial_cash_usd, **costs)  # type: ignore[arg-type]
        sizing = f"{args.qty:g} shares per side"
    else:
        w = args.weight if args.weight is not None else 1.0 / len(symbols)
        res = simulate_weights(o, c, np.where(actions != 0, actions * w, np.nan), initial_cash=pc.initial_cash_usd,
                               lot=pc.lot_size, **costs)  # type: ignore[arg-type]
        sizing = f"{w:.4g} of equity per symbol per side"
    s = summarize(res.equity, trade_pnls=res.trade_pnls(), traded_notional=res.traded_notional, gross=res.gross)
    out = {"symbols": len(symbols), "bars": int(c.shape[0]), "final_equity": float(res.equity[-1]),
           "fills": res.n_fills, **s.as_dict()}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"SMA({args.fast}/{args.slow}) stop-and-reverse on {args.source}: {len(symbols)} symbol(s) x "
          f"{c.shape[0]} bars, {sizing}; costs {pc.commission_bps:g} bps + {pc.slippage_bps:g} bps slippage")
    print(table([[k, v] for k, v in out.items()], ["metric", "value"]))
    return 0
