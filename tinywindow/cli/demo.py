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
from pathlib import Path
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


DEMO_FILE = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    """The bundled universe (``tinywindow/configs/demo.yaml``) through ``tinywindow run``: a
    backtest, then a paper replay of the trade window's last bars through the actor graph and
    a backtest of the same bars next to it (their ledgers must be equal)."""
    from tinywindow.cli.run import run_universe
    from tinywindow.config import load

    one_time = not os.environ.get(cfg.crypto.passphrase_env)  # _prepare makes one up
    overrides = [*args.set, f"run.train.end={args.train_end}",
                 f"run.trade.start={args.trade_start}", f"run.trade.end={args.trade_end}"]
    if args.quick:
        overrides.append("run.budget=test")
    demo = _prepare(load(DEMO_FILE, overrides=[f"data_dir={cfg.data_dir}", *overrides]))
    code = run_universe(demo, "backtest", then_paper=demo.set("run.mode", "paper"), check_same=True,
                        extras=_extras)
    print(f"verify any time: tinywindow -s data_dir={demo.data_dir} verify {demo.path(demo.crypto.journal_dir)} "
          f"{demo.path(demo.agents.registry_dir, 'xgboost')}/v0001")
    if one_time:
        print(f"the keystore passphrase was made up for this run and not stored: verifying needs only the "
              f"public keys, but to load the sealed models or read the journals later (tinywindow agents evaluate, "
              f"lookahead, report, db rebuild) "
              f"set {demo.crypto.passphrase_env} before running the demo")
    return code


def _extras(engine: Any, stage: str) -> str | None:
    """The demo's HTTP probes: the served signal before trading, and at the end of the
    backtest, while its consensus is the live one."""
    if stage == "serving":
        return _probe_http(engine.cfg, engine.data)
    if stage == "backtest":
        return ("\nThe served signal is the traded signal: the same request now decides with the live consensus's "
                "learned weights and calibration\n" + _probe_http(engine.cfg, engine.data))
    return None


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
    from tinywindow.cli.run import learning_lines

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
    out.append(learning_lines(r))
    return "\n".join(out)
