"""Scale out (issue 16): backtest and paper throughput of the actor graph with 1..3 agents, 1..3
sources, 10..500 symbols and on 1, 2 and 3 Ray nodes, against the same work in one process;
what crosses the object store per bar; where a bar's time goes; how fast the autoscaler adds
and removes nodes.

Every node here is a ``ray.cluster_utils.Cluster`` node (a raylet with its own object store)
on ONE machine: all nodes share its cores (``nproc`` is printed).  More nodes cannot add
cores, so the N-node rows measure the cost of spreading (cross-node object transfers, more
processes on the same cores), not a speed-up: efficiency = bars/s on N nodes / bars/s on 1.

Universe: synthetic panels (``tinywindow.data.sources.synthetic``), written once to Parquet
with a distinct symbol prefix per source and served by file DataSourceActors (two synthetic
sources would both name their symbols SYN...).  History ``--history-bars`` business days
from 2007-01-01; agents train once (``TEST_BUDGET``) on the first source's features before
``--train-end`` and every later run loads them from the registry (no retraining); trading
covers ``--start`` .. ``--end`` (a quarter by default).  The consensus and risk are set so
that the test-budget agents trade (threshold 0, quorum 1, confidence floor 0), as in
``tests/ray/test_engine_graph.py``; no retrains inside the window; journals on, fsync off.

Rows and the code path each measures:

* ``single process (peer)``: the same bars, FEATURES and trained models in the driver, no
  actors: ``Predictor.predict`` per period (the agents' in-process predictor),
  ``ConsensusBook.submit_votes/decide`` and ``TradingEngine.on_bars/apply_signals`` per bar,
  realized outcomes learned by the book (``tinywindow.backtest.decisions.trade``'s loop,
  timed per stage).  It does less than the actors do: no journal (signed, encrypted
  records), no explanations of the bars that order, no per-agent experience feedback.
* ``backtest``: ``actors.pipeline.run_trading`` (DataSourceActors -> AgentActors ->
  ConsensusActor -> PortfolioActor, one bar at a time, the driver awaiting each stage);
  seconds = ``TradingReport.seconds`` (its actors' start-up included).
* ``paper``: ``actors.pipeline.start_stream`` + ``watch_stream`` (the GraphActor pipelines up
  to ``run.paper.max_inflight`` bars; speed 0: as fast as the graph takes them); seconds from
  the start call to the finished status.
* stage split: an instrumented copy of ``run_trading``'s per-bar calls (same actors, same
  order) timing each call's round trip, and the Arrow ``nbytes`` of each table that is handed
  between actors (what the object store carries; a table <= 100 KiB is inlined in the call).

Placement: node i offers the custom resource ``node<i>``; consensus and portfolio ask for
``node0`` through ``consensus.resources`` / ``portfolio.resources`` (where the driver is);
data source k asks for ``node<k mod N>`` and agent j for ``node<(j+1) mod N>`` (per-actor
``actor_options``, which ``tinywindow.config.placement`` merges over the config's).  The actors
found on each node are counted from Ray's actor table during each paper run.

Autoscale: a head of its own (``RAY_FAKE_CLUSTER=1 ray start --head --block
--autoscaling-config=cluster/local-autoscale.yaml``, port 6379 as that file requires, its own
token and temp dir, stopped by session id); a driver places ``--autoscale-actors`` actors
asking for ``{"agents": 1}`` (num_cpus 0): ``autoscale_up_s`` = until all run on new worker
nodes; ``autoscale_down_s`` = from killing them until no worker node is alive (the file's
idle timeout is part of it).

    RAY_AUTH_MODE=token RAY_USAGE_STATS_ENABLED=0 PYTHONHASHSEED=0 .venv/bin/python bench/scale.py
    ... --symbol-sweep 10,100,500,2000 --end 2010-10-01   # larger
    ... --no-autoscale                                     # skip the autoscale section
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# Ray reads these when it is imported: set them first.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from scale_stages import LEAD_DAYS, PERIOD_BARS, TABLES, kill, now, single_process, stage_split  # noqa: E402

AGENTS = ["xgboost", "lstm", "transformer"]  # the 1- and 2-agent rows take the first ones
OBJECT_STORE = 200 * 1024**2  # per node: three nodes share one machine's /dev/shm
AUTOSCALE_YAML = os.path.join(ROOT, "cluster", "local-autoscale.yaml")


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --------------------------------------------------------------------------- universe


def write_source(root: Path, k: int, symbols: int, bars: int, seed: int) -> Any:
    """A synthetic panel as one Parquet file, symbols ``U<k>_SYN...``; its SourceConfig."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from tinywindow.data.config import SourceConfig
    from tinywindow.data.sources import build_source

    t = build_source(SourceConfig(name="x", kind="synthetic", n_symbols=symbols, n_bars=bars, seed=seed)).fetch()
    sym = pc.binary_join_element_wise(f"U{k}_", t.column("symbol").cast(pa.string()), "")
    t = t.set_column(t.schema.get_field_index("symbol"), "symbol", sym.cast(t.schema.field("symbol").type))
    path = root / "universe" / f"u{k}_{symbols}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, path)
    return SourceConfig(name=f"u{k}-{symbols}", kind="file", path=str(path))


