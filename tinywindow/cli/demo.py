"""``tinywindow demo``: the whole engine on bundled real data, on an embedded Ray cluster.

1. Layer 1: one DataSourceActor per bundled dataset (+ a synthetic one) loads, validates,
   featurizes and persists (encrypted) its bars; FEATURES travel through the object store.
2. Layer 2: LSTM and Transformer PPO agents (RLlib) and an XGBoost agent train in parallel
   on data before ``--train-end``; each version is signed into the model registry.
3. Serving: every agent's model goes live on Ray Serve behind the authenticated gateway;
   AgentActors predict through their deployments.
4. Layer 3: the S&P 500 and NASDAQ are traded out of sample, bar by bar: votes -> consensus
   -> risk-checked orders -> paper fills; outcomes train the consensus weights and each
   agent's own experience.  Every ``agents.retrain_every_bars`` bars all three agents
   retrain on the features up to that bar and their own outcomes; ``retrain_lag_bars``
   later the promotion gate decides (champion vs challenger, both scores printed) and a
   promoted version goes live on Serve without downtime.
5. Layer 4: journals verified, encrypted segments counted.

Everything is written under ``<data_dir>/demo`` (wiped at the start).  Secrets: the keystore
passphrase and the serving token come from TW_PASSPHRASE / TW_SERVING__TOKEN, or are
generated for this run and never printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import time
from typing import Any

from tinywindow.config import Config
from tinywindow.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the engine end to end on bundled real data (make demo)")
    p.add_argument("--train-end", default="2015-01-01", help="agents train on data before this date")
    p.add_argument("--trade-start", default="2015-01-01")
    p.add_argument("--trade-end", default="2019-01-01")
    p.add_argument("--quick", action="store_true", help="tiny training budgets (a smoke run)")
    p.set_defaults(func=cmd_demo)


def _prepare(cfg: Config) -> Config:
    """A fresh demo directory, a keystore and a serving token for this run."""
    from tinywindow.cli._storage import state_root
    from tinywindow.core.log import register_secret
    from tinywindow.crypto.keystore import KeyStore

    cfg = state_root(cfg, "tinywindow demo")  # before anything is written (or wiped)
    on_cluster = bool(cfg.ray.address or os.environ.get("RAY_ADDRESS"))
    missing = [v for v in (cfg.crypto.passphrase_env, "TW_SERVING__TOKEN") if not os.environ.get(v)]
    if on_cluster and missing:
        raise ConfigError(
            f"on a running cluster the actors read {' and '.join(missing)} from their own environment: "
            "export them where `ray start` runs on every node (secrets never travel in job arguments)"
        )
    root = cfg.path("demo")
    shutil.rmtree(root, ignore_errors=True)
    passphrase = os.environ.get(cfg.crypto.passphrase_env) or secrets.token_urlsafe(24)
    token = os.environ.get("TW_SERVING__TOKEN") or secrets.token_urlsafe(32)
    # Set before Ray starts: the actors of the embedded cluster inherit them.
    os.environ[cfg.crypto.passphrase_env] = passphrase
    os.environ["TW_SERVING__TOKEN"] = token
    register_secret(passphrase)
    register_secret(token)
    demo = cfg.set("data_dir", str(root)).set("data.persist", True).set("crypto.journal_fsync", False)
    KeyStore.init(demo.path(demo.crypto.keystore_dir), passphrase, scrypt_log2_n=15)
    return demo


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    from actors import pipeline, serving
    from actors.runtime import connect, shutdown
    from tinywindow.cli._tables import iso, table
    from tinywindow.models.params import DEMO_BUDGET, TEST_BUDGET
    from tinywindow.serving.auth import serving_token, token_digest

    t0 = time.perf_counter()
    one_time = not os.environ.get(cfg.crypto.passphrase_env)  # _prepare makes one up
    cfg = _prepare(cfg)
    connect(cfg)
    print(f"Ray up in {time.perf_counter() - t0:.1f}s; writing under {cfg.data_dir}")

    # Layer 1 ---------------------------------------------------------------------------
    data = pipeline.start_data(cfg, pipeline.DEMO_SOURCES)
    rows = [
        [d["name"], d["kind"], len(d["symbols"]), d["rows"], iso(d["first_ts"]), iso(d["last_ts"]),
         d["feature_rows_complete"], d["quarantined"], len(d["segments"])]
        for d in data.summary
    ]
    print(f"\n== Layer 1: market data -> DataSourceActors -> object store ({data.seconds:.1f}s)")
    print(table(rows, ["source", "kind", "symbols", "bars", "first", "last", "feature rows",
                       "quarantined", "encrypted segments"]))

    # Layer 2 ---------------------------------------------------------------------------
    features = pipeline.features_of(data, ["sp500", "nasdaq", "goog"], None, args.train_end)
    budget = TEST_BUDGET if args.quick else DEMO_BUDGET
    print(f"\n== Layer 2: training {', '.join(pipeline.AGENTS)} in parallel on {features.num_rows:,} feature rows "
          f"before {args.train_end} ...", flush=True)
    agents = pipeline.start_agents(cfg, features, {k: dict(v) for k, v in budget.items()})
    rows = []
    for a, r in agents.trained.items():
        v, b = r["validation"], r["buy_and_hold"]
        rows.append([a, r["version"], r["seconds"], v["sharpe"], b["sharpe"], v["hit_rate"], v["turnover"]])
    print(f"trained in {agents.seconds:.0f}s; validation = the last {cfg.agents.valid_bars} bars before "
          f"{args.train_end}, after a {cfg.agents.embargo_bars or cfg.agents.window}-bar gap")
    print(table(rows, ["agent", "version", "train s", "val Sharpe", "buy&hold Sharpe", "hit rate", "turnover/yr"]))

    # Serving ---------------------------------------------------------------------------
    import ray

    digest = token_digest(serving_token(cfg.serving))
    versions = {a: r["version"] for a, r in agents.trained.items()}
    t1 = time.perf_counter()
    serving.start(cfg, list(versions), digest, dict(versions))
    ray.get([actor.attach_serving.remote(serving.APP_NAME) for actor in agents.actors.values()])
    s = cfg.serving
    print(f"\n== Serving: {len(versions)} deployments + gateway up in {time.perf_counter() - t1:.1f}s: "
          f"http://{s.host}:{s.http_port}/v1/votes|signal|models (bearer token), gRPC {s.host}:{s.grpc_port}")
    print(_probe_http(cfg, data))

    # Layer 3 ---------------------------------------------------------------------------
    print(f"\n== Layer 3: trading SP500 + NASDAQ {args.trade_start} .. {args.trade_end} (out of sample), "
          "bar by bar through consensus, risk and the paper broker")
    report = pipeline.run_trading(cfg, data, agents, ["sp500", "nasdaq"], args.trade_start, args.trade_end, say=print)
    print(_trading_table(cfg, report))
    print("\nThe served signal is the traded signal: the same request now decides with the live consensus's "
          "learned weights and calibration")
    print(_probe_http(cfg, data))

    # Layer 4 ---------------------------------------------------------------------------
    segments = sum(len(d["segments"]) for d in data.summary)
    print("\n== Layer 4: post-quantum storage")
    print(f"portfolio journal: {'verified' if report.journal['ok'] else 'FAILED'} ({report.journal['report']})")
    print(f"{segments} encrypted, signed market-data segments; models signed under {cfg.path('models')}")
    print(f"verify any time: tinywindow -s data_dir={cfg.data_dir} verify {cfg.path('journal')} "
          f"{cfg.path('models', 'xgboost')}/v0001")
    if one_time:
        print(f"the keystore passphrase was made up for this run and not stored: verifying needs only the "
              f"public keys, but to load the sealed models later (tinywindow agents evaluate, lookahead) "
              f"set {cfg.crypto.passphrase_env} before running the demo")

    # The agents hold deployment handles: they go before Serve, Serve before Ray.
    shutdown(agents.actors.values())
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f}s")
    return 0 if report.journal["ok"] else 1


def _probe_http(cfg: Config, data: Any) -> str:
    """One authenticated /v1/signal call and one without the token, as a client would."""
    import math

    import httpx
    import pyarrow as pa

    from actors import pipeline
    from tinywindow.contracts import symbol_codes
    from tinywindow.data.history import tail_indices

    f = pipeline.features_of(data, ["sp500", "nasdaq"])
    f = f.take(pa.array(tail_indices(symbol_codes(f), cfg.agents.window)))
    cols: dict[str, Any] = {"symbol": [str(x) for x in f.column("symbol").to_pylist()],
                            "ts": f.column("ts").cast(pa.int64()).to_pylist()}
    for name in f.column_names[2:]:
        cols[name] = [None if v is None or math.isnan(v) else v for v in f.column(name).to_pylist()]
    url = f"http://127.0.0.1:{cfg.serving.http_port}"
    token = os.environ["TW_SERVING__TOKEN"]
    with httpx.Client(base_url=url, timeout=60) as c:
        denied = c.post("/v1/signal", json={"features": cols, "latest_only": True}).status_code
        r = c.post("/v1/signal", json={"features": cols, "latest_only": True},
                   headers={"Authorization": f"Bearer {token}"})
        r.raise_for_status()
    lines = [f"POST /v1/signal without token -> {denied}; with token -> {r.status_code}:"]
    for sig in r.json()["signals"]:
        lines.append(f"  {sig['symbol']} {sig['ts'][:10]}: action {sig['action']:+d}, confidence "
                     f"{sig['confidence']:.2f}, {sig['reason']}")
    return "\n".join(lines)


def _trading_table(cfg: Config, r: Any) -> str:
    from tinywindow.backtest.metrics import summarize
    from tinywindow.cli._tables import table

    start = cfg.portfolio.initial_cash_usd
    ours = summarize([start, *r.equity])
    bench = summarize([start, *r.benchmark_equity])
    rows = [
        ["TinyWindow consensus", ours.total_return, ours.cagr, ours.sharpe, ours.max_drawdown, ours.volatility],
        ["buy & hold (equal weight)", bench.total_return, bench.cagr, bench.sharpe, bench.max_drawdown, bench.volatility],
    ]
    snap = r.snapshot
    out = [table(rows, ["strategy", "total return", "CAGR", "Sharpe", "max drawdown", "volatility"])]
    sides = getattr(r, "order_sides", {}) or {}
    out.append(f"{len(r.times)} bars in {r.seconds:.0f}s; signals {r.signals}; {r.orders} orders "
               f"({sides.get('buy', 0)} buy, {sides.get('sell', 0)} sell); "
               f"{snap['closed_trades']} closed trades; fees {float(snap['fees']):,.2f}; final state {snap['state']}; "
               f"{len(r.risk_events)} risk events; {r.outcomes} outcomes fed back")
    out.append("consensus weights (learned from outcomes): "
               + ", ".join(f"{a} {w:.2f}" for a, w in sorted(r.weights.items())))
    promos = getattr(r, "promotions", [])
    if promos:
        kept = sum(1 for p in promos if p["promote"])
        out.append(f"retrains: {len(promos)} decided at fixed bars, {kept} promoted, {len(promos) - kept} rejected; "
                   f"{sum(p['outcomes_matched'] for p in promos)} realized outcomes matched into their training data (summed)")
        for p in promos:
            champ = "n/a" if p["champion"] is None else f"{p['champion']:.2f}"
            out.append(f"  bar {p['bar']} ({p['day']}) {p['agent']} {p['version']} <- {p['parent']}: "
                       f"{'promoted' if p['promote'] else 'rejected'}, {p['metric']} {p['challenger']:.2f} vs champion "
                       f"{champ}, {p['outcomes_matched']} outcomes ({p['outcomes_used_as']}), {p['seconds']}s")
    for a, st in sorted(r.retrains.items()):
        exp = st.get("experience", {})
        out.append(f"  {a}: serving {st['version']}, {exp.get('outcomes', exp.get('size', '?'))} outcomes buffered"
                   + (f", last error {st['last_error']}" if st.get("last_error") else ""))
    return "\n".join(out)
