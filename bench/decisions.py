"""Decisions traded as the engine trades: each agent and the consensus vs buy-and-hold, on a
purged walk-forward over the bundled real data (S&P 500, NASDAQ, GOOG).

Folds (``walkforward.make_splits``): the first model trains on everything before
``--first-train-end`` (default 2015-01-01); ``embargo`` bars (``agents.window`` = 32) are
skipped (purged: no training label reads a close at or after the training end, no test
window holds a training row); the next ``--test-bars`` (252, about a year) are traded; the
next fold's training ends where this test ended (expanding window).  Every agent is trained
afresh on each fold at the demo budget (``params.DEMO_BUDGET``), with the config's default
parameters: nothing is tuned, least of all on the test years.  GOOG ends in 2013, so it only
trains; the traded symbols are SP500 and NASDAQ.

Trading: each fold's test bars go bar by bar through the real domain objects, as the
PortfolioActor and ConsensusActor run them: the agents' VOTES -> ``ConsensusBook.decide``
(weights learned online from the engine's realized outcomes) -> ``TradingEngine``
(volatility-targeted sizing, risk checks, paper broker fills at the next open with
commission and slippage).  An agent alone trades through the same path with a one-agent
consensus that passes its vote through.  The engine is warmed up (marks and volatility
only, no signals) on the 300 bars before each test period.  Buy-and-hold is the
equal-weight book of the traded symbols held from the first test bar's close.

Reported over the concatenated test periods: annualised Sharpe of daily equity returns, max
drawdown, total return, orders; last line one JSON.  ``retrains_promoted`` /
``retrains_rejected`` are 0 here because this bench retrains per fold rather than inside a
trading run (no promotion gate runs); ``outcomes_used`` is the number of realized outcomes
the consensus learned its weights from.

    .venv/bin/python bench/decisions.py [--folds 3] [--budget demo] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

WARMUP_BARS = 300


def _iso(ns: int) -> str:
    import pandas as pd

    return pd.Timestamp(int(ns), tz="UTC").date().isoformat()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="sp500,nasdaq,goog")
    ap.add_argument("--first-train-end", default="2015-01-01")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--test-bars", type=int, default=252)
    ap.add_argument("--budget", choices=["demo", "test"], default="demo")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--agents", default="lstm,transformer,xgboost")
    args = ap.parse_args()

    import pyarrow as pa

    from actors.runtime import connect
    from actors.training.train import embargo, fit, set_threads
    from tinywindow.backtest import decisions as dec
    from tinywindow.backtest.metrics import max_drawdown, sharpe
    from tinywindow.config import load
    from tinywindow.data import features
    from tinywindow.data.base import select
    from tinywindow.data.sources.bundled import BundledSource
    from tinywindow.execution.engine import TradingEngine
    from tinywindow.models.evaluation import walkforward as wf
    from tinywindow.models.params import DEMO_BUDGET, TEST_BUDGET, resolve
    from tinywindow.models.windows import feature_names, fit_normalizer, to_series

    t0 = time.perf_counter()
    cfg = load(None)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    budget = DEMO_BUDGET if args.budget == "demo" else TEST_BUDGET
    set_threads(args.threads)
    connect(cfg, num_cpus=2)
    bars = BundledSource("bundled", [d.strip() for d in args.data.split(",")]).table()
    feats = features.compute(bars)
    series = to_series(feats)
    names = feature_names(feats)
    splits = wf.make_splits(series, args.first_train_end, args.folds, args.test_bars, embargo(cfg.agents))
    bar_ts = bars.column("ts").cast(pa.int64()).to_numpy()
    cal = np.unique(bar_ts)
    runs: dict[str, list[Any]] = {a: [] for a in [*agents, dec.CONSENSUS]}
    bh_returns: list[np.ndarray] = []
    fold_rows = []
    for k, split in enumerate(splits, start=1):
        train = wf.training_part(series, split)
        norm = fit_normalizer(train, names)
        warm_i = max(0, int(np.searchsorted(cal, split.valid_start)) - WARMUP_BARS)
        lead = int(cal[max(0, int(np.searchsorted(cal, split.valid_start)) - 2 * cfg.agents.window)])
        part_feats = select(feats, None, lead, split.valid_end)
        votes = []
        for agent in agents:
            t1 = time.perf_counter()
            params = resolve(agent, cfg.agents, None, budget.get(agent))
            predictor, _ = fit(agent, train, norm, cfg.agents, params, cfg.agents.seed, threads=args.threads)
            v = predictor.predict(part_feats)
            ts = v.column("ts").cast(pa.int64()).to_numpy()
            votes.append(v.filter(pa.array((ts >= split.valid_start) & (ts < split.valid_end))))
            print(f"fold {k} {agent}: trained in {time.perf_counter() - t1:.0f}s", flush=True)
        all_votes = pa.concat_tables(votes)
        fold_bars = select(bars, None, int(cal[warm_i]), split.valid_end)
        traded = sorted(set(all_votes.column("symbol").cast(pa.string()).to_pylist()))
        for agent, v in zip(agents, votes, strict=True):
            runs[agent].append(dec.trade(agent, fold_bars, v, [agent], dec.solo(cfg.consensus),
                                         TradingEngine(cfg.risk, cfg.portfolio), split.valid_start, split.valid_end))
        runs[dec.CONSENSUS].append(dec.trade(dec.CONSENSUS, fold_bars, all_votes, agents, cfg.consensus,
                                             TradingEngine(cfg.risk, cfg.portfolio), split.valid_start, split.valid_end))
        test = select(bars, traded, split.valid_start, split.valid_end)
        closes = test.to_pandas().pivot(index="ts", columns="symbol", values="close").ffill()
        bh_returns.append(np.diff((closes / closes.iloc[0]).mean(axis=1).to_numpy()) / (closes / closes.iloc[0]).mean(axis=1).to_numpy()[:-1])
        fold_rows.append((k, _iso(split.train_end), _iso(split.valid_start), _iso(split.valid_end - 1), ",".join(traded)))

    def stats(rets: np.ndarray) -> tuple[float, float, float]:
        sr = sharpe(rets)  # NaN for a book that never moved: its Sharpe ratio is taken as 0
        return (sr if np.isfinite(sr) else 0.0), max_drawdown(rets), float(np.prod(1 + rets) - 1)

    print()
    print(f"Purged walk-forward, {len(splits)} fold(s), budget {args.budget}, cost {cfg.agents.cost}/unit in training; "
          f"engine: {cfg.portfolio.commission_bps} bps commission + {cfg.portfolio.slippage_bps} bps slippage, "
          f"no_decision={getattr(cfg.portfolio, 'no_decision', 'keep (engine default)')}, "
          f"allow_short={getattr(cfg.risk, 'allow_short', True)}")
    print(f"{'fold':>4}  {'train end':<10}  {'test':<23}  symbols")
    for k, te, vs, ve, syms in fold_rows:
        print(f"{k:>4}  {te:<10}  {vs}..{ve}  {syms}")
    print()
    print(f"{'strategy':<14} {'Sharpe':>7} {'max DD':>8} {'return':>8} {'orders':>7}  decisions (long/short/flat/none)  per-fold Sharpe")
    print("-" * 110)
    out: dict[str, tuple[float, float, float]] = {}
    for name, rs in runs.items():
        rets = np.concatenate([r.returns for r in rs])
        out[name] = stats(rets)
        c = {key: sum(r.decisions[key] for r in rs) for key in rs[0].decisions}
        per = " ".join(f"{stats(r.returns)[0]:+.2f}" for r in rs)
        print(f"{name:<14} {out[name][0]:>7.2f} {100 * out[name][1]:>7.1f}% {100 * out[name][2]:>7.1f}% "
              f"{sum(r.orders for r in rs):>7}  {c['long']}/{c['short']}/{c['flat']}/{c['no decision']:<20}  {per}")
    bh = np.concatenate(bh_returns)
    out[dec.BUY_AND_HOLD] = stats(bh)
    print(f"{'buy_and_hold':<14} {out['buy_and_hold'][0]:>7.2f} {100 * out['buy_and_hold'][1]:>7.1f}% "
          f"{100 * out['buy_and_hold'][2]:>7.1f}% {'-':>7}  {'-':<33}  "
          + " ".join(f"{sharpe(r):+.2f}" for r in bh_returns))
    best = max(agents, key=lambda a: out[a][0])
    cons, bhs = out[dec.CONSENSUS], out[dec.BUY_AND_HOLD]
    met = cons[0] >= out[best][0] and cons[0] >= bhs[0] and cons[1] > bhs[1]
    learned = sum(r.outcomes_learned for r in runs[dec.CONSENSUS])
    print(f"\nbest agent: {best}; goal (consensus Sharpe >= best agent and buy-and-hold, smaller drawdown than "
          f"buy-and-hold): {'MET' if met else 'NOT MET'}; consensus learned from {learned} outcomes; "
          f"{time.perf_counter() - t0:.0f}s")
    print(json.dumps({
        "consensus_sharpe": round(cons[0], 3),
        "best_agent_sharpe": round(out[best][0], 3),
        "buy_hold_sharpe": round(bhs[0], 3),
        "consensus_max_drawdown": round(cons[1], 4),
        "buy_hold_max_drawdown": round(bhs[1], 4),
        "retrains_promoted": 0,
        "retrains_rejected": 0,
        "outcomes_used": learned,
    }))


if __name__ == "__main__":
    main()