def base_config(root: Path) -> Any:
    from tinywindow.config import Config

    return (
        Config()
        .set("data_dir", str(root))
        .set("data.persist", False)
        .set("crypto.journal_fsync", False)
        .set("agents.retrain_every_bars", 0)
        .set("consensus.threshold", 0.0)
        .set("consensus.max_disagreement", 1.0)
        .set("consensus.quorum", 1)
        .set("risk.confidence_floor", 0.0)
        .set("consensus.resources", {"node0": 1})
        .set("portfolio.resources", {"node0": 1})
    )


def on_node(i: int) -> dict[str, Any]:
    return {"resources": {f"node{i}": 1}}


# --------------------------------------------------------------------------- actor stages


def start_sources(cfg: Any, scfgs: Sequence[Any], nodes: int) -> Any:
    """One DataSourceActor per source, source k on node k mod ``nodes``."""
    from actors import pipeline

    stage = pipeline.DataStage()
    for k, s in enumerate(scfgs):
        one = pipeline.start_data(cfg, [s], actor_options=on_node(k % nodes))
        stage.actors.update(one.actors)
        stage.summary += one.summary
    return stage


def start_agents(cfg: Any, agents: Sequence[str], nodes: int, features: Any = None) -> Any:
    """AgentActors, agent j on node (j+1) mod ``nodes``; trained only when ``features`` is
    given (the first time), later loaded from the registry."""
    from actors import pipeline
    from tinywindow.models.params import TEST_BUDGET

    budget = {k: dict(v) for k, v in TEST_BUDGET.items()}
    if features is not None:
        return pipeline.start_agents(cfg, features, budget, list(agents), actor_options=on_node(1 % nodes))
    stage = pipeline.AgentStage({}, {}, 0.0)
    for j, a in enumerate(agents):
        one = pipeline.start_agents(cfg, None, budget, [a], actor_options=on_node((j + 1) % nodes), retrain=False)
        if not all(v.get("version") for v in one.trained.values()):
            raise RuntimeError(f"agent {a} has no trained version to load: {one.trained}")
        stage.actors.update(one.actors)
        stage.trained.update(one.trained)
        stage.seconds += one.seconds
    return stage


def census(node_index: dict[str, int]) -> dict[int, dict[str, int]]:
    """ALIVE actors per node, by class (Ray's actor table in the GCS)."""
    import ray._private.state as state

    out: dict[int, Counter[str]] = {}
    for info in state.actors().values():
        if info.get("State") != "ALIVE":
            continue
        node = node_index.get(info.get("Address", {}).get("NodeID", ""), -1)
        out.setdefault(node, Counter())[info.get("ActorClassName", "?").rsplit(".", 1)[-1]] += 1
    return {n: dict(sorted(c.items())) for n, c in sorted(out.items())}


