"""``tinywindow run -c UNIVERSE.yaml --mode backtest|paper|live``; ``tinywindow status``;
``tinywindow stop``.

A run loads every source of ``data.sources`` into its DataSourceActor, makes the plan
``tinywindow config check`` prints (and refuses what it would refuse), trains the agents of
``run.agents`` on the training window of ``run.train_sources`` (or starts each from the
version its registry already serves: a second run of a universe trades the models the first
one left, unless ``run.retrain_models``), puts them live on Ray Serve, then trades:

* ``backtest``: the trade window in vectorised batches of ``run.period_bars`` bars per agent
  call, bar by bar through consensus, risk and the paper broker, with the walk-forward
  retrains and promotion gate of ``agents.retrain_every_bars``.
* ``paper``: the trade window (its last ``run.paper.bars`` bars, when set) replayed as a live
  stream at ``run.paper.speed`` through the actor graph (``actors/graph.py``); a gRPC source in
  ``run.trade_sources`` is followed as a live feed instead.
* ``live``: the same graph, on a gRPC feed (required), through the ``Broker`` port; the paper
  broker is the only one shipped (``docs/brokers.md`` says how to write an adapter).

SIGINT / SIGTERM: the bars in flight finish, checkpoints are written, actors and Serve are torn
down; the next ``run`` of the same universe resumes after the last bar the portfolio journaled.
Everything lands under ``data_dir``; ``<data_dir>/summary.json`` holds the figures per mode.

``status`` and ``stop`` attach to an engine on a running cluster (``ray.address`` or
``RAY_ADDRESS``): its actors are named ``<run>-<mode>-*`` in ``run.namespace`` and detached.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinywindow.config import Config
from tinywindow.errors import ConfigError

if TYPE_CHECKING:
    from tinywindow.cli._engine import Engine


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run a universe (-c FILE): --mode backtest | paper | live")
    p.add_argument("--mode", choices=["backtest", "paper", "live"], help="default: run.mode of the config")
    p.set_defaults(func=cmd_run)
    s = sub.add_parser("status", help="the engines running on the cluster (ray.address / RAY_ADDRESS)")
    s.add_argument("--namespace", help="only this namespace (default: all)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_status)
    t = sub.add_parser("stop", help="stop a running engine: bars in flight finish, checkpoints are written")
    t.add_argument("name", nargs="?", help="the graph's name (<run>-<mode>-graph); default: the only one running")
    t.add_argument("--namespace", help="its namespace (default: any)")
    t.set_defaults(func=cmd_stop)


def _secrets(cfg: Config) -> None:
    """The keystore passphrase (environment or prompt) and a serving token (environment or a
    fresh one for this run) in this process's environment before Ray starts: the actors of an
    embedded cluster inherit them.  The keystore is created on first use."""
    from tinywindow.cli.keys import read_passphrase
    from tinywindow.core.log import register_secret
    from tinywindow.crypto import get_backend, keystore_dir
    from tinywindow.crypto.keystore import INDEX, KeyStore

    on_cluster = bool(cfg.ray.address or os.environ.get("RAY_ADDRESS"))
    missing = [v for v in (cfg.crypto.passphrase_env, "TW_SERVING__TOKEN") if not os.environ.get(v)]
    if on_cluster and missing:
        raise ConfigError(
            f"on a running cluster the actors read {' and '.join(missing)} from their own environment: "
            "export them where `ray start` runs on every node (secrets never travel in job arguments)")
    directory = keystore_dir(cfg.crypto, cfg.data_dir)
    fresh = not (directory / INDEX).exists()
    passphrase = read_passphrase(cfg, confirm=fresh)
    os.environ[cfg.crypto.passphrase_env] = passphrase
    token = os.environ.get("TW_SERVING__TOKEN") or secrets.token_urlsafe(32)
    os.environ["TW_SERVING__TOKEN"] = token
    register_secret(token)
    if fresh:
        KeyStore.init(directory, passphrase, backend=get_backend(cfg.crypto.backend))
        print(f"created a keystore in {directory}")


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli._storage import state_root

    cfg = state_root(cfg, "tinywindow run")  # refuses a job's throw-away working directory
    mode = args.mode or cfg.run.mode
    cfg = cfg.set("run.mode", mode)
    trade = cfg.run.trade_sources or [s.name for s in cfg.data.sources]
    if mode == "live" and not any(s.kind == "grpc" and s.name in trade for s in cfg.data.sources):
        raise ConfigError("live mode trades a live feed: give run.trade_sources a source of kind 'grpc'", key="run.mode")
    _secrets(cfg)
    return run_universe(cfg, mode)


def run_universe(
    cfg: Config,
    mode: str,
    then_paper: Config | None = None,
    check_same: bool = False,
    extras: Callable[[Any, str], str | None] = lambda engine, stage: None,
) -> int:
    """Start the engine on ``cfg``'s universe and trade ``mode``; ``then_paper``: afterwards a
    paper replay with that config on the same engine (the demo), and with ``check_same`` a
    backtest of the same bars and models next to it, whose ledger must equal the replay's.
    ``extras(engine, stage)`` after serving starts (``"serving"``) and at the end of each
    trading run, while its consensus is still live (its mode): what it returns is printed."""
    from actors.runtime import connect
    from tinywindow.cli._engine import Engine, StopFlag

    t0 = time.perf_counter()
    connect(cfg)
    on_cluster = bool(cfg.ray.address or os.environ.get("RAY_ADDRESS"))
    engine = Engine(cfg, detached=on_cluster)
    stop = StopFlag()
    ok = True
    try:
        with stop.signals():
            print(f"Ray up in {time.perf_counter() - t0:.1f}s; writing under {cfg.data_dir}")
            _data(engine)
            print("\n".join(engine.plan.lines()))
            _agents(engine)
            print(f"\n== Serving: {len(engine.versions)} deployments + gateway up in {engine.start_serving():.1f}s: "
                  f"http://{cfg.serving.host}:{cfg.serving.http_port}/v1/votes|signal|models (bearer token), "
                  f"gRPC {cfg.serving.host}:{cfg.serving.grpc_port}")
            _print(extras(engine, "serving"))
            if not stop():  # a signal during start-up: nothing is traded
                ok = _trade(engine, mode, cfg, stop, lambda: extras(engine, mode)) and ok
            if then_paper is not None and not stop():
                ok = _trade(engine, "paper", then_paper, stop, lambda: extras(engine, "paper")) and ok
                if check_same and not stop():
                    ok = _same_as_backtest(engine, then_paper, stop) and ok
            if engine.data is not None:
                segments = sum(len(d["segments"]) for d in engine.data.summary)
                print(f"\n== Storage: {segments} encrypted, signed market-data segments; journals under "
                      f"{cfg.path(cfg.crypto.journal_dir)}; models signed under {cfg.path(cfg.agents.registry_dir)}")
    finally:
        engine.stop()
    runs = [(cfg, mode)] + ([(then_paper, "paper")] if then_paper is not None else [])
    for i, (c, m) in enumerate(runs):
        write_report(c, m, cfg.path("report.html" if i == 0 else f"report-{m}.html"))
    print(f"\nsummary: {cfg.path('summary.json')}")
    print(f"run finished in {time.perf_counter() - t0:.0f}s" + (f" (stopped by {stop.reason})" if stop() else ""))
    return 0 if ok else 1


def write_report(cfg: Config, mode: str, path: Path) -> None:
    """The run's self-contained HTML report (``tinywindow report``), read back from its journals
    and registry, and the whole run projected into the SQL trade store (the PortfolioActor
    projected the orders, fills and equity as it traded; signals, votes, outcomes, weights and
    model versions are added here, as ``db rebuild`` would).  A report or store that cannot be
    written is said and skipped: the journals are the record either way."""
    from tinywindow.cli.keys import read_passphrase
    from tinywindow.crypto import open_keystore
    from tinywindow.errors import TinyWindowError
    from tinywindow.records import load_run
    from tinywindow.report import build_report

    t0 = time.perf_counter()
    try:
        keys = open_keystore(cfg.crypto, cfg.data_dir, read_passphrase(cfg))
        records = load_run(Path(cfg.data_dir), cfg.run.name, mode, keys, risk=cfg.risk, portfolio=cfg.portfolio,
                           journal_dir=cfg.crypto.journal_dir, registry_dir=cfg.agents.registry_dir)
        page = build_report(records, title=f"TinyWindow {cfg.run.name} ({mode})")
    except TinyWindowError as exc:
        print(f"report ({mode}): not written: {exc}")
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    print(f"report ({mode}): {path} ({len(page.encode()) / 1e6:.1f} MB, {time.perf_counter() - t0:.1f}s; "
          f"open it in a browser, it needs no network)")
    if cfg.storage.sql_store:
        from tinywindow.cli.db import open_store

        try:
            store = open_store(cfg, must_exist=False)
            try:
                store.project(records)
            finally:
                store.close()
        except TinyWindowError as exc:
            print(f"trade store ({mode}): not updated: {exc}")
            return
        print(f"trade store ({mode}): {store.safe_url} ({len(records.fills):,} fills, {len(records.signals):,} signals, "
              f"{len(records.votes):,} votes)")


def _data(engine: Engine) -> None:
    from tinywindow.cli._tables import iso, table

    summary = engine.start_data(print)
    rows = [[d["name"], d["kind"], len(d["symbols"]), d["rows"], iso(d["first_ts"]), iso(d["last_ts"]),
             d["feature_rows_complete"], d["quarantined"], len(d["segments"])] for d in summary]
    print(f"\n== Data: sources -> DataSourceActors -> object store ({engine.data.seconds:.1f}s)")
    print(table(rows, ["source", "kind", "symbols", "bars", "first", "last", "feature rows", "quarantined",
                       "encrypted segments"]))


def _agents(engine: Engine) -> None:
    from tinywindow.cli._tables import table

    run = engine.cfg.run
    print(f"\n== Agents: {', '.join(run.agents)} on {engine.plan.train_rows:,} bars before {run.train.end} "
          f"(budget {run.budget}) ...", flush=True)
    trained = engine.start_agents(print)
    rows = []
    for a, r in trained.items():
        if not r.get("trained"):
            rows.append([a, r["version"], "kept (registry)", None, None, None, None])
            continue
        v, b = r["validation"], r["buy_and_hold"]
        rows.append([a, r["version"], r["seconds"], v["sharpe"], b["sharpe"], v["hit_rate"], v["turnover"]])
    print(f"agents ready in {engine.agents.seconds:.0f}s; validation = the last {engine.cfg.agents.valid_bars} bars "
          f"before {run.train.end}")
    print(table(rows, ["agent", "version", "train s", "val Sharpe", "buy&hold Sharpe", "hit rate", "turnover/yr"]))


def _print(text: str | None) -> None:
    if text:
        print(text)


def _trade(engine: Engine, mode: str, cfg: Config, stop: Any, before_teardown: Callable[[], str | None]) -> bool:
    run = cfg.run
    if mode == "backtest":
        print(f"\n== Backtest {run.trade.start} .. {run.trade.end} (out of sample): vectorised votes every "
              f"{run.period_bars} bars, bar by bar through consensus, risk and the paper broker")
    else:
        what = f"the last {run.paper.bars} bars of " if run.paper.bars else ""
        speed = "as fast as the graph takes them" if run.paper.speed == 0 else f"at {run.paper.speed:g}x"
        print(f"\n== {mode.capitalize()}: {what}{run.trade.start} .. {run.trade.end} replayed as a stream {speed}, "
              "bar by bar through the actor graph (source -> agents via Serve -> consensus -> portfolio)")
    shown: list[str | None] = []
    s = engine.trade(mode, cfg, say=print, should_stop=stop, before_teardown=lambda: shown.append(before_teardown()))
    print(describe(s))
    if s.get("report") is not None:  # a backtest: what it learned
        print(learning_lines(s["report"]))
    for text in shown:
        _print(text)
    return bool(s["journal_verified"]) and s.get("state", "finished") != "failed"


def _same_as_backtest(engine: Engine, paper: Config, stop: Any) -> bool:
    """A backtest of the paper replay's bars with the same models (retrains off) next to it."""
    import json as _json

    doc = _json.loads(paper.path("summary.json").read_text())
    replay = doc["paper"]
    check = (paper.set("run.name", f"{paper.run.name}-check").set("agents.retrain_every_bars", 0)
             .set("run.trade.start", replay["first"]))
    print(f"\n== Check: a backtest of the replay's {replay['bars']} bars with the same models")
    s = engine.trade("backtest", check, say=lambda _: None, should_stop=stop, key="paper_check")
    same = s["ledger_digest"] == replay["ledger_digest"] and s["orders"] == replay["orders"]
    print(f"backtest {s['orders']} orders, ledger {s['ledger_digest'][:16]}; paper replay {replay['orders']} orders, "
          f"ledger {replay['ledger_digest'][:16]}: {'the same ledger' if same else 'DIFFERENT'}")
    doc = _json.loads(paper.path("summary.json").read_text())
    doc["paper"]["same_ledger_as_backtest"] = same
    paper.path("summary.json").write_text(_json.dumps(doc, indent=2, sort_keys=True, default=str))
    return same


