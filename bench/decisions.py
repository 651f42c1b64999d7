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

Cross-sectional section (``--section xs``; issue 14): agents that score every symbol of a
bar against the others (``agents.cross_sectional``: features rank-normalised across the bar,
XGBoost as a ranker with query groups = bars, the LSTM and Transformer as shared-weight
scorers trained by PPO on the cross-sectional vector env), on a synthetic universe with
planted, decaying cross-sectional signals (``--xs-symbols`` x ``--xs-bars``, known ground
truth: the "oracle" row) and on the bundled data.  Agents train on the bars before the last
``--xs-test-fraction`` of the calendar (purged by the window), then vote on the rest, out of
sample.  Rows: each agent's information coefficient (mean per-bar Spearman correlation of its
VOTES score with the next bar's return) and the consensus's (``consensus.mode`` score: the
weighted z-score of the agents' scores, weights learned online from each realized outcome);
books traded by ``tinywindow.backtest.decisions.trade`` through ``ConsensusBook`` and
``TradingEngine`` with ``portfolio.construction`` mean-variance (long-short: net within
+-5%, long-only: fully invested), the risk checks on every order, default costs; each agent
alone through the same path; equal-weight buy-and-hold of every name.  JSON keys
``xs_consensus_ic``, ``xs_best_agent_ic``, ``xs_consensus_sharpe`` (long-short),
``xs_buy_hold_sharpe`` are of the synthetic universe.

    RAY_AUTH_MODE=token RAY_USAGE_STATS_ENABLED=0 PYTHONHASHSEED=0 .venv/bin/python bench/decisions.py
    ... bench/decisions.py --section xs    # the cross-sectional section alone
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
    ap.add_argument("--section", choices=["all", "pipeline", "xs"], default="all")
    ap.add_argument("--start", type=int, default=2015, help="first test year")
    ap.add_argument("--end", type=int, default=2019, help="test years end before this one")
    ap.add_argument("--years", type=int, default=2, help="calendar years per fold")
    ap.add_argument("--xs-symbols", type=int, default=200)
    ap.add_argument("--xs-bars", type=int, default=2520, help="10 years of daily bars")
    ap.add_argument("--xs-seed", type=int, default=7)
    ap.add_argument("--xs-window", type=int, default=16, help="feature rows each cross-sectional agent sees")
    ap.add_argument("--xs-test-fraction", type=float, default=0.3)
    ap.add_argument("--xs-rounds", type=int, default=100, help="XGBoost ranker rounds")
    ap.add_argument("--xs-iterations", type=int, default=4, help="PPO iterations of the RL scorers")
    ap.add_argument("--xs-universes", default="synthetic,bundled", help="which cross-sectional universes to run")
    args = ap.parse_args()
    figures: dict[str, Any] = {}
    if args.section in ("all", "pipeline"):
        figures.update(pipeline_section(args))
    if args.section in ("all", "xs"):
        figures.update(cross_sectional(args))
    import ray

    ray.shutdown()
    print(json.dumps(figures))


def pipeline_section(args: argparse.Namespace) -> dict[str, Any]:
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
    shutil.rmtree(root, ignore_errors=True)  # journals, models and keys of this run only
    return {
        "consensus_sharpe": round(cons[0], 3),
        "best_agent_sharpe": round(out[best][0], 3),
        "buy_hold_sharpe": round(bh[0], 3),
        "consensus_max_drawdown": round(cons[1], 4),
        "buy_hold_max_drawdown": round(bh[1], 4),
        "retrains_promoted": promoted,
        "retrains_rejected": len(gates) - promoted,
        "outcomes_used": used,
    }


def _day(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[D]"))


# --------------------------------------------------------------------------- cross-sectional
XS_AGENTS = ["xgboost", "lstm", "transformer"]


def _xs_universe(name: str, bars: Any, feats: Any, args: argparse.Namespace, truth: Any = None) -> dict[str, Any]:
    """One universe: cross-sectional agents trained before the test period, their VOTES on it,
    IC per agent and for the consensus, and books traded through ``TradingEngine`` with
    portfolio construction (``tinywindow.backtest.decisions.trade``: VOTES -> ConsensusBook in
    score mode, learning online from outcomes -> target weights -> risk-checked orders)."""
    import pyarrow as pa

    from actors.training.train import fit, training_series
    from tinywindow.backtest import decisions as dec
    from tinywindow.consensus.config import ConsensusConfig
    from tinywindow.execution.config import PortfolioConfig
    from tinywindow.execution.engine import TradingEngine
    from tinywindow.execution.events import OrderFilled
    from tinywindow.models.config import AgentConfig
    from tinywindow.models.params import PPOParams, XGBParams
    from tinywindow.models.windows import feature_names, fit_normalizer
    from tinywindow.models.xs import table_ic
    from tinywindow.portfolio.config import ConstructionConfig
    from tinywindow.risk.config import RiskConfig

    t0 = time.perf_counter()
    cal = np.unique(feats.column("ts").cast(pa.int64()).to_numpy())
    agents_cfg = AgentConfig(cross_sectional=True, window=args.xs_window)
    i_test = int(len(cal) * (1 - args.xs_test_fraction))
    test_start = int(cal[i_test])
    train_end = int(cal[i_test - agents_cfg.window])  # purged: no training label reads a close after the test start
    train = [s.between(None, train_end) for s in training_series(feats, agents_cfg)]
    norm = fit_normalizer(train, feature_names(feats))
    params = {
        "xgboost": XGBParams(rounds=args.xs_rounds, max_depth=3, eta=0.1),
        "lstm": PPOParams(iterations=args.xs_iterations, num_envs=min(64, len(train))),
        "transformer": PPOParams(iterations=args.xs_iterations, num_envs=min(64, len(train))),
    }
    lead = int(cal[max(0, i_test - agents_cfg.window - 5)])
    window_feats = feats.filter(pa.array(feats.column("ts").cast(pa.int64()).to_numpy() >= lead))
    votes: dict[str, Any] = {}
    ics: dict[str, Any] = {}
    train_s: dict[str, float] = {}
    ic_names = min(5, len(train))  # the bundled universe has 3 names: an IC over 3 is noisy, but defined
    for a in XS_AGENTS:
        t1 = time.perf_counter()
        predictor, _ = fit(a, train, norm, agents_cfg, params[a], seed=0, threads=2)
        train_s[a] = time.perf_counter() - t1
        v = predictor.predict(window_feats)
        v = v.filter(pa.array(v.column("ts").cast(pa.int64()).to_numpy() >= test_start))
        votes[a] = v
        ics[a] = table_ic(v, feats, "score", min_names=ic_names)
        print(f"  {name}: {a} trained in {train_s[a]:.0f}s, out-of-sample IC {ics[a].mean:+.4f} (t {ics[a].t_stat:+.1f})",
              flush=True)
    all_votes = pa.concat_tables([votes[a] for a in XS_AGENTS])
    min_names = min(3, len(train))
    ccfg = ConsensusConfig(mode="score", quorum=2, min_names=min_names)
    risk = RiskConfig(max_position=1.0, max_weight=1.0, max_gross=2.0, max_net=1.0, confidence_floor=0.0)
    n_names = len(train)
    cap = max(0.05, 2.0 / n_names)
    books = {
        "long-short": ConstructionConfig(method="mean_variance", long_only=False, gross=1.0, net_min=-0.05, net_max=0.05,
                                         max_weight=cap, turnover_penalty=0.0005, vol_target=0.10),
        "long-only": ConstructionConfig(method="mean_variance", long_only=True, gross=1.0, net_min=0.95, net_max=1.0,
                                        max_weight=max(cap, 1.0 / n_names + 1e-9) if n_names > 2 else 1.0,
                                        turnover_penalty=0.0005, vol_target=None),
    }
    end = int(cal[-1]) + 1
    rows: list[list[Any]] = []
    out: dict[str, Any] = {"ic": {a: ics[a].mean for a in XS_AGENTS}}
    runs: dict[str, tuple[float, float, float, float, int]] = {}

    def run_book(label: str, v: Any, agents: list[str], cons: ConsensusConfig, ccfg_: ConstructionConfig) -> Any:
        fills: list[tuple[int, float]] = []

        def hook(events: Any) -> None:
            fills.extend((e.fill.ts, float(e.fill.qty * e.fill.price)) for e in events if isinstance(e, OrderFilled))

        engine = TradingEngine(risk, PortfolioConfig(construction=ccfg_), on_commit=hook)
        run = dec.trade(label, bars, v, agents, cons, engine, test_start, end, keep_signals=True)
        notional = np.zeros(len(run.ts))
        pos = {int(t): i for i, t in enumerate(run.ts)}
        for ts, amount in fills:
            if int(ts) in pos:
                notional[pos[int(ts)]] += amount
        turnover = float(np.mean(notional[1:] / run.equity[:-1])) if len(run.ts) > 1 else 0.0
        sr, dd, tr = _stats(run.returns)
        runs[label] = (sr, dd, tr, turnover, run.orders)
        return run

    consensus_signals = {}
    for book_name, construction in books.items():
        consensus_signals[book_name] = run_book(f"consensus {book_name}", all_votes, XS_AGENTS, ccfg, construction).signals
    for a in XS_AGENTS:
        run_book(f"{a} long-short", votes[a], [a], dec.solo(ccfg).model_copy(update={"mode": "score", "min_names": min_names}),
                 books["long-short"])
    # the consensus IC: of the combined score the long-short book traded (decided bar by bar,
    # the weights learning from each realized outcome)
    sig_ic = table_ic(consensus_signals["long-short"], feats, "score", min_names=ic_names)
    # equal-weight buy-and-hold of every name from the first test close
    closes = _close_panel(bars, test_start)
    bh = np.nanmean(closes / closes[0], axis=1)
    bh_r = bh[1:] / bh[:-1] - 1.0
    sr, dd, tr = _stats(bh_r)
    runs["equal-weight buy-and-hold"] = (sr, dd, tr, 0.0, n_names)
    for label, (s, d, r, to, n) in runs.items():
        rows.append([name, label, round(s, 2), f"{100 * d:.1f}%", f"{100 * r:.1f}%", f"{100 * to:.1f}%", n])
    oracle = None if truth is None else _oracle_ic(truth, feats, test_start)
    out.update({"consensus_ic": sig_ic.mean, "consensus_ic_t": sig_ic.t_stat, "oracle_ic": oracle,
                "consensus_sharpe": runs["consensus long-short"][0], "consensus_long_only_sharpe": runs["consensus long-only"][0],
                "buy_hold_sharpe": runs["equal-weight buy-and-hold"][0], "rows": rows, "ics": ics, "train_s": train_s,
                "test_bars": int(len(cal) - i_test), "names": n_names, "seconds": time.perf_counter() - t0})
    return out


def _common_span(bars: Any) -> Any:
    """The bars between the latest first bar and the earliest last bar of the symbols (a
    cross-section needs every name trading)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ts = bars.column("ts").cast(pa.int64()).to_numpy()
    sym = np.asarray(bars.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    lo = max(ts[sym == s].min() for s in np.unique(sym))
    hi = min(ts[sym == s].max() for s in np.unique(sym))
    keep = pc.and_(pc.greater_equal(bars.column("ts").cast(pa.int64()), pa.scalar(int(lo))),
                   pc.less_equal(bars.column("ts").cast(pa.int64()), pa.scalar(int(hi))))
    return bars.filter(keep)


def _finite(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


def _close_panel(bars: Any, start: int) -> np.ndarray:
    df = bars.select(["symbol", "ts", "close"]).to_pandas()
    df["symbol"] = df["symbol"].astype(str)
    p = df.pivot(index="ts", columns="symbol", values="close").sort_index()
    ts = p.index.view("int64") if hasattr(p.index, "view") else np.asarray(p.index, dtype=np.int64)
    return p.to_numpy()[np.asarray(ts) >= start]


def _oracle_ic(truth: Any, feats: Any, start: int) -> float:
    from tinywindow.models.windows import feature_names
    from tinywindow.models.xs import information_coefficient, to_panel

    panel = to_panel(feats, feature_names(feats))
    keep = np.asarray(truth.ts) >= start
    idx = {int(t): i for i, t in enumerate(panel.ts)}
    rows = [idx[int(t)] for t in np.asarray(truth.ts)[keep] if int(t) in idx]
    exp = np.asarray(truth.expected_return)[keep][: len(rows)]
    return float(information_coefficient(exp, panel.fwd[rows]).mean)


def cross_sectional(args: argparse.Namespace) -> dict[str, Any]:
    """The cross-sectional section: the planted synthetic universe and the bundled data."""
    import ray

    from tinywindow.cli._tables import table
    from tinywindow.data import features as F
    from tinywindow.data.sources.bundled import BundledSource
    from tinywindow.data.sources.synthetic import generate_xs

    if not ray.is_initialized():
        ray.init("local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    results: dict[str, dict[str, Any]] = {}
    universes = [u.strip() for u in args.xs_universes.split(",") if u.strip()]
    if "synthetic" in universes:
        bars, truth = generate_xs(args.xs_symbols, args.xs_bars, seed=args.xs_seed)
        print(f"\ncross-sectional: synthetic universe {args.xs_symbols} symbols x {args.xs_bars} bars with planted "
              f"signals (seed {args.xs_seed}); last {100 * args.xs_test_fraction:.0f}% of bars out of sample", flush=True)
        results["synthetic"] = _xs_universe("synthetic", bars, F.compute(bars), args, truth)
    if "bundled" in universes:
        real = _common_span(BundledSource("bundled", ("sp500", "nasdaq", "goog")).table())
        span = [str(np.datetime64(int(x), "ns").astype("datetime64[D]")) for x in
                (real.column("ts").cast("int64").to_numpy().min(), real.column("ts").cast("int64").to_numpy().max())]
        print(f"cross-sectional: bundled data (S&P 500, NASDAQ, GOOG daily, {span[0]}..{span[1]} where all three "
              "trade; an IC over 3 names is noisy)", flush=True)
        results["bundled"] = _xs_universe("bundled", real, F.compute(real), args)
    rows = [r for res in results.values() for r in res["rows"]]
    print("\nCross-sectional books, out of sample, through TradingEngine with portfolio construction "
          "(mean-variance, Ledoit-Wolf covariance), costs as configured")
    print(table(rows, ["universe", "book", "Sharpe", "max DD", "return", "turnover/bar", "orders"]))
    ic_rows = []
    for uni, res in results.items():
        for a in XS_AGENTS:
            ic = res["ics"][a]
            ic_rows.append([uni, a, f"{ic.mean:+.4f}", f"{ic.t_stat:+.1f}", ic.n_bars, f"{res['train_s'][a]:.0f}s"])
        ic_rows.append([uni, "consensus (score mode)", f"{res['consensus_ic']:+.4f}", f"{res['consensus_ic_t']:+.1f}", "", ""])
        if res["oracle_ic"] is not None:
            ic_rows.append([uni, "oracle (planted truth)", f"{res['oracle_ic']:+.4f}", "", "", ""])
    print("\nInformation coefficient (mean per-bar Spearman of score vs next-bar return), out of sample")
    print(table(ic_rows, ["universe", "scorer", "IC", "t", "bars", "train"]))
    out: dict[str, Any] = {}
    if "synthetic" in results:
        syn = results["synthetic"]
        best = max(XS_AGENTS, key=lambda a: syn["ic"][a])
        met = syn["consensus_ic"] >= syn["ic"][best]
        print(f"goal (synthetic: consensus IC >= best agent's IC, {best} {syn['ic'][best]:+.4f}): "
              f"{'MET' if met else 'NOT MET'}")
        out.update({
            "xs_consensus_ic": round(syn["consensus_ic"], 4),
            "xs_best_agent_ic": round(syn["ic"][best], 4),
            "xs_consensus_sharpe": round(syn["consensus_sharpe"], 3),
            "xs_buy_hold_sharpe": round(syn["buy_hold_sharpe"], 3),
            "xs_long_only_sharpe": round(syn["consensus_long_only_sharpe"], 3),
            "xs_oracle_ic": None if syn["oracle_ic"] is None else round(syn["oracle_ic"], 4),
            "xs_goal_met": met,
        })
    if "bundled" in results:
        out.update({
            "xs_bundled_consensus_ic": _finite(results["bundled"]["consensus_ic"]),
            "xs_bundled_best_agent_ic": _finite(max(results["bundled"]["ic"].values())),
            "xs_bundled_consensus_sharpe": _finite(results["bundled"]["consensus_sharpe"]),
            "xs_bundled_buy_hold_sharpe": _finite(results["bundled"]["buy_hold_sharpe"]),
        })
    return out

if __name__ == "__main__":
    main()
