"""The learning loop measured: the consensus traded by the real actor pipeline (retrains and the
promotion gate included) and each agent alone, vs buy-and-hold, on a purged walk-forward over
the bundled real data (S&P 500, NASDAQ, GOOG).

Folds: ``--years`` (default 2) calendar years each from ``--start`` (2015-01-01) to ``--end``
(2019-01-01): 2015-2016 and 2017-2018.  Two-year folds because with the default schedule
(``agents.retrain_every_bars`` = 252, ``retrain_lag_bars`` = 5) a one-year fold (251-252
bars) never reaches a retrain; every config value is the default, nothing is tuned, least
of all on the test years.  Each fold's agents train afresh on the features of SP500, NASDAQ
and GOOG with ts before the fold's start minus ``embargo`` bars (``agents.window`` = 32;
purged: no training label reads a close at or after that cut) at the demo budget
(``params.DEMO_BUDGET``).  GOOG ends in 2013, so it only trains; SP500 and NASDAQ are traded.

Rows and the code path each measures:

* ``consensus (actor pipeline)``: ``actors.pipeline``, as ``tinywindow demo`` runs it
  (without Serve: the AgentActors predict in-process): DataSourceActors -> AgentActors
  (``start_agents``) -> ``run_trading`` bar by bar: VOTES -> ConsensusActor -> PortfolioActor
  (risk, paper fills at the next open, costs), outcomes fed back to the consensus weights and
  each agent's experience; after bar 252 of the fold every agent trains a challenger on the
  features up to that bar and its own outcomes, decided 5 bars later by the champion /
  challenger gate (``agents.promotion``, defaults), a promoted version voting from the next
  bar.  Each fold runs in its own data_dir (a fresh journal, registry and experience); the
  fold's actors are killed after it.
* ``<agent> (domain replay)``: the fold's first version of that agent (the one the
  consensus starts with; no retrain) votes on the fold through its AgentActor, and
  ``tinywindow.backtest.decisions.trade`` replays the votes through ``ConsensusBook`` (one
  agent, vote passed through) and ``TradingEngine`` with the same risk and portfolio config,
  starting cold like the PortfolioActor.
* ``buy_and_hold``: the pipeline's benchmark, equal weight of SP500 and NASDAQ bought at
  the first test bar's close.

Every row: daily equity at each test bar's close; simple returns; the folds' returns joined
in time order (each fold restarts from the initial cash; the return across a fold boundary
is not counted); Sharpe and max drawdown from ``tinywindow.backtest.metrics``.  JSON last
line: ``retrains_promoted`` / ``retrains_rejected`` count gate decisions over all folds;
``outcomes_used`` sums ``outcomes_matched`` (the realized outcomes matched into the
challenger's training data) over all gate decisions.

    RAY_AUTH_MODE=token RAY_USAGE_STATS_ENABLED=0 PYTHONHASHSEED=0 .venv/bin/python bench/decisions.py
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Ray reads these when it is imported: set them first.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

TRAIN_SOURCES = ["sp500", "nasdaq", "goog"]
TRADED = ["sp500", "nasdaq"]
CONSENSUS_ROW = "consensus (actor pipeline)"


def _stats(rets: np.ndarray) -> tuple[float, float, float]:
    from tinywindow.backtest.metrics import max_drawdown, sharpe, total_return

    sr = sharpe(rets)  # NaN for a book that never moved: its Sharpe ratio is taken as 0
    return (sr if np.isfinite(sr) else 0.0), max_drawdown(rets), total_return(rets)


def _gate_line(p: dict[str, Any]) -> str:
    champ = "n/a" if p["champion"] is None else f"{p['champion']:.2f}"
    return (f"    {p['day']} {p['agent']} {p['version']} <- {p['parent']}: "
            f"{'PROMOTED' if p['promote'] else 'rejected'} ({p['reason']}), {p['metric']} challenger "
            f"{p['challenger']:.2f} vs champion {champ}; {p['outcomes_matched']} outcomes matched")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", type=int, default=2015, help="first test year")
    ap.add_argument("--end", type=int, default=2019, help="test years end before this one")
    ap.add_argument("--years", type=int, default=2, help="calendar years per fold")
    args = ap.parse_args()

    import pyarrow as pa
    import ray

    from actors import pipeline
    from actors.runtime import connect
    from actors.training.train import embargo
    from tinywindow.backtest import decisions as dec
    from tinywindow.backtest.metrics import returns_from_equity
    from tinywindow.config import load
    from tinywindow.core.log import register_secret
    from tinywindow.crypto.keystore import KeyStore
    from tinywindow.execution.engine import TradingEngine
    from tinywindow.models.params import DEMO_BUDGET

    t0 = time.perf_counter()
    # the demo's set-up (tinywindow.cli.demo._prepare): a fresh data_dir, a keystore, the
    # passphrase in the environment before Ray starts so the actors inherit it
    root = tempfile.mkdtemp(prefix="tw-bench-decisions-")
    cfg = load(None)
    passphrase = secrets.token_urlsafe(24)
    os.environ[cfg.crypto.passphrase_env] = passphrase
    register_secret(passphrase)
    keys = os.path.join(root, "keys")
    cfg = (cfg.set("data_dir", root).set("data.persist", True).set("crypto.journal_fsync", False)
           .set("crypto.keystore_dir", keys))
    KeyStore.init(keys, passphrase, scrypt_log2_n=15)
    connect(cfg, num_cpus=2)
    sources = [s for s in pipeline.DEMO_SOURCES if s.name in TRAIN_SOURCES]
    data = pipeline.start_data(cfg, sources)
    cal = np.unique(pipeline.bars_of(data, TRADED).column("ts").cast(pa.int64()).to_numpy())
    gap = embargo(cfg.agents)
    agents = list(pipeline.AGENTS)
    print(f"data up in {time.perf_counter() - t0:.0f}s under {root}; embargo {gap} bars; "
          f"retrain every {cfg.agents.retrain_every_bars} bars, decided {cfg.agents.retrain_lag_bars} later; "
          f"gate {cfg.agents.promotion.metric} margin {cfg.agents.promotion.margin}, "
          f"eval {cfg.agents.promotion.eval_bars} bars", flush=True)

    rets: dict[str, list[np.ndarray]] = {a: [] for a in [CONSENSUS_ROW, *agents, dec.BUY_AND_HOLD]}
    per_fold: dict[str, list[float]] = {a: [] for a in rets}
    orders: dict[str, int] = dict.fromkeys(rets, 0)
    decisions: dict[str, dict[str, int]] = {}
    gates: list[dict[str, Any]] = []
    folds = []
    for k, y in enumerate(range(args.start, args.end, args.years), start=1):
        t1 = time.perf_counter()
        start, end = f"{y}-01-01", f"{min(y + args.years, args.end)}-01-01"
        i0 = int(np.searchsorted(cal, np.datetime64(start, "ns").astype(np.int64)))
        i1 = int(np.searchsorted(cal, np.datetime64(end, "ns").astype(np.int64)))
        train_end = int(cal[i0 - gap])  # training features: ts < train_end
        fcfg = cfg.set("data_dir", os.path.join(root, f"fold{k}"))
        feats = pipeline.features_of(data, TRAIN_SOURCES, None, train_end)
        stage = pipeline.start_agents(fcfg, feats, {a: dict(b) for a, b in DEMO_BUDGET.items()}, agents)
        print(f"\nfold {k}: train < {_day(train_end)}, test {_day(int(cal[i0]))}..{_day(int(cal[i1 - 1]))} "
              f"({i1 - i0} bars); agents trained in {stage.seconds:.0f}s", flush=True)
        # the per-agent rows: the first version's votes on the fold, replayed alone
        lead = str(np.datetime64(start) - np.timedelta64(180, "D"))
        fref = ray.put(pipeline.features_of(data, TRADED, lead, end))
        bars = pipeline.bars_of(data, TRADED, start, end)
        for a, votes in zip(agents, ray.get([stage.actors[a].predict.remote(fref) for a in agents]), strict=True):
            v = votes.filter(pa.array(votes.column("ts").cast(pa.int64()).to_numpy() >= int(cal[i0])))
            run = dec.trade(a, bars, v, [a], dec.solo(fcfg.consensus), TradingEngine(fcfg.risk, fcfg.portfolio),
                            int(cal[i0]), int(cal[i1 - 1]) + 1)
            rets[a].append(run.returns)
            orders[a] += run.orders
            decisions[a] = {d: decisions.get(a, {}).get(d, 0) + n for d, n in run.decisions.items()}
        # the consensus row: the actor pipeline, retrains and gate included
        report = pipeline.run_trading(fcfg, data, stage, TRADED, start, end,
                                      say=lambda s: print(s, flush=True))
        rets[CONSENSUS_ROW].append(returns_from_equity(report.equity))
        rets[dec.BUY_AND_HOLD].append(returns_from_equity(report.benchmark_equity))
        orders[CONSENSUS_ROW] += report.orders
        decisions[CONSENSUS_ROW] = {d: decisions.get(CONSENSUS_ROW, {}).get(d, 0) + n
                                    for d, n in report.signals.items()}
        for name in rets:
            per_fold[name].append(_stats(rets[name][-1])[0])
        gates += [{**p, "fold": k} for p in report.promotions]
        kept = sum(p["promote"] for p in report.promotions)
        print(f"  fold {k} gate: {kept} promoted, {len(report.promotions) - kept} rejected; "
              f"{report.outcomes} outcomes fed back; {time.perf_counter() - t1:.0f}s", flush=True)
        for p in report.promotions:
            print(_gate_line(p), flush=True)
        folds.append((k, _day(train_end), _day(int(cal[i0])), _day(int(cal[i1 - 1])), i1 - i0, len(report.promotions)))
        ray.kill(report.consensus)
        ray.kill(report.portfolio)
        for actor in stage.actors.values():
            ray.kill(actor)

    wall = time.perf_counter() - t0
    print(f"\nPurged walk-forward, {len(folds)} fold(s), demo budget, all config defaults; engine "
          f"{cfg.portfolio.commission_bps} bps commission + {cfg.portfolio.slippage_bps} bps slippage, "
          f"no_decision={getattr(cfg.portfolio, 'no_decision', '?')}, allow_short={getattr(cfg.risk, 'allow_short', '?')}")
    print(f"{'fold':>4}  {'train <':<10}  {'test':<22}  {'bars':>4}  gate decisions")
    for k, te, vs, ve, n, g in folds:
        print(f"{k:>4}  {te:<10}  {vs}..{ve}  {n:>4}  {g}")
    print()
    print(f"{'strategy (code path)':<28} {'Sharpe':>7} {'max DD':>8} {'return':>8} {'orders':>7}  "
          f"{'long/short/flat/none':<22} per-fold Sharpe")
    print("-" * 100)
    out: dict[str, tuple[float, float, float]] = {}
    for name, rs in rets.items():
        out[name] = _stats(np.concatenate(rs))
        label = name if name in (CONSENSUS_ROW, dec.BUY_AND_HOLD) else f"{name} (domain replay)"
        c = list(decisions.get(name, {}).values())
        print(f"{label:<28} {out[name][0]:>7.2f} {100 * out[name][1]:>7.1f}% {100 * out[name][2]:>7.1f}% "
              f"{orders[name] if name != dec.BUY_AND_HOLD else '-':>7}  {'/'.join(map(str, c)) or '-':<22} "
              + " ".join(f"{s:+.2f}" for s in per_fold[name]))
    best = max(agents, key=lambda a: out[a][0])
    cons, bh = out[CONSENSUS_ROW], out[dec.BUY_AND_HOLD]
    met = cons[0] >= out[best][0] and cons[0] >= bh[0] and cons[1] > bh[1]
    promoted = sum(1 for p in gates if p["promote"])
    used = sum(int(p["outcomes_matched"]) for p in gates)
    print(f"\nbest agent: {best}; goal (consensus Sharpe >= best agent and buy-and-hold, smaller drawdown than "
          f"buy-and-hold): {'MET' if met else 'NOT MET'}; gate: {promoted} promoted, {len(gates) - promoted} "
          f"rejected; {used} outcomes matched into training data (summed over gate decisions); {wall:.0f}s")
    ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)  # journals, models and keys of this run only
    print(json.dumps({
        "consensus_sharpe": round(cons[0], 3),
        "best_agent_sharpe": round(out[best][0], 3),
        "buy_hold_sharpe": round(bh[0], 3),
        "consensus_max_drawdown": round(cons[1], 4),
        "buy_hold_max_drawdown": round(bh[1], 4),
        "retrains_promoted": promoted,
        "retrains_rejected": len(gates) - promoted,
        "outcomes_used": used,
    }))


def _day(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[D]"))


if __name__ == "__main__":
    main()