def backtest(cfg: Any, data: Any, agents: Any, sources: Sequence[str], name: str, win: tuple[str, str]) -> dict[str, Any]:
    from actors import pipeline

    stamps: list[float] = []
    r = pipeline.run_trading(cfg, data, agents, sources, win[0], win[1], on_bar=lambda b, n: stamps.append(now()),
                             actor_names={"consensus": f"{name}-consensus", "portfolio": f"{name}-portfolio"})
    kill(r.consensus, r.portfolio)
    return {"bars": len(r.times), "seconds": r.seconds, "orders": r.orders,
            "steady": (len(stamps) - 1, stamps[-1] - stamps[0])}


def paper(cfg: Any, data: Any, agents: Any, sources: Sequence[str], name: str, win: tuple[str, str],
          node_index: dict[str, int]) -> dict[str, Any]:
    from actors import pipeline

    seen: dict[str, Any] = {}

    def on_status(status: dict[str, Any]) -> None:
        bars = status.get("bars", 0)
        if bars >= 1:
            seen.setdefault("first", (now(), bars))
            seen["last"] = (now(), bars)
        if "census" not in seen and bars >= 1:
            seen["census"] = census(node_index)

    t0 = now()
    stream = pipeline.start_stream(cfg.set("run.name", name), data, agents, sources, win[0], win[1])
    status = pipeline.watch_stream(stream, on_status=on_status, poll_s=0.05)
    secs = now() - t0
    kill(stream.graph, stream.consensus, stream.portfolio)
    if status["state"] != "finished":
        raise RuntimeError(f"paper run {name}: {status}")
    (t_first, b_first), (t_last, b_last) = seen["first"], seen["last"]
    return {"bars": status["bars"], "seconds": secs, "orders": status["orders"],
            "steady": (b_last - b_first, t_last - t_first), "latency_ms": status["latency_ms"], "census": seen.get("census", {})}


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def autoscale(actors: int, wait_s: float) -> dict[str, Any]:
    """Start a fake_multinode head of our own (``tests.raytools.RayHead``, as the autoscaler
    test does), run the probe in a child driver, stop the head."""
    from tests.raytools import RayHead

    if not os.path.exists(AUTOSCALE_YAML):
        return {"skipped": f"{AUTOSCALE_YAML} not found"}
    t_wait = time.monotonic()
    deadline = t_wait + wait_s
    while port_open("127.0.0.1", 6379) or port_open(socket.gethostbyname(socket.gethostname()), 6379):
        if time.monotonic() > deadline:
            return {"skipped": "port 6379 busy (another Ray head, e.g. a test's autoscaling cluster)"}
        time.sleep(5)
    t_wait_done = time.monotonic()
    head = RayHead(num_cpus=2, port=6379, autoscaling_config=Path(AUTOSCALE_YAML), extra_env={"RAY_FAKE_CLUSTER": "1"})
    try:
        head.start()
        m = re.search(r"--address='([^']+)'", head.output())
        if not m:
            return {"skipped": f"no GCS address in the head's output: {head.output()[-1500:]}"}
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--autoscale-probe", m.group(1),
                              "--autoscale-actors", str(actors)], env=head.env(), capture_output=True, text=True,
                             timeout=900)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode != 0 or not lines:
            return {"skipped": f"probe failed ({out.returncode}): {(out.stderr or out.stdout)[-1500:]}"}
        return {**json.loads(lines[-1]), "waited_for_port_s": round(t_wait_done - t_wait, 1)}
    finally:
        head.stop()