def describe(s: dict[str, Any]) -> str:
    from tinywindow.cli._tables import table

    m = s["metrics"]
    rows = [[f"TinyWindow consensus ({s['mode']})", *(m["book"][k] for k in ("total_return", "cagr", "sharpe",
                                                                             "max_drawdown", "volatility"))],
            ["buy & hold (equal weight)", *(m["buy_and_hold"][k] for k in ("total_return", "cagr", "sharpe",
                                                                           "max_drawdown", "volatility"))]]
    out = [table(rows, ["strategy", "total return", "CAGR", "Sharpe", "max drawdown", "volatility"])]
    sides = s["order_sides"]
    out.append(f"{s['bars']} bars {s['first']} .. {s['last']} in {s['seconds']:.0f}s; signals {s['signals']}; "
               f"{s['orders']} orders ({sides.get('buy', 0)} buy, {sides.get('sell', 0)} sell"
               + (f"; {s['orders_this_run']} by this run" if s.get("resumed_after") else "") + "); "
               f"{s['closed_trades']} closed trades; fees {float(s['fees']):,.2f}; {s['risk_events']} risk events; "
               f"{s['outcomes']} outcomes fed back; journal {'verified' if s['journal_verified'] else 'FAILED'}")
    out.append("agents: " + "; ".join(f"{a} serving {v['serving']} (voted {'/'.join(v['voted'])})"
                                      for a, v in s["agents"].items()))
    if "latency_ms" in s:
        lat = s["latency_ms"]
        out.append(f"bar -> orders latency through the graph: p50 {lat['p50']} ms, p99 {lat['p99']} ms "
                   f"({lat['n']} bars); at most {s['max_inflight_seen']} of {s['max_inflight']} bars in flight")
    if s.get("state") == "stopped" or s.get("stopped"):
        out.append(f"stopped after {s['bars']} bars (last {s['last']}): the next run resumes after it")
    if s.get("resumed_after"):
        out.append(f"resumed after {s['resumed_after']} (bars before were traded by the stopped run)")
    if s.get("state") == "failed" or s.get("error"):
        out.append(f"FAILED: {s.get('error')}")
    out.append(f"ledger digest {s['ledger_digest']}")
    return "\n".join(out)


