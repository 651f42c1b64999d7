"""Bar -> order decision latency through the live actor graph, against the same functions in
one process (the floor); plus the event engine's and the gRPC feed's throughput (issue 13).

Decision latency, per bar: from the moment the GraphActor releases the bar into the graph
(``GraphActor._submit`` begins: BARS and FEATURES put in the object store, the calls
submitted) until that bar's ORDERS are resolved, i.e. the chain

    AgentActor.predict x3 (each through its Ray Serve deployment, latest_only=True)
      -> ConsensusActor.on_agent_votes -> PortfolioActor.step (risk, orders, paper fills, journal)

measured inside the GraphActor (``GraphStats.decision_ms``).  ``run.paper.max_inflight=1``:
each bar goes through the graph alone (the next bar is released only when this one's
learn + feedback are done too), so no bar queues behind another.  The FEATURES window is
computed by the DataSourceActor before it releases the bar (``_tail_features``) and is not
part of the decision; its cost is shown apart.  The first ``--warmup`` bars of every run are
left out of the figures (first Serve calls, lazy imports).

The floor runs the same bars and the same signed model versions through the same classes in
one process, without Ray: ``AgentActor.predict`` (its in-process ``Predictor``), then
``ConsensusActor.on_agent_votes``, ``PortfolioActor.step`` (then ``learn`` and
``feedback_own``, timed apart), each constructed in-process with its own journal.
``vs_in_process`` = graph decision p99 / floor decision p99, one symbol.

Data: the seeded synthetic generator; agents train with ``TEST_BUDGET`` on the 50-symbol
source's first ``--train-bars`` bars (the models are per row: symbol-agnostic), consensus and
risk thresholds are permissive so that orders are actually decided.  Journals fsync every
append (``crypto.journal_fsync=true``, the default of a paper or live run) unless
``--no-fsync``.

    .venv/bin/python bench/latency.py [--bars 2000] [--skip-engine] [--skip-feed] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

GOAL_P99_MS = 20.0
PASSPHRASE_ENV = "TW_PASSPHRASE"
TOKEN_ENV = "TW_SERVING__TOKEN"


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile as ``GraphActor.status`` computes it (nearest rank, sorted)."""
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"n": len(values), "p50": pct(values, 0.5), "p99": pct(values, 0.99),
            "mean": sum(values) / len(values) if values else float("nan"), "max": max(values, default=float("nan"))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- set-up


def make_config(root: Path, n1: int, n50: int, bars: int, fsync: bool) -> Any:
    from tinywindow.config import Config
    from tinywindow.data.config import SourceConfig

    http = free_port()
    grpc = free_port()
    while grpc == http:
        grpc = free_port()
    sources = [SourceConfig(name="lat1", kind="synthetic", n_symbols=n1, n_bars=bars, seed=11).model_dump(mode="json"),
               SourceConfig(name="lat50", kind="synthetic", n_symbols=n50, n_bars=bars, seed=12).model_dump(mode="json")]
    return (
        Config()
        .set("data_dir", str(root))
        .set("data.persist", False)
        .set("data.sources", sources)
        .set("crypto.journal_fsync", fsync)
        .set("agents.retrain_every_bars", 0)  # the same models throughout
        .set("agents.valid_bars", 100)  # train on the first few hundred bars
        .set("consensus.threshold", 0.0)  # the test budget's barely-sure agents decide: orders flow
        .set("consensus.max_disagreement", 1.0)
        .set("consensus.quorum", 1)
        .set("risk.confidence_floor", 0.0)
        .set("serving.http_port", http)
        .set("serving.grpc_port", grpc)
        .set("run.namespace", "twbench")
    )


def kill(*actors: Any) -> None:
    import ray

    from actors.consensus import live_consensus

    for a in actors:
        ray.kill(a, no_restart=True)
    ids = {a._actor_id for a in actors}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the live-consensus name is free again for the next run
        live = live_consensus()
        if live is None or live._actor_id not in ids:
            return
        time.sleep(0.05)