def autoscale_probe(address: str, n: int) -> None:
    """In a child driver: demand ``n`` x {"agents": 1}, time the nodes coming and going."""
    import ray

    @ray.remote(num_cpus=0, resources={"agents": 1})
    class Demand:
        def node(self) -> str:
            return ray.get_runtime_context().get_node_id()

    ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    head = ray.get_runtime_context().get_node_id()

    def workers() -> int:
        return sum(1 for nd in ray.nodes() if nd["Alive"] and nd["NodeID"] != head)

    if workers():
        raise RuntimeError("worker nodes alive before any demand")
    t0 = now()
    actors = [Demand.remote() for _ in range(n)]
    nodes = ray.get([a.node.remote() for a in actors], timeout=600)
    up = now() - t0
    first_seen = workers()
    t1 = now()
    for a in actors:
        ray.kill(a)
    while workers():
        if now() - t1 > 600:
            raise TimeoutError("worker nodes still alive 600 s after the demand went")
        time.sleep(0.25)
    down = now() - t1
    print(json.dumps({"autoscale_up_s": round(up, 2), "autoscale_down_s": round(down, 2), "actors": n,
                      "distinct_nodes": len(set(nodes)), "on_head": sum(x == head for x in nodes),
                      "workers_when_up": first_seen}))
    ray.shutdown()


# --------------------------------------------------------------------------- main


def rate(r: dict[str, Any]) -> float:
    """Bars per second once running: first to last bar (actor start-up excluded); the peer
    has no start-up."""
    if "steady" in r:
        bars, secs = r["steady"]
        return float(bars / secs)
    return float(r["bars"] / r["seconds"])