def learning_lines(r: Any) -> str:
    """The consensus weights, every gate decision and each agent's buffer of a backtest
    (``pipeline.TradingReport``)."""
    out = ["consensus weights (learned from outcomes): " + ", ".join(f"{a} {w:.2f}" for a, w in sorted(r.weights.items()))]
    promos = getattr(r, "promotions", [])
    if promos:
        kept = sum(1 for p in promos if p["promote"])
        out.append(f"retrains: {len(promos)} decided at fixed bars, {kept} promoted, {len(promos) - kept} rejected; "
                   f"{sum(p['outcomes_matched'] for p in promos)} realized outcomes matched into their training data (summed)")
    for p in promos:
        champ = "n/a" if p["champion"] is None else f"{p['champion']:.2f}"
        chal = "n/a" if p["challenger"] is None else f"{p['challenger']:.2f}"  # n/a: the retrain was lost
        out.append(f"  bar {p['bar']} ({p['day']}) {p['agent']} {p['version']} <- {p['parent']}: "
                   f"{'promoted' if p['promote'] else 'rejected'}, {p['metric']} {chal} vs champion "
                   f"{champ}, {p['outcomes_matched']} outcomes ({p['outcomes_used_as']}), {p['seconds']}s")
    for a, st in sorted(r.retrains.items()):
        exp = st.get("experience", {})
        out.append(f"  {a}: serving {st['version']}, {exp.get('outcomes', exp.get('size', '?'))} outcomes buffered"
                   + (f", last error {st['last_error']}" if st.get("last_error") else ""))
    return "\n".join(out)


