"""Builds the actor graph and runs it end to end.

Prediction: DataSourceActor -> FEATURES ref -> AgentActors (each through its Serve
deployment) -> VOTES -> ConsensusActor -> SIGNALS -> PortfolioActor (risk, orders, fills,
journal).  Learning: PortfolioActor -> OUTCOMES -> ConsensusActor.learn -> each agent's own
AGENT_OUTCOMES -> that AgentActor's journaled experience buffer.  Explanation: the keys of a
bar's ORDERS -> every AgentActor that voted at the bar explains its votes there on the same
FEATURES and journals them (``AgentActor.explain_and_record``).  Retrains run on the bar
clock (``tinywindow.models.retrain.RetrainSchedule``): after every ``agents.retrain_every_bars``
bars each agent starts a challenger on the features up to that bar only; ``retrain_lag_bars``
bars later the pipeline waits for it and the agent applies the promotion gate (a promoted
version votes from the next bar on, live on Serve without downtime).  Every call whose
result matters is awaited and its error raised, so the same config and seed trade the same
ledger.  Every stage is a function returning plain data; ``tinywindow demo`` prints them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinywindow.config import Config
from tinywindow.config.placement import placement
from tinywindow.core.log import get_logger
from tinywindow.data.base import select
from tinywindow.data.config import SourceConfig
from tinywindow.data.features import complete_mask
from tinywindow.data.persist import EncryptedSink
from tinywindow.models.retrain import RetrainSchedule

log = get_logger("pipeline")

DEMO_SOURCES = [
    SourceConfig(name="sp500", kind="bundled", datasets=["sp500"]),
    SourceConfig(name="nasdaq", kind="bundled", datasets=["nasdaq"]),
    SourceConfig(name="goog", kind="bundled", datasets=["goog"]),
    SourceConfig(name="btcusd", kind="bundled", datasets=["btcusd"]),
    SourceConfig(name="synthetic", kind="synthetic", n_symbols=200, n_bars=2520, seed=7),
]
AGENTS = ["lstm", "transformer", "xgboost"]
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------------------- data


@dataclass
class DataStage:
    """One DataSourceActor per configured source, loaded in parallel."""

    actors: dict[str, Any] = field(default_factory=dict)
    summary: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def start_data(
    cfg: Config,
    sources: Sequence[SourceConfig] | None = None,
    actor_options: Mapping[str, Any] | None = None,
    on_loaded: Callable[[str], None] = _quiet,
) -> DataStage:
    """``actor_options``: extra Ray options for every actor (e.g. a ``runtime_env`` carrying
    the keystore passphrase on a cluster whose nodes do not have it in their environment).
    ``on_loaded(source)`` as each source finishes loading (a progress bar)."""
    import ray

    from actors.data_source import remote_data_source

    stage = DataStage()
    t0 = time.perf_counter()
    sink = EncryptedSink.from_config(cfg.crypto, cfg.data_dir) if cfg.data.persist else None
    for scfg in sources or cfg.data.sources:
        stage.actors[scfg.name] = remote_data_source(
            **placement(cfg.data.num_cpus, cfg.data.resources, actor_options)).remote(scfg, cfg.data, sink)
    loading = {a.load.remote(): name for name, a in stage.actors.items()}
    while loading:
        ready, _ = ray.wait(list(loading), num_returns=1)
        for r in ready:
            ray.get(r)  # a source that failed to load raises here, naming itself
            on_loaded(loading.pop(r))
    ray.get([a.flush.remote() for a in stage.actors.values()])
    # features through the object store: each source's FEATURES table is put once
    feats = {name: a.features.remote() for name, a in stage.actors.items()}
    descs = ray.get([a.describe.remote() for a in stage.actors.values()])
    for desc, ref in zip(descs, feats.values(), strict=True):
        table = ray.get(ref)
        desc["feature_rows"] = table.num_rows
        desc["feature_rows_complete"] = int(complete_mask(table).sum())
        desc["feature_mb"] = table.nbytes / 1e6
        stage.summary.append(desc)
    stage.seconds = time.perf_counter() - t0
    return stage


def features_of(
    stage: DataStage, sources: Sequence[str], start: Any = None, end: Any = None, symbols: Sequence[str] | None = None
) -> pa.Table:
    """FEATURES of several sources (computed over each source's full history, then cut)."""
    import ray

    from tinywindow.data.base import concat_bars

    syms = list(symbols) if symbols else None
    return concat_bars(ray.get([stage.actors[s].features.remote(start, end, syms) for s in sources]))


def bars_of(
    stage: DataStage, sources: Sequence[str], start: Any = None, end: Any = None, symbols: Sequence[str] | None = None
) -> pa.Table:
    import ray

    from tinywindow.data.base import concat_bars

    syms = list(symbols) if symbols else None
    return concat_bars(ray.get([stage.actors[s].history.remote(start, end, syms) for s in sources]))


# ---------------------------------------------------------------------------- agents


@dataclass
class AgentStage:
    actors: dict[str, Any]
    trained: dict[str, dict[str, Any]]
    seconds: float


def start_agents(
    cfg: Config,
    features: pa.Table,
    budget: dict[str, dict[str, Any]],
    agents: Sequence[str] = AGENTS,
    actor_options: Mapping[str, Any] | None = None,
    retrain: bool = True,
    on_trained: Callable[[str], None] = _quiet,
) -> AgentStage:
    """One AgentActor per agent, trained in parallel on ``features`` (one object-store copy).

    ``retrain=False``: an agent whose registry already holds a servable version (a previous
    run of the same universe) starts with it and is not trained; ``trained[agent]`` then says
    ``{"version": ..., "trained": False}``.  ``on_trained(agent)`` as each one finishes."""
    import ray

    from actors.agent import remote_agent

    t0 = time.perf_counter()
    doc = cfg.model_dump(mode="json", exclude={"serving": {"token"}})
    actors = {
        a: remote_agent(**placement(cfg.agents.num_cpus, cfg.agents.resources, actor_options)).remote(
            a, doc, overrides=budget.get(a, {})
        )
        for a in agents
    }
    todo = list(agents)
    if not retrain:  # an agent whose registry has a servable version starts with it
        have = ray.get([actors[a].version.remote() for a in agents])
        todo = [a for a, v in zip(agents, have, strict=True) if v is None]
        kept = {a: {"version": v, "trained": False} for a, v in zip(agents, have, strict=True) if v is not None}
    else:
        kept = {}
    ref = ray.put(features) if todo else None
    pending = {actors[a].train.remote(ref): a for a in todo}
    trained: dict[str, dict[str, Any]] = dict(kept)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for r in ready:
            agent = pending.pop(r)
            trained[agent] = {**ray.get(r), "trained": True}
            on_trained(agent)
    trained = {a: trained[a] for a in agents}
    return AgentStage(actors, trained, time.perf_counter() - t0)


# ---------------------------------------------------------------------------- trading


@dataclass
class TradingReport:
    equity: list[float]
    times: list[int]
    benchmark_equity: list[float]
    snapshot: dict[str, Any]
    weights: dict[str, float]
    agent_stats: dict[str, dict[str, float]]
    versions_by_period: list[tuple[str, dict[str, list[str]]]]
    signals: dict[str, int]
    orders: int
    risk_events: list[dict[str, Any]]
    outcomes: int
    journal: dict[str, Any]
    seconds: float
    retrains: dict[str, Any] = field(default_factory=dict)  # each agent's status at the end
    promotions: list[dict[str, Any]] = field(default_factory=list)  # every gate decision, in bar order
    versions_by_bar: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # who voted on each bar
    order_sides: dict[str, int] = field(default_factory=dict)  # orders sent: buy / sell
    consensus: Any = None  # the actor handles, for the caller to inspect or stop
    portfolio: Any = None
    stopped: bool = False  # should_stop() ended it early
    resumed_after: int | None = None  # the last bar a previous run had traded
    start_equity: float | None = None  # the account's equity before this run's first bar


def _group_by_ts(table: pa.Table) -> dict[int, pa.Table]:
    if table.num_rows == 0:
        return {}
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    order = np.argsort(ts, kind="stable")
    cuts = np.flatnonzero(np.diff(ts[order])) + 1
    out = {}
    for idx in np.split(order, cuts):
        out[int(ts[idx[0]])] = table.take(pa.array(idx))
    return out


def run_trading(
    cfg: Config,
    data: DataStage,
    agents: AgentStage,
    sources: Sequence[str],
    start: str,
    end: str,
    period_bars: int = 63,
    say: Say = _quiet,
    actor_options: Mapping[str, Any] | None = None,
    symbols: Sequence[str] | None = None,
    actor_names: Mapping[str, str] | None = None,
    on_bar: Callable[[int, int], None] = lambda bar, n: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TradingReport:
    """Trade ``sources`` from ``start`` to ``end`` bar by bar through the whole actor graph.

    ``on_bar(bar, n)`` after every bar (a progress bar).  ``should_stop()`` is asked after
    every bar: when true the consensus and portfolio are checkpointed and the report covers the
    bars traded so far (``stopped``).  A run whose portfolio journal already holds bars (a
    stopped run of the same names) resumes after its last bar: earlier bars are skipped, the
    retrain schedule keeps its bar numbers.  A stop between a retrain's start and its decision
    drops that retrain (the resumed run does not start it again: the agents' outcome buffers
    have moved on, so it would not be the same challenger); the next scheduled one runs.  ``symbols``: trade only these (None:
    every symbol of ``sources``).  ``actor_names``: the
    consensus's and portfolio's actor and journal names (``{"consensus": ..., "portfolio":
    ...}``; default ``consensus`` and ``portfolio``).

    Each period (a quarter by default) the agents vote on all of its bars in one batched call
    through their Serve deployments; then every bar goes votes -> consensus -> portfolio,
    and realized outcomes flow back to the consensus and, per agent, to the agents.  Retrains
    start and are decided at fixed bars (see the module docstring); after a promotion the
    rest of the period is voted again, so the new version votes from the next bar on.
    """
    import ray

    from actors.consensus import remote_consensus
    from actors.portfolio import remote_portfolio

    t0 = time.perf_counter()
    doc = cfg.model_dump(mode="json", exclude={"serving": {"token"}})
    opts = dict(actor_options or {})
    roles = {"consensus": "consensus", "portfolio": "portfolio", **dict(actor_names or {})}
    names = list(agents.actors)
    consensus = remote_consensus(**placement(cfg.consensus.num_cpus, cfg.consensus.resources, opts)).remote(
        doc, names, roles["consensus"])
    portfolio = remote_portfolio(**placement(cfg.portfolio.num_cpus, cfg.portfolio.resources, opts)).remote(
        doc, roles["portfolio"])
    bars = bars_of(data, sources, start, end, symbols)
    by_ts = _group_by_ts(bars)
    times = sorted(by_ts)
    # each period's features start this far back, so its first bar has a full window
    lead_ns = int(np.timedelta64(180, "D") / np.timedelta64(1, "ns"))
    feats = features_of(data, sources, str(np.datetime64(start) - np.timedelta64(180, "D")), end, symbols)

    equity: list[float] = []
    versions_by_period: list[tuple[str, dict[str, list[str]]]] = []
    versions_by_bar: list[tuple[int, dict[str, str]]] = []
    promotions: list[dict[str, Any]] = []
    signal_counts = {"long": 0, "short": 0, "flat": 0, "no_decision": 0}  # target exposures decided, or none
    order_sides = {"buy": 0, "sell": 0}
    n_orders = n_outcomes = 0
    seq = 0
    schedule = RetrainSchedule(cfg.agents)
    decide_at: int | None = None
    after = ray.get(portfolio.last_bar_ts.remote())  # a resumed run: bars up to this are done
    start_equity = float(ray.get(portfolio.snapshot.remote())["equity"])
    traded: list[int] = []
    stopped = False

    def vote(period_ref: Any, lo: int) -> tuple[dict[int, pa.Table], dict[str, list[str]]]:
        """Every agent's votes on the period's bars from ``lo`` on, grouped by bar."""
        all_votes = [
            v.filter(pc.greater_equal(v.column("ts").cast(pa.int64()), lo))
            for v in ray.get([agents.actors[a].predict.remote(period_ref) for a in names])
        ]
        used = {a: sorted(set(v.column("model_version").to_pylist())) for a, v in zip(names, all_votes, strict=True)}
        return _group_by_ts(pa.concat_tables(all_votes)), used

    for p0 in range(0, len(times), period_bars):
        period = times[p0 : p0 + period_bars]
        if stopped:
            break
        if after is not None and period[-1] <= after:
            continue  # traded by the run this one resumes
        lo, hi = period[0], period[-1] + 1
        period_ref = ray.put(select(feats, None, lo - lead_ns, hi))  # one copy, read by every agent
        votes_by_ts, used = vote(period_ref, lo)
        label = str(np.datetime64(lo, "ns").astype("datetime64[D]"))
        versions_by_period.append((label, used))
        for k, ts in enumerate(period):
            bar_no = p0 + k
            if stopped or (after is not None and ts <= after):
                continue
            bar = by_ts[ts]
            v = votes_by_ts.get(ts)
            if v is not None and v.num_rows:
                versions_by_bar.append((ts, _versions(v)))
            if v is not None and v.num_rows:
                signals = ray.get(consensus.on_votes.remote(v))
                for action, decided in zip(signals.column("action").to_pylist(),
                                           signals.column("decided").to_pylist(), strict=True):
                    signal_counts["no_decision" if not decided else "long" if action > 0
                                  else "short" if action < 0 else "flat"] += 1
                orders = ray.get(portfolio.apply_signals.remote(signals, bar))
                n_orders += orders.num_rows
                if orders.num_rows:  # why each agent voting here voted as it did, on the features it voted on
                    voters = sorted(set(v.column("agent").to_pylist()))
                    ray.get([agents.actors[a].explain_and_record.remote(period_ref, orders) for a in voters])
                for side in orders.column("side").to_pylist():
                    order_sides["buy" if side > 0 else "sell"] += 1
            else:
                ray.get(portfolio.on_bars.remote(bar))
            outcomes, seq = ray.get(portfolio.outcomes_since.remote(seq))
            if outcomes.num_rows:
                n_outcomes += outcomes.num_rows
                per_agent = ray.get(consensus.learn.remote(outcomes))
                routed = _route(per_agent, names)
                ray.get([agents.actors[a].feedback.remote(t) for a, t in routed.items() if t.num_rows])
            equity.append(float(ray.get(portfolio.snapshot.remote())["equity"]))
            traded.append(ts)
            on_bar(bar_no, len(times))
            if should_stop():
                stopped = True
            if schedule.starts(bar_no, len(times)) and not stopped:
                upto = ray.put(features_of(data, sources, None, ts + 1, symbols))  # nothing after this bar
                ray.get([agents.actors[a].start_retrain.remote(upto) for a in names])
                decide_at = schedule.decision_bar(bar_no)
                say(f"  retrain started after bar {bar_no} ({_day(ts)}) on features up to it; "
                    f"decided at bar {decide_at}")
            if decide_at == bar_no and not stopped:
                decided = ray.get([agents.actors[a].finish_retrain.remote() for a in names])
                decide_at = None
                for d in decided:
                    promotions.append({"bar": bar_no, "day": _day(ts), **_summary(d)})
                    say("  " + _describe(promotions[-1]))
                if any(d["promote"] for d in decided) and k + 1 < len(period):
                    nxt = period[k + 1]
                    fresh, now_used = vote(period_ref, nxt)
                    votes_by_ts = {**{t: x for t, x in votes_by_ts.items() if t < nxt}, **fresh}
                    used = {a: sorted(set(used[a]) | set(now_used[a])) for a in names}
                    versions_by_period[-1] = (label, used)
        if equity:
            say(f"  {label}: equity {equity[-1]:,.0f}, versions " + ", ".join(f"{a} {'/'.join(v)}" for a, v in used.items()))
    if stopped:
        ray.get([consensus.checkpoint.remote(), portfolio.checkpoint.remote()])
    if decide_at is not None and not stopped:  # a retrain still running: let it end
        ray.get([agents.actors[a].finish_retrain.remote() for a in names])
    snapshot = ray.get(portfolio.snapshot.remote())
    retrains = {a: ray.get(agents.actors[a].status.remote()) for a in names}
    bench = buy_and_hold(bars, traded, start_equity) if traded else np.array([])
    report = TradingReport(
        equity=equity,
        times=traded,
        benchmark_equity=[float(x) for x in bench],
        snapshot=snapshot,
        weights=ray.get(consensus.weights.remote()),
        agent_stats=ray.get(consensus.agent_stats.remote()),
        versions_by_period=versions_by_period,
        signals=signal_counts,
        orders=n_orders,
        risk_events=ray.get(portfolio.risk_events.remote()),
        outcomes=n_outcomes,
        journal=ray.get(portfolio.verify_journal.remote()),
        seconds=time.perf_counter() - t0,
        retrains=retrains,
        promotions=promotions,
        versions_by_bar=versions_by_bar,
        order_sides=order_sides,
        consensus=consensus,
        portfolio=portfolio,
        stopped=stopped,
        resumed_after=after,
        start_equity=start_equity,
    )
    return report


@dataclass
class StreamRun:
    """A paper or live run's handles (see ``start_stream``)."""

    graph: Any
    consensus: Any
    portfolio: Any
    publishers: list[Any]
    name: str
    namespace: str
    resumed_after: int | None
    sources: list[Any] = field(default_factory=list)  # the publishing DataSourceActors
    start_equity: float | None = None  # the account's equity before this run's first bar


def start_stream(
    cfg: Config,
    data: DataStage,
    agents: AgentStage,
    sources: Sequence[str],
    start: Any,
    end: Any,
    mode: str = "paper",
    symbols: Sequence[str] | None = None,
    follow: Sequence[str] = (),
    detached: bool = False,
    actor_options: Mapping[str, Any] | None = None,
) -> StreamRun:
    """Start the actor graph of a paper or live run (``actors.graph``) and return at once.

    The portfolio and the graph are named ``<run>-<mode>-portfolio|graph`` in ``run.namespace``;
    the consensus is the live one (``consensus`` in namespace ``tinywindow``, which the serving
    gateway asks) and journals as ``<run>-<mode>-consensus``.  Whatever was created is killed
    again if the start fails.  A portfolio that
    has processed bars already (a resumed run) makes every source start after its last bar.
    ``follow``: sources whose stream keeps publishing (the gRPC feed) until it ends."""
    import ray

    from actors.consensus import remote_consensus
    from actors.graph import GRAPH_SUFFIX, remote_graph
    from actors.portfolio import remote_portfolio

    run = cfg.run
    ns = run.namespace
    doc = cfg.model_dump(mode="json", exclude={"serving": {"token"}})
    opts = dict(actor_options or {})
    life: dict[str, Any] = {"lifetime": "detached"} if detached else {}
    names = list(agents.actors)
    c_name, p_name = run.actor_name(mode, "consensus"), run.actor_name(mode, "portfolio")
    graph_name = run.actor_name(mode, GRAPH_SUFFIX.lstrip("-"))
    made: list[Any] = []
    try:
        consensus = remote_consensus(**placement(cfg.consensus.num_cpus, cfg.consensus.resources, opts),
                                     **life).remote(doc, names, c_name)
        made.append(consensus)
        portfolio = remote_portfolio(**placement(cfg.portfolio.num_cpus, cfg.portfolio.resources, opts),
                                     name=p_name, namespace=ns,
                                     **life).remote(doc, p_name)
        made.append(portfolio)
        graph = remote_graph(graph_name, ns, detached=detached).remote(
            graph_name, list(sources), agents.actors, consensus, portfolio, run.paper.max_inflight, run.paper.stall_s)
        made.append(graph)
        after = ray.get(portfolio.last_bar_ts.remote())  # also: the portfolio started (its journal verified)
        start_equity = float(ray.get(portfolio.snapshot.remote())["equity"])
        ray.get(graph.expect_after.remote(after))
        syms = list(symbols) if symbols else None
        ray.get([data.actors[s].start_stream.remote() for s in follow])  # a live feed: its stream pumps
    except BaseException:
        for actor in made:  # detached actors outlive this driver: never leave them behind
            ray.kill(actor, no_restart=True)
        raise
    publishers = [
        data.actors[s].publish.remote(graph, start, end, syms, cfg.agents.window, run.paper.speed,
                                      s in follow, after, run.paper.max_inflight)
        for s in sources
    ]
    return StreamRun(graph, consensus, portfolio, publishers, graph_name, ns, after,
                     [data.actors[s] for s in sources], start_equity)


def watch_stream(
    stream: StreamRun,
    should_stop: Callable[[], bool] = lambda: False,
    on_status: Callable[[dict[str, Any]], None] = lambda _: None,
    poll_s: float = 0.25,
) -> dict[str, Any]:
    """Watch a started stream until it finishes, fails or ``should_stop()`` (then stop it:
    bars in flight finish, checkpoints are written).  Returns the graph's last status."""
    import ray

    status: dict[str, Any] = {}
    error: str | None = None
    checked: set[Any] = set()
    while True:
        status = ray.get(stream.graph.status.remote())
        on_status(status)
        if status["state"] in ("finished", "stopped", "failed"):
            break
        if should_stop() or error is not None:
            ray.get(stream.graph.stop.remote())
            continue
        ready, _ = ray.wait(stream.publishers, num_returns=len(stream.publishers), timeout=poll_s)
        for ref in ready:
            if ref in checked:
                continue
            checked.add(ref)
            try:
                ray.get(ref)
            except Exception as exc:  # a source failed (its feed died): stop, and say so
                error = f"a source failed: {type(exc).__name__}: {str(exc)[:300]}"
        if error is None and len(ready) == len(stream.publishers):  # every source is done publishing
            status = ray.get(stream.graph.status.remote())
            if status["state"] == "running":  # a source stopped early: nothing more will come
                ray.get(stream.graph.stop.remote())
    # a publisher waiting for a feed's next bar (or pacing a replay) learns of the stop now
    pending = [r for r in stream.publishers if r not in checked]
    if pending:
        _, waiting = ray.wait(pending, num_returns=len(pending), timeout=0)
        if waiting:
            ray.get([src.stop_publishing.remote() for src in stream.sources])
    for ref in stream.publishers:
        if ref not in checked:
            try:
                ray.get(ref)
            except Exception as exc:
                error = error or f"a source failed: {type(exc).__name__}: {str(exc)[:300]}"
    status = ray.get(stream.graph.status.remote())
    if error is not None:
        status = {**status, "state": "failed", "error": status.get("error") or error}
    return status


def buy_and_hold(bars: pa.Table, times: Sequence[int], cash: float) -> np.ndarray:
    """Equal-weight buy-and-hold equity at ``times``, bought at the first time's closes (a
    symbol without a bar at a time keeps its last close)."""
    syms = _symbols(bars)
    col = {s: i for i, s in enumerate(syms)}
    at = {t: i for i, t in enumerate(times)}
    closes = np.full((len(times), len(syms)), np.nan)
    ts = bars.column("ts").cast(pa.int64()).to_numpy()
    sym = bars.column("symbol").cast(pa.string()).to_pylist()
    close = bars.column("close").to_numpy()
    for t, s_, c in zip(ts, sym, close, strict=True):
        if int(t) in at:
            closes[at[int(t)], col[s_]] = c
    for j in range(closes.shape[1]):  # carry the last close forward (and back to the start)
        v = closes[:, j]
        idx = np.where(~np.isnan(v), np.arange(len(v)), 0)
        np.maximum.accumulate(idx, out=idx)
        v[:] = v[idx]
        first = np.flatnonzero(~np.isnan(v))
        if first.size:
            v[: first[0]] = v[first[0]]
    return cash * (closes / closes[0]).mean(axis=1)


def _route(agent_outcomes: Any, names: Sequence[str]) -> dict[str, pa.Table]:
    """Each agent's own rows of ``ConsensusActor.learn``'s AGENT_OUTCOMES."""
    if not isinstance(agent_outcomes, pa.Table):
        raise TypeError(f"ConsensusActor.learn returned {type(agent_outcomes).__name__}, expected AGENT_OUTCOMES")
    col = agent_outcomes.column("agent")
    return {a: agent_outcomes.filter(pc.equal(col, a)) for a in names}


def _versions(votes: pa.Table) -> dict[str, str]:
    """Which version of each agent voted in ``votes`` (one bar)."""
    return dict(sorted(zip(votes.column("agent").to_pylist(), votes.column("model_version").to_pylist(), strict=True)))


def _day(ts: int) -> str:
    return str(np.datetime64(ts, "ns").astype("datetime64[D]"))


def _summary(d: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of a gate decision the demo prints and the report keeps."""
    outcomes = d.get("outcomes") or {}
    return {
        "agent": d["agent"], "version": d["version"], "parent": d["parent"], "promote": d["promote"],
        "reason": d["reason"], "metric": d["metric"],
        "challenger": None if d["challenger"] is None else d["challenger"].get(d["metric"]),  # None: retrain lost
        "champion": None if d["champion"] is None else d["champion"].get(d["metric"]),
        "outcomes_matched": outcomes.get("matched", 0), "outcomes_used_as": outcomes.get("used_as"),
        "serving": d["serving"], "seconds": d.get("seconds"),
    }


def _describe(p: Mapping[str, Any]) -> str:
    champ = "n/a" if p["champion"] is None else f"{p['champion']:.2f}"
    chal = "n/a" if p["challenger"] is None else f"{p['challenger']:.2f}"
    return (f"{p['agent']} {p['version']} (parent {p['parent']}) {'PROMOTED' if p['promote'] else 'rejected'}: "
            f"{p['metric']} {chal} vs champion {champ}; {p['outcomes_matched']} outcomes used "
            f"as {p['outcomes_used_as']}; serving {p['serving']}")


def _symbols(bars: pa.Table) -> list[str]:
    return sorted(set(bars.column("symbol").cast(pa.string()).to_pylist()))