def stream(cfg: Any, data: Any, agents: Any, source: str, name: str, start_ns: int, max_inflight: int,
           say: Callable[[str], None]) -> dict[str, Any]:
    """One paper run of ``source`` from ``start_ns`` through the actor graph; its figures."""
    import ray

    from actors import pipeline

    run_cfg = cfg.set("run.name", name).set("run.paper.max_inflight", max_inflight)
    t0 = time.perf_counter()
    s = pipeline.start_stream(run_cfg, data, agents, [source], start_ns, None)
    try:
        status = pipeline.watch_stream(s, poll_s=0.5)
        seconds = time.perf_counter() - t0
        if status["state"] != "finished":
            raise SystemExit(f"stream {name} ended {status['state']}: {status['error']}")
        decisions = ray.get(s.graph.decisions.remote())
        whole = ray.get(s.graph.latencies.remote())
        publish = ray.get(s.publishers)[0]
    finally:
        kill(s.graph, s.consensus, s.portfolio)
    say(f"  {name}: {status['bars']} bars in {seconds:.1f}s, {status['orders']} orders, signals {status['signals']}, "
        f"decision ms (all bars) {status['decision_ms']}")
    return {"status": status, "decisions": decisions, "whole": whole, "seconds": seconds, "published": publish}


def predict_round_trips(agents: Any, feats: Any, n: int) -> dict[str, dict[str, float]]:
    """Driver -> AgentActor.predict -> Serve replica -> back, one agent at a time."""
    import ray

    ref = ray.put(feats)
    out = {}
    for name, actor in agents.actors.items():
        ray.get(actor.predict.remote(ref, True))
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            ray.get(actor.predict.remote(ref, True))
            times.append((time.perf_counter() - t0) * 1e3)
        out[name] = summary(times)
    return out


# ---------------------------------------------------------------------------- the floor


def floor(cfg: Any, root: Path, hist: Any, start_ns: int, versions: dict[str, str], label: str) -> dict[str, Any]:
    """The graph's per-bar calls on the same bars, models and classes, in this process."""
    import pyarrow as pa

    from actors.agent import AgentActor
    from actors.consensus import ConsensusActor
    from actors.portfolio import PortfolioActor
    from tinywindow.contracts import symbol_codes
    from tinywindow.crypto.keystore import KeyStore
    from tinywindow.data import features as feats
    from tinywindow.data.base import select
    from tinywindow.data.history import tail_indices

    try:
        import torch

        torch.set_num_threads(1)  # as the Serve replicas run it
    except ImportError:  # pragma: no cover
        pass
    fcfg = (cfg.set("data_dir", str(root / f"floor-{label}"))
            .set("agents.registry_dir", str(root / cfg.agents.registry_dir)))  # the served versions
    keys = KeyStore.open(root / cfg.crypto.keystore_dir, os.environ[PASSPHRASE_ENV])
    agents = {a: AgentActor(a, fcfg, keystore=keys) for a in versions}
    got = {a: ag.version() for a, ag in agents.items()}
    if got != versions:
        raise SystemExit(f"the floor loaded {got}, the graph served {versions}")
    consensus = ConsensusActor(fcfg, list(agents), f"floor-{label}-consensus", keystore=keys)
    portfolio = PortfolioActor(fcfg, f"floor-{label}-portfolio", keystore=keys)
    window = cfg.agents.window
    ts_all = sorted(set(hist.column("ts").cast(pa.int64()).to_pylist()))
    times = [t for t in ts_all if t >= start_ns]
    rows: dict[str, list[float]] = {k: [] for k in ("features", "predict", "consensus", "portfolio", "decision",
                                                    "learn_feedback", "bar")}
    orders = 0
    try:
        for t in times:
            bars_t = select(hist, None, t, t + 1)
            syms = sorted({str(x) for x in bars_t.column("symbol").to_pylist()})
            t0 = time.perf_counter()
            upto = select(hist, syms, None, t + 1)  # as DataSourceActor.publish computes it
            f = feats.compute(upto)
            f = f.take(pa.array(tail_indices(symbol_codes(f), window))) if f.num_rows else f
            t1 = time.perf_counter()
            votes = [ag.predict(f, True) for ag in agents.values()]
            t2 = time.perf_counter()
            signals = consensus.on_agent_votes(t, *votes)
            t3 = time.perf_counter()
            o, outcomes, _equity = portfolio.step(signals, bars_t)
            t4 = time.perf_counter()
            learned = consensus.learn(outcomes)
            for ag in agents.values():
                ag.feedback_own(learned)
            t5 = time.perf_counter()
            orders += o.num_rows
            for k, v in (("features", t1 - t0), ("predict", t2 - t1), ("consensus", t3 - t2), ("portfolio", t4 - t3),
                         ("decision", t4 - t1), ("learn_feedback", t5 - t4), ("bar", t5 - t1)):
                rows[k].append(v * 1e3)
    finally:
        consensus.close()
        portfolio.close()
    return {"times": rows, "orders": orders, "bars": len(times)}