def rate_total(r: dict[str, Any]) -> float:
    """Bars per second including the run's start-up (its actors, its first reads)."""
    return float(r["bars"] / r["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=10, help="symbols per source in the node and agent rows")
    ap.add_argument("--symbol-sweep", default="10,100,500", help="one-source universes for the symbols rows")
    ap.add_argument("--max-sources", type=int, default=3)
    ap.add_argument("--max-nodes", type=int, default=3)
    ap.add_argument("--history-bars", type=int, default=1260, help="business days from 2007-01-01")
    ap.add_argument("--train-end", default="2010-01-01")
    ap.add_argument("--start", default="2010-04-01")
    ap.add_argument("--end", default="2010-07-01", help="a quarter after --start by default")
    ap.add_argument("--sweep-end", default="2010-05-01", help="end of the symbols rows' window (from --start)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-autoscale", action="store_true")
    ap.add_argument("--autoscale-actors", type=int, default=3)
    ap.add_argument("--autoscale-wait", type=float, default=300.0, help="seconds to wait for port 6379 to be free")
    ap.add_argument("--autoscale-probe", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.autoscale_probe:
        autoscale_probe(args.autoscale_probe, args.autoscale_actors)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    """The whole bench in a data_dir of its own, removed at the end whatever happened."""
    root = Path(tempfile.mkdtemp(prefix="tw-bench-scale-"))
    try:
        measure(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(args: argparse.Namespace, root: Path) -> None:
    import warnings

    import ray
    from ray.cluster_utils import Cluster

    from actors import pipeline
    from tinywindow.core.log import register_secret
    from tinywindow.crypto.keystore import KeyStore

    warnings.filterwarnings("ignore")
    t_start = now()
    load_before = load_avg()
    cores = os.cpu_count()
    win = (args.start, args.end)
    sweep_win = (args.start, args.sweep_end)
    cfg = base_config(root)
    passphrase = secrets.token_urlsafe(24)
    os.environ[cfg.crypto.passphrase_env] = passphrase  # the nodes' workers inherit it
    register_secret(passphrase)
    KeyStore.init(root / "keys", passphrase, scrypt_log2_n=10)
    base = [write_source(root, k, args.symbols, args.history_bars, args.seed + k) for k in range(args.max_sources)]
    sweep_n = [int(x) for x in args.symbol_sweep.split(",") if x]
    sweep = {n: (base[0] if n == args.symbols else write_source(root, 100 + n, n, args.history_bars, args.seed))
             for n in sweep_n}
    if not sweep_n:
        raise SystemExit("--symbol-sweep needs at least one width")

    cluster = Cluster(initialize_head=False)
    cluster.add_node(num_cpus=2, resources={"node0": 100.0}, object_store_memory=OBJECT_STORE, include_dashboard=False)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    node_index = {cluster.head_node.node_id: 0}
    figures: dict[str, Any] = {}
    try:
        # ---- train once (node 0), on the first source's features before --train-end
        t0 = now()
        data = start_sources(cfg, base[:1], 1)
        feats = pipeline.features_of(data, [base[0].name], None, args.train_end)
        trained = start_agents(cfg, AGENTS, 1, features=feats)
        kill(*trained.actors.values(), *data.actors.values())
        print(f"setup: universe written, {len(AGENTS)} agents trained (TEST_BUDGET) on {feats.num_rows} feature rows "
              f"in {now() - t0:.0f}s; data_dir {root}", flush=True)

        def one_run(nodes: int, sources: Sequence[Any], agents: Sequence[str], label: str,
                    do_paper: bool = False, do_peer: bool = False, do_split: bool = False,
                    win: tuple[str, str] = win) -> dict[str, Any]:
            data = start_sources(cfg, sources, nodes)
            ag = start_agents(cfg, agents, nodes)
            names = [s.name for s in sources]
            out: dict[str, Any] = {"label": label, "nodes": nodes, "sources": len(sources), "agents": len(agents),
                                   "symbols": sum(len(d["symbols"]) for d in data.summary)}
            try:
                out["backtest"] = backtest(cfg, data, ag, names, f"bt-{label}", win)
                if do_paper:
                    out["paper"] = paper(cfg, data, ag, names, f"pp-{label}", win, node_index)
                if do_split:
                    out["split"] = stage_split(cfg, data, ag, names, win)
                if do_peer:
                    out["peer"] = single_process(cfg, passphrase, data, agents, names, win)
            finally:
                kill(*ag.actors.values(), *data.actors.values())
            bt = out["backtest"]
            extra = f", paper {rate(out['paper']):.1f} bars/s" if "paper" in out else ""
            extra += f", peer {rate(out['peer']):.1f} bars/s" if "peer" in out else ""
            print(f"  {label}: backtest {bt['bars']} bars in {bt['seconds']:.1f}s with start-up, {rate(bt):.1f} bars/s "
                  f"once running{extra}", flush=True)
            return out

        rows: list[dict[str, Any]] = []
        print(f"\n1 node ({args.symbols} symbols per source unless said)", flush=True)
        base_row = one_run(1, base[:1], AGENTS, "1node", do_paper=True, do_peer=True)
        rows.append(base_row)
        agent_rows = [one_run(1, base[:1], AGENTS[:k], f"agents{k}") for k in range(1, len(AGENTS))] + [base_row]
        source_rows = [base_row] + [one_run(1, base[:k], AGENTS, f"sources{k}") for k in range(2, args.max_sources + 1)]
        print(f"\nsymbols, {sweep_win[0]}..{sweep_win[1]} (1 node, 1 source)", flush=True)
        symbol_rows = [one_run(1, [sweep[n]], AGENTS, f"symbols{n}", do_peer=True, do_split=True, win=sweep_win)
                       for n in sweep_n]
        split_sym = {n: r["split"] for n, r in zip(sweep_n, symbol_rows, strict=True)}
        peer_sym = {n: r["peer"] for n, r in zip(sweep_n, symbol_rows, strict=True)}

        node_rows = [base_row]
        for n in range(2, args.max_nodes + 1):
            t0 = now()
            node = cluster.add_node(num_cpus=2, resources={f"node{n - 1}": 100.0}, object_store_memory=OBJECT_STORE)
            cluster.wait_for_nodes()
            node_index[node.node_id] = n - 1
            print(f"\n{n} nodes (node {n - 1} added in {now() - t0:.1f}s)", flush=True)
            node_rows.append(one_run(n, base[:1], AGENTS, f"{n}nodes", do_paper=True))
        # the 1-node reference once more, last (every actor on node 0 again, the other nodes idle): how far
        # the same run drifts on a shared machine between the start and the end of the node rows
        print("\n1 node again (all actors on node 0, the other nodes idle)", flush=True)
        again = one_run(1, base[:1], AGENTS, "1node-again")
    finally:
        ray.shutdown()
        cluster.shutdown()
    mid_load = load_avg()

    auto: dict[str, Any] = {"skipped": "--no-autoscale"}
    if not args.no_autoscale:
        print("\nautoscale (fake_multinode head of its own on port 6379)", flush=True)
        auto = autoscale(args.autoscale_actors, args.autoscale_wait)
    load_after = load_avg()

    # ------------------------------------------------------------------ report
    print()
    print(f"Scale-out bench: {args.start}..{args.end} daily bars of synthetic universes (Parquet, file sources); "
          f"agents {'/'.join(AGENTS)} at TEST_BUDGET; ALL NODES SHARE THIS MACHINE'S {cores} CORES")
    print(f"load average (1/5/15 min): before {load_before}, after the cluster runs {mid_load}, at the end "
          f"{load_after}  (others' work on this machine counts in every figure)")
    hdr = (f"{'row (code path)':<34} {'nodes':>5} {'src':>3} {'agt':>3} {'syms':>5} {'bars':>4} {'bars/s':>7} "
           f"{'bar-sym/s':>9} {'eff':>5} {'w/ start-up':>11} {'orders':>6}")
    print("\nThroughput (backtest: actors.pipeline.run_trading; paper: start_stream+watch_stream; "
          "peer: one process)")
    print(hdr)
    print("-" * len(hdr))
    one = rate(base_row["backtest"])
    one_paper = rate(base_row["paper"])

    def line(name: str, r: dict[str, Any], res: dict[str, Any], ref: float | None) -> None:
        eff = f"{rate(res) / ref:.2f}" if ref else "-"
        print(f"{name:<34} {r['nodes']:>5} {r['sources']:>3} {r['agents']:>3} {r['symbols']:>5} {res['bars']:>4} "
              f"{rate(res):>7.2f} {rate(res) * r['symbols']:>9.0f} {eff:>5} {rate_total(res):>11.2f} {res['orders']:>6}")

    line("single process (peer)", base_row, base_row["peer"], None)
    for r in node_rows:
        line(f"backtest, {r['nodes']} node(s)", r, r["backtest"], one)
    line("backtest, 1 node again (last)", again, again["backtest"], one)
    for r in node_rows:
        line(f"paper, {r['nodes']} node(s)", r, r["paper"], one_paper)
    for r in agent_rows[:-1]:
        line(f"backtest, {r['agents']} agent(s)", r, r["backtest"], None)
    for r in source_rows[1:]:
        line(f"backtest, {r['sources']} sources", r, r["backtest"], None)
    for r in symbol_rows:
        line(f"single process, {r['symbols']} symbols", r, r["peer"], None)
        line(f"backtest, {r['symbols']} symbols", r, r["backtest"], None)
    print("bars/s: first to last bar (actor start-up excluded; the peer has none); w/ start-up: the whole call "
          "(run_trading's TradingReport.seconds; paper: start_stream to finished)")
    print("eff: bars/s on N nodes / bars/s on 1 node, same path (backtest or paper); nodes share the cores, "
          "so 1.00 is the ceiling here, not N; '1 node again' is the first row's run repeated after the node rows: "
          "its eff is the drift of this machine over the runs (an eff within that distance of 1 is noise)")
    print(f"symbols rows: {sweep_win[0]}..{sweep_win[1]} (shorter window: the wide universes are slow); "
          "agents and sources rows: the main window")
    print("paper latency (bar released -> its orders known), ms p50/p99: "
          + "; ".join(f"{r['nodes']} node(s) {r['paper']['latency_ms']['p50']}/{r['paper']['latency_ms']['p99']}"
                      for r in node_rows))

    print(f"\nWhere a bar's time goes, ms per bar ({sweep_win[0]}..{sweep_win[1]}, 1 node, 1 source; actors: an "
          "instrumented copy of run_trading's calls, each round trip timed; peer: the same stages in one process)")
    widths = sorted(split_sym)
    stages = list(dict.fromkeys(st for w in widths for st in split_sym[w]["ms_per_bar"]))
    head = f"{'stage':<40} " + " ".join(f"{'actors@' + str(w):>11} {'peer@' + str(w):>10}" for w in widths)
    print(head)
    print("-" * len(head))

    def cell(v: float | None, width: int) -> str:
        return f"{'-':>{width}}" if v is None else f"{v:>{width}.2f}"

    for st in stages:
        print(f"{st:<40} " + " ".join(f"{cell(split_sym[w]['ms_per_bar'].get(st), 11)} "
                                      f"{cell(peer_sym[w]['ms_per_bar'].get(st), 10)}" for w in widths))
    print(f"{'total (wall)':<40} " + " ".join(f"{cell(split_sym[w]['total_ms_per_bar'], 11)} "
                                               f"{cell(1e3 / rate(peer_sym[w]), 10)}" for w in widths))
    print(f"(votes: one batched predict call per agent per period of up to {PERIOD_BARS} bars, shown per bar; "
          "explain_and_record runs only on bars that order: "
          + ", ".join(f"{split_sym[w]['bars_with_orders']}/{split_sym[w]['bars']} at {w} symbols" for w in widths) + ")")

    print("\nTables handed between actors, bytes per bar (Arrow nbytes; a table <= 100 KiB is inlined in the call, "
          "a larger one goes through the object store)")
    head = f"{'table':<14} " + " ".join(f"{'per bar @' + str(w):>14} {'per sym-bar':>11}" for w in widths)
    print(head)
    print("-" * len(head))
    for t in TABLES:
        print(f"{t:<14} " + " ".join(f"{split_sym[w]['bytes_per_bar'][t]:>14,.0f} "
                                     f"{split_sym[w]['bytes_per_bar'][t] / split_sym[w]['symbols']:>11,.1f}" for w in widths))
    print("FEATURES: the bar's own rows; +lead: the whole period table each agent gets (its bars plus a "
          f"{LEAD_DAYS}-day lead, put once per period, read by every agent: one copy per node that reads it). "
          "VOTES: the bar's rows of all agents; +lead: what the agents return (votes on the lead bars too). "
          "SIGNALS, BARS, ORDERS, OUTCOMES: per bar, driver <-> consensus / portfolio.")

    print("\nActors per node during each paper run (Ray's actor table):")
    for r in node_rows:
        print(f"  {r['nodes']} node(s): " + "; ".join(f"node{n}: " + ", ".join(f"{k} {v}" for k, v in c.items())
                                                    for n, c in r["paper"]["census"].items()))
    if "skipped" in auto:
        print(f"\nautoscale: skipped ({auto['skipped']})")
    else:
        print(f"\nautoscale (cluster/local-autoscale.yaml, fake_multinode): {auto['actors']} actors x {{agents: 1}} "
              f"-> running on {auto['distinct_nodes']} new node(s) in {auto['autoscale_up_s']:.1f}s; actors killed "
              f"-> no worker node left after {auto['autoscale_down_s']:.1f}s (the file's idle timeout is part of it); "
              f"waited {auto['waited_for_port_s']:.0f}s for port 6379 first")
    print(f"wall time {now() - t_start:.0f}s")

    nodes_n = {r["nodes"]: r for r in node_rows}
    figures = {
        "nodes_1_bars_s": round(one, 2),
        "nodes_3_bars_s": round(rate(nodes_n[3]["backtest"]), 2) if 3 in nodes_n else None,
        "autoscale_up_s": auto.get("autoscale_up_s"),
        "autoscale_down_s": auto.get("autoscale_down_s"),
        "nodes_3_efficiency": round(rate(nodes_n[3]["backtest"]) / one, 2) if 3 in nodes_n else None,
        "nodes_1_again_bars_s": round(rate(again["backtest"]), 2),
        "paper_nodes_1_bars_s": round(one_paper, 2),
        "paper_nodes_3_bars_s": round(rate(nodes_n[3]["paper"]), 2) if 3 in nodes_n else None,
        "single_process_bars_s": round(rate(base_row["peer"]), 2),
        "cores": cores,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