# ---------------------------------------------------------------------------- status / stop


def _attach(cfg: Config) -> None:
    from actors.runtime import connect

    if not (cfg.ray.address or os.environ.get("RAY_ADDRESS")):
        raise ConfigError("status and stop attach to an engine on a running cluster: set ray.address "
                          "(-s ray.address=HOST:6379) or RAY_ADDRESS", key="ray.address")
    connect(cfg)


def cmd_status(args: argparse.Namespace, cfg: Config) -> int:
    import ray

    from actors.graph import find_graphs

    _attach(cfg)
    graphs = find_graphs(args.namespace)
    out: list[dict[str, Any]] = []
    for ns, name in graphs:
        try:
            got: Any = ray.get(ray.get_actor(name, namespace=ns).status.remote(), timeout=30)
            out.append({"namespace": ns, **dict(got)})
        except Exception as exc:  # a graph that went away between listing and asking
            out.append({"namespace": ns, "name": name, "state": "unreachable", "error": f"{type(exc).__name__}: {exc}"})
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    elif not out:
        print("no engine running")
    for st in [] if args.json else out:
        lat = st.get("latency_ms") or {}
        print(f"{st['namespace']}/{st['name']}: {st['state']}, {st.get('bars', 0)} bars, equity {st.get('equity')}, "
              f"{st.get('orders', 0)} orders, in flight {st.get('inflight')}/{st.get('max_inflight')}, "
              f"p99 {lat.get('p99')} ms" + (f", error {st['error']}" if st.get("error") else ""))
    return 0


def cmd_stop(args: argparse.Namespace, cfg: Config) -> int:
    import ray

    from actors.graph import find_graphs

    _attach(cfg)
    graphs = [g for g in find_graphs(args.namespace) if args.name is None or g[1] == args.name]
    if not graphs:
        raise ConfigError(f"no running engine{' named ' + args.name if args.name else ''}", key="name")
    if len(graphs) > 1:
        raise ConfigError("several engines run: name one of " + ", ".join(f"{n} (namespace {ns})" for ns, n in graphs),
                          key="name")
    ns, name = graphs[0]
    state = str(ray.get(ray.get_actor(name, namespace=ns).stop.remote(), timeout=cfg.run.paper.stall_s + 60))
    print(f"{ns}/{name}: {state}")
    return 0 if state in ("stopped", "finished") else 1