# ---------------------------------------------------------------------------- main


def latency(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import ray

    from actors import pipeline, serving
    from actors.runtime import connect, shutdown
    from tinywindow.crypto.keystore import KeyStore
    from tinywindow.models.params import TEST_BUDGET
    from tinywindow.serving.auth import serving_token, token_digest

    root = Path(tempfile.mkdtemp(prefix="twlat-"))
    total_bars = args.train_bars + args.warmup + args.bars
    passphrase = secrets.token_urlsafe(24)
    os.environ[PASSPHRASE_ENV] = passphrase  # before Ray starts: the actors inherit them
    os.environ.setdefault(TOKEN_ENV, secrets.token_urlsafe(32))
    KeyStore.init(root / "keys", passphrase, scrypt_log2_n=10)
    cfg = make_config(root, 1, args.symbols, total_bars, not args.no_fsync)
    out: dict[str, Any] = {"root": str(root), "fsync": not args.no_fsync}
    t_all = time.perf_counter()
    connect(cfg)
    agents = None
    try:
        say(f"Ray up; data dir {root}")
        data = pipeline.start_data(cfg)
        hist1 = ray.get(data.actors["lat1"].history.remote())
        ts = np.unique(hist1.column("ts").cast(pa.int64()).to_numpy())
        start_ns = int(ts[args.train_bars])
        features = pipeline.features_of(data, ["lat50"], None, start_ns)
        t0 = time.perf_counter()
        agents = pipeline.start_agents(cfg, features, {k: dict(v) for k, v in TEST_BUDGET.items()})
        versions = {a: r["version"] for a, r in agents.trained.items()}
        say(f"agents trained in {time.perf_counter() - t0:.1f}s: {versions}")
        t0 = time.perf_counter()
        serving.start(cfg, list(versions), token_digest(serving_token(cfg.serving)), dict(versions))
        served = ray.get([a.attach_serving.remote(serving.APP_NAME) for a in agents.actors.values()])
        say(f"serving {served} in {time.perf_counter() - t0:.1f}s")

        runs = {}
        runs["1"] = stream(cfg, data, agents, "lat1", "lat1", start_ns, 1, say)
        runs["50"] = stream(cfg, data, agents, "lat50", "lat50", start_ns, 1, say)
        if not args.skip_inflight4:
            runs["1x4"] = stream(cfg, data, agents, "lat1", "lat1x4", start_ns, 4, say)
        feats1 = ray.get(data.actors["lat1"].features_window.remote(cfg.agents.window))
        trips = predict_round_trips(agents, feats1, args.round_trips)
        hist50 = ray.get(data.actors["lat50"].history.remote()) if args.floor_50 else None
    finally:
        shutdown(agents.actors.values() if agents is not None else ())
    out["setup_and_graph_s"] = time.perf_counter() - t_all
    out["versions"] = versions
    out["runs"] = {k: {"decision": summary(v["decisions"][args.warmup:]), "whole": summary(v["whole"][args.warmup:]),
                       "bars": v["status"]["bars"], "orders": v["status"]["orders"], "signals": v["status"]["signals"],
                       "seconds": v["seconds"], "bars_s": v["status"]["bars"] / v["seconds"],
                       "max_inflight_seen": v["status"]["max_inflight_seen"]}
                   for k, v in runs.items()}
    out["predict_round_trip"] = trips
    say("floor (one process, same bars and versions)")
    fl = floor(cfg, root, hist1, start_ns, versions, "1")
    say(f"  floor: {summary(fl['times']['decision'][args.warmup:])}")
    out["floor"] = {k: summary(v[args.warmup:]) for k, v in fl["times"].items()} | {"orders": fl["orders"], "bars": fl["bars"]}
    if hist50 is not None:
        fl50 = floor(cfg, root, hist50, start_ns, versions, "50")
        out["floor_50"] = {k: summary(v[args.warmup:]) for k, v in fl50["times"].items()} | {"orders": fl50["orders"]}
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return out


def report(lat: dict[str, Any] | None, eng: dict[str, Any] | None, feed: dict[str, Any] | None,
           args: argparse.Namespace) -> dict[str, Any]:
    from tinywindow.cli._tables import table

    js: dict[str, Any] = {}
    if lat is not None:
        r1, r50, fl = lat["runs"]["1"], lat["runs"]["50"], lat["floor"]
        print(f"\nDecision latency, {os.cpu_count()} CPUs, journal fsync {'on' if lat['fsync'] else 'off'}, "
              f"max_inflight=1, {args.bars} bars measured after {args.warmup} warm-up bars (ms)")
        rows: list[list[Any]] = []

        def add(path: str, syms: int, s: dict[str, float]) -> None:
            rows.append([path, syms, s["n"], round(s["p50"], 2), round(s["p99"], 2), round(s["mean"], 2),
                         round(s["max"], 1)])

        add("graph: bar released -> ORDERS (Serve x3 -> consensus -> portfolio)", 1, r1["decision"])
        add("graph: bar released -> ORDERS", args.symbols, r50["decision"])
        add("graph: bar released -> feedback done (whole bar)", 1, r1["whole"])
        add("graph: bar released -> feedback done (whole bar)", args.symbols, r50["whole"])
        add("floor: predict x3 -> on_agent_votes -> step (one process)", 1, fl["decision"])
        add("floor:   predict x3 (in-process Predictor)", 1, fl["predict"])
        add("floor:   ConsensusActor.on_agent_votes", 1, fl["consensus"])
        add("floor:   PortfolioActor.step", 1, fl["portfolio"])
        add("floor:   learn + feedback_own x3", 1, fl["learn_feedback"])
        add("floor: features window (publish; outside both)", 1, fl["features"])
        if "floor_50" in lat:
            f50 = lat["floor_50"]
            add("floor: predict x3 -> on_agent_votes -> step", args.symbols, f50["decision"])
            add("floor:   PortfolioActor.step", args.symbols, f50["portfolio"])
        for agent, s in lat["predict_round_trip"].items():
            add(f"driver -> AgentActor.predict -> Serve ({agent}) round trip", 1, s)
        print(table(rows, ["code path", "symbols", "bars", "p50", "p99", "mean", "max"]))
        tp = [[k, v["bars"], v["orders"], round(v["seconds"], 1), round(v["bars_s"], 1), v["max_inflight_seen"]]
              for k, v in lat["runs"].items()]
        print("\nStreams (wall time includes the source's feature windows):")
        print(table(tp, ["run (symbols[x max_inflight])", "bars", "orders", "seconds", "bars/s", "inflight seen"]))
        p99 = r1["decision"]["p99"]
        js.update({
            "decision_p50_ms": round(r1["decision"]["p50"], 2),
            "decision_p99_ms": round(p99, 2),
            "decision_p99_ms_50_symbols": round(r50["decision"]["p99"], 2),
            "vs_in_process": round(p99 / fl["decision"]["p99"], 2),
            "in_process_p99_ms": round(fl["decision"]["p99"], 2),
            "decision_p50_ms_50_symbols": round(r50["decision"]["p50"], 2),
            "orders_1": r1["orders"], "orders_50": r50["orders"],
            "goal_p99_ms": GOAL_P99_MS, "goal_met": p99 <= GOAL_P99_MS, "journal_fsync": lat["fsync"],
        })
        if "1x4" in lat["runs"]:
            js["bars_s_inflight1"] = round(r1["bars_s"], 1)
            js["bars_s_inflight4"] = round(lat["runs"]["1x4"]["bars_s"], 1)
    if eng is not None:
        print(f"\nEvent engine (bench/engine.py run): {eng['symbols']} symbols x {eng['bars']} bars: "
              f"{eng['engine_bar_events_s']:,} bar-events/s vs backtrader {eng['backtrader_bar_events_s']:,} "
              f"({eng['bt_symbols']} symbols timed) = {eng['engine_vs_backtrader']}x")
        js.update({k: eng[k] for k in ("engine_bar_events_s", "backtrader_bar_events_s", "engine_vs_backtrader")})
    if feed is not None:
        print(f"\ngRPC feed on loopback (bench/feed.py grpc_loopback): {feed['symbols']} symbols, "
              f"{feed['rows']:,.0f} bars, Arrow IPC batches of {feed['batch_rows']} rows: {feed['bars_s']:,.0f} bars/s")
        js["feed_bars_s"] = round(feed["bars_s"])
    return js


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=2000, help="bars measured per stream")
    ap.add_argument("--warmup", type=int, default=50, help="bars streamed first and left out of the figures")
    ap.add_argument("--train-bars", type=int, default=500, help="bars before the stream, the agents train on them")
    ap.add_argument("--symbols", type=int, default=50, help="symbols of the second stream")
    ap.add_argument("--round-trips", type=int, default=200, help="predict round trips timed per agent")
    ap.add_argument("--no-fsync", action="store_true", help="crypto.journal_fsync=false")
    ap.add_argument("--skip-inflight4", action="store_true", help="skip the max_inflight=4 throughput stream")
    ap.add_argument("--floor-50", action="store_true", help="also run the floor on the 50-symbol stream")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-engine", action="store_true")
    ap.add_argument("--skip-feed", action="store_true")
    ap.add_argument("--engine-symbols", type=int, default=500)
    ap.add_argument("--engine-bars", type=int, default=2520, help="bars per symbol (2520: ten years of days)")
    ap.add_argument("--bt-symbols", type=int, default=25, help="backtrader runs this many symbols, scaled")
    ap.add_argument("--feed-symbols", type=int, default=500)
    ap.add_argument("--feed-batch-rows", type=int, default=16384)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--quick", action="store_true", help="small numbers: a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.bars, args.warmup, args.symbols, args.round_trips = 60, 10, 5, 20
        args.engine_symbols, args.engine_bars, args.bt_symbols = 20, 300, 5
        args.feed_symbols = 20

    def say(msg: str) -> None:
        print(msg, flush=True)

    t0 = time.perf_counter()
    lat = None if args.skip_latency else latency(args, say)
    eng = None
    if not args.skip_engine:  # after Ray is down: the machine is the engine's alone
        from bench.engine import run as engine_run

        eng = engine_run(args.engine_symbols, args.engine_bars, args.bt_symbols)
    feed = None
    if not args.skip_feed:
        from bench.feed import grpc_loopback

        feed = {**grpc_loopback(args.feed_symbols, 2520, args.feed_batch_rows, 3), "symbols": args.feed_symbols,
                "batch_rows": args.feed_batch_rows}
    js = report(lat, eng, feed, args)
    print(f"\n(total {time.perf_counter() - t0:.0f}s)")
    print(json.dumps(js))


if __name__ == "__main__":
    main()
