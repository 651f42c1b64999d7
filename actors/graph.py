"""The actor graph of paper and live trading: actors pass work to each other; the driver only
starts, watches and stops it.

    DataSourceActor.publish --(bar t: BARS, FEATURES)--> GraphActor.on_bar
        -> every AgentActor.predict(FEATURES ref)          (through its Serve deployment)
        -> ConsensusActor.on_agent_votes(t, *VOTES refs)   -> SIGNALS ref
        -> PortfolioActor.step(SIGNALS ref, BARS ref)      -> ORDERS, OUTCOMES ref, equity
        -> ConsensusActor.learn(OUTCOMES ref)              -> AGENT_OUTCOMES ref
        -> every AgentActor.feedback_own(AGENT_OUTCOMES ref)
        -> every AgentActor.explain_and_record(FEATURES ref, ORDERS ref)  (journals why it voted)

The GraphActor submits each bar's calls without waiting for their results: Ray resolves the
references between the actors, and because one caller submits everything, each actor runs
its calls in bar order (consensus: learn(t-1) before on_agent_votes(t); portfolio:
step(t-1) before step(t)) - the order of ``actors.pipeline.run_trading``, so a backtest and a
paper run of the same bars and models trade the same ledger.  A restarted consensus or
portfolio (its node lost) gets the calls in flight again (``max_task_retries``), but Ray 2.60
does not keep their submission order then: so on_agent_votes(t) also takes learn(t-1)'s result
as an argument, and Ray runs it only after that one (step(t) follows through the data).  At most ``run.paper.max_inflight``
bars are in the graph; ``on_bar`` returns only when there is room, and the source awaits it
(backpressure: a slow stage makes the source wait, memory stays bounded).  Several sources
are merged onto one clock by watermark (``tinywindow.engine.merge``).

The GraphActor is named (``<run>-<mode>-graph`` in ``run.namespace``) and, like the actors it
drives, detached when the run asks for it, so ``tinywindow status|stop`` find it from another
shell or job.  ``stop()`` takes no new bars, lets the bars in flight finish, checkpoints the
consensus and the portfolio and reports ``stopped``; the next run resumes after the last bar
the portfolio processed (orders are idempotent by signal, outcomes learned once: nothing is
lost or doubled).  ``set_config(changes)`` changes the risk and consensus settings of a running
graph, on both actors or neither, between two bars (``tinywindow config set``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from actors import metrics as engine_metrics
from tinywindow.core.log import get_logger
from tinywindow.data.base import concat_bars
from tinywindow.engine.merge import Released, WatermarkMerge

GRAPH_SUFFIX = "-graph"


@dataclass
class _InFlight:
    ts: int
    submitted: float
    refs: dict[str, Any]  # stage -> ref (or list of refs)
    decided: float = 0.0  # perf_counter when its ORDERS resolved
    released: float = 0.0  # perf_counter when _submit began (before its puts and calls)


@dataclass
class GraphStats:
    bars: int = 0
    signals: dict[str, int] = field(default_factory=lambda: {"long": 0, "short": 0, "flat": 0, "no_decision": 0})
    orders: int = 0
    order_sides: dict[str, int] = field(default_factory=lambda: {"buy": 0, "sell": 0})
    outcomes: int = 0
    latency_ms: list[float] = field(default_factory=list)  # bar released -> its orders known
    decision_ms: list[float] = field(default_factory=list)  # bar released (_submit began) -> its ORDERS resolved (bench/latency.py)
    max_inflight_seen: int = 0


class GraphActor:
    """See the module docstring.  An async actor: one event loop, no locks."""

    def __init__(
        self,
        name: str,
        sources: Sequence[str],
        agents: Mapping[str, Any],
        consensus: Any,
        portfolio: Any,
        max_inflight: int = 4,
        stall_s: float = 600.0,
        keep_latency: int = 100_000,
    ) -> None:
        self.name = name
        self.log = get_logger(f"graph.{name}")
        self.merge = WatermarkMerge(sources)
        self.agents = dict(agents)
        self.consensus, self.portfolio = consensus, portfolio
        self.max_inflight, self.stall_s, self.keep_latency = max_inflight, stall_s, keep_latency
        self.inflight: deque[_InFlight] = deque()
        self.state = "running"
        self.error: str | None = None
        self.stats = GraphStats()
        self.equity: list[tuple[int, str]] = []
        self.versions: dict[str, set[str]] = {a: set() for a in self.agents}
        self.started = time.time()
        self._draining = asyncio.Lock()
        self._stopped = asyncio.Event()  # set when a stop has drained and checkpointed
        self.prev_ts: int | None = None  # the bar before the next one (the portfolio checks it)
        self._learned: Any = None  # the previous bar's learn ref: the next bar's decision waits for it
        self._settings_lock = asyncio.Lock()  # one runtime settings change at a time

    # ------------------------------------------------------------------ flow
    async def on_bar(self, source: str, ts: int, bars: pa.Table, features: pa.Table) -> bool:
        """A source's bar time; returns once the graph has room (False: stopped, or failed)."""
        if self.state != "running":
            return False
        try:
            for released in self.merge.add(source, ts, (bars, features)):
                self._submit(released)
            await self._drain(self.max_inflight - 1)
        except Exception as exc:  # a stage failed: stop taking bars, say which
            self._fail(exc)
            return False
        return self.state == "running"

    async def finish(self, source: str) -> str:
        """``source`` has published its last bar."""
        if self.state == "running":
            try:
                for released in self.merge.finish(source):
                    self._submit(released)
                if not self.merge.running:
                    await self._drain(0)
                    await self._checkpoint()
                    self.state = "finished"
            except Exception as exc:
                self._fail(exc)
        return self.state

    def _submit(self, r: Released) -> None:
        import ray

        released = time.perf_counter()
        parts = list(r.parts.values())
        bars = concat_bars([b for b, _ in parts])
        feats = pa.concat_tables([f for _, f in parts]).unify_dictionaries().combine_chunks()
        bars_ref, feats_ref = ray.put(bars), ray.put(feats)
        votes = [self.agents[a].predict.remote(feats_ref, True) for a in self.agents]
        signals = self.consensus.on_agent_votes.remote(r.ts, *votes, after=self._learned)
        orders, outcomes, equity = self.portfolio.step.options(num_returns=3).remote(signals, bars_ref, self.prev_ts)
        self.prev_ts = r.ts
        learned = self._learned = self.consensus.learn.remote(outcomes)
        feedback = [self.agents[a].feedback_own.remote(learned) for a in self.agents]
        # awaited like feedback (its errors stop the graph); in bar order per agent like every call
        explained = [self.agents[a].explain_and_record.remote(feats_ref, orders) for a in self.agents]
        self.inflight.append(_InFlight(r.ts, time.perf_counter(), {
            "votes": votes, "signals": signals, "orders": orders, "outcomes": outcomes, "equity": equity,
            "learn": learned, "feedback": feedback, "explained": explained}))
        self.inflight[-1].released = released
        self.stats.max_inflight_seen = max(self.stats.max_inflight_seen, len(self.inflight))

    async def _drain(self, keep: int) -> None:
        """Complete the oldest bars until at most ``keep`` are in flight (one drainer at a
        time: every source's ``on_bar`` waits here)."""
        async with self._draining:
            await self._drain_locked(keep)

    async def _drain_locked(self, keep: int) -> None:
        while len(self.inflight) > keep:
            bar = self.inflight[0]
            stage = "?"
            try:
                for stage in ("votes", "signals", "orders", "outcomes", "equity", "learn", "feedback",
                              "explained"):
                    ref = bar.refs[stage]
                    got = await asyncio.wait_for(_gather(ref), timeout=self.stall_s)
                    bar.refs[stage] = got
                    if stage == "orders":
                        bar.decided = time.perf_counter()
            except TimeoutError:
                raise TimeoutError(f"bar {_day(bar.ts)} still at stage {stage} after {self.stall_s:g}s") from None
            except Exception as exc:
                raise RuntimeError(f"bar {_day(bar.ts)} failed at stage {stage}: {type(exc).__name__}: "
                                   f"{str(exc)[:300]}") from exc
            self.inflight.popleft()
            self._account(bar)

    def _account(self, bar: _InFlight) -> None:
        got = bar.refs
        s = self.stats
        s.bars += 1
        decision_ms = (bar.decided - bar.released) * 1e3
        engine_metrics.decision_latency(self.name, decision_ms)
        if len(s.latency_ms) < self.keep_latency:
            s.latency_ms.append((time.perf_counter() - bar.submitted) * 1e3)
            s.decision_ms.append(decision_ms)
        sig: pa.Table = got["signals"]
        for action, decided in zip(sig.column("action").to_pylist(), sig.column("decided").to_pylist(), strict=True):
            s.signals["no_decision" if not decided else "long" if action > 0 else "short" if action < 0 else "flat"] += 1
        orders: pa.Table = got["orders"]
        s.orders += orders.num_rows
        for side in orders.column("side").to_pylist():
            s.order_sides["buy" if side > 0 else "sell"] += 1
        s.outcomes += got["outcomes"].num_rows
        self.equity.append((bar.ts, got["equity"]))
        for agent, votes in zip(self.agents, got["votes"], strict=True):
            at = votes.filter(pc.equal(votes.column("ts").cast(pa.int64()), bar.ts))
            self.versions[agent].update(at.column("model_version").to_pylist())

    def _fail(self, exc: BaseException) -> None:
        if self.state == "failed":
            return  # the first failure is the cause (another source's drain then trips over its bar)
        self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
        self.log.error("graph %s failed: %s", self.name, self.error)

    async def _checkpoint(self) -> None:
        await asyncio.gather(self.consensus.checkpoint.remote(), self.portfolio.checkpoint.remote())

    # ------------------------------------------------------------------ operator
    async def expect_after(self, ts: int | None) -> None:
        """The last bar the portfolio has processed (a resumed run): each ``step`` names the
        bar before it, and the portfolio refuses one whose predecessor it has not processed,
        so a bar that failed is never skipped over (the next run resumes at it)."""
        self.prev_ts = ts

    async def stop(self) -> str:
        """Take no new bars; finish the bars in flight; checkpoint.  Idempotent: a second
        call waits for the first one's drain and returns the same final state."""
        if self.state == "running":
            self.state = "stopping"
            try:
                await self._drain(0)
                await self._checkpoint()
                self.state = "stopped"
            except Exception as exc:
                self._fail(exc)
            finally:
                self._stopped.set()
        elif self.state == "stopping":
            await self._stopped.wait()
        return self.state

    async def status(self) -> dict[str, Any]:
        s = self.stats
        lat = sorted(s.latency_ms)
        dec = sorted(s.decision_ms)

        def pct(q: float) -> float | None:
            return None if not lat else round(lat[min(len(lat) - 1, int(q * len(lat)))], 3)

        return {
            "name": self.name, "state": self.state, "error": self.error, "bars": s.bars,
            "inflight": len(self.inflight), "max_inflight": self.max_inflight,
            "max_inflight_seen": s.max_inflight_seen, "signals": dict(s.signals), "orders": s.orders,
            "order_sides": dict(s.order_sides), "outcomes": s.outcomes,
            "equity": self.equity[-1][1] if self.equity else None,
            "last_ts": self.equity[-1][0] if self.equity else None,
            "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "n": len(lat)},
            "decision_ms": {"p50": _pct(dec, 0.5), "p99": _pct(dec, 0.99), "n": len(dec)},
            "versions": {a: sorted(v) for a, v in self.versions.items()},
            "watermark": self.merge.watermark(), "sources_running": sorted(self.merge.running),
            "uptime_s": round(time.time() - self.started, 1),
        }

    # ------------------------------------------------------------------ runtime settings
    async def settings(self) -> dict[str, Any]:
        """The risk (portfolio) and consensus settings in effect, and their runtime changes."""
        risk, consensus = await asyncio.gather(self.portfolio.settings.remote(), self.consensus.settings.remote())
        return {"risk": risk, "consensus": consensus}

    async def set_config(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the running engine's risk and consensus settings: every actor or none.

        ``changes``: dotted keys (``{"risk.max_position": 0.1}``), only ``risk.*`` (the
        portfolio) and ``consensus.*`` (the consensus); anything else is a ``ConfigError``
        naming the key.  Each section touched is built from the actor's section in effect with
        the changes applied and validated by its model (a bad value: ``ConfigError`` naming
        the key, in ``Config.set``'s words).  Then every actor touched prepares the change
        (validates it again with its own cross-checks and stages it, applying nothing); if
        any refuses, all abort and the error is raised: nothing changed anywhere.  Otherwise
        the commits are submitted together, with no bar submitted between them: each actor
        applies and journals the change after the calls of every bar submitted before and
        before the calls of the next.  Bars already in flight were submitted before the
        change and run under the old settings; the change applies from the next bar
        submitted (``after_bar`` in the result: the last bar under the old settings).
        """
        import uuid

        from tinywindow.config import runtime_changes
        from tinywindow.consensus.config import STARTUP_ONLY as CONSENSUS_STARTUP_ONLY
        from tinywindow.consensus.config import ConsensusConfig
        from tinywindow.core.runtime_settings import changed_section
        from tinywindow.errors import TransientError
        from tinywindow.risk.config import STARTUP_ONLY as RISK_STARTUP_ONLY
        from tinywindow.risk.config import RiskConfig

        plan = runtime_changes(changes)
        actors = {"risk": self.portfolio, "consensus": self.consensus}
        models: dict[str, Any] = {"risk": (RiskConfig, RISK_STARTUP_ONLY),
                                  "consensus": (ConsensusConfig, CONSENSUS_STARTUP_ONLY)}
        async with self._settings_lock:
            got = await asyncio.gather(*(actors[s].settings.remote() for s in plan))
            current = {s: g["values"] for s, g in zip(plan, got, strict=True)}
            new: dict[str, dict[str, Any]] = {}
            for s, fields in plan.items():
                model, fixed = models[s]
                section, _ = changed_section(model.model_validate(current[s]), s, fields, fixed)
                new[s] = section.model_dump(mode="json")
            change_id = uuid.uuid4().hex[:16]
            prepared = await asyncio.gather(*(actors[s].prepare_settings.remote(new[s], change_id) for s in plan),
                                            return_exceptions=True)
            refused = [r for r in prepared if isinstance(r, BaseException)]
            if refused:
                await asyncio.gather(*(actors[s].abort_settings.remote(change_id) for s in plan),
                                     return_exceptions=True)
                raise _cause(refused[0])
            after = self.inflight[-1].ts if self.inflight else (self.equity[-1][0] if self.equity else None)
            # submitted with no await between them: no bar's calls can come between the commits
            commits = [actors[s].commit_settings.remote(change_id, new[s]) for s in plan]
            done = await asyncio.gather(*commits, return_exceptions=True)
        failed = {s: r for s, r in zip(plan, done, strict=True) if isinstance(r, BaseException)}
        if failed:
            ok = sorted(set(plan) - set(failed))
            s, exc = next(iter(failed.items()))
            raise TransientError(
                f"settings change {change_id} was committed on {', '.join(ok) or 'no section'} but failed on "
                f"{s}: {type(_cause(exc)).__name__}: {str(_cause(exc))[:300]}; set the same values again "
                "(a section that has them already is left as it is)")
        self.log.info("graph %s: settings change %s after bar %s: %s", self.name, change_id,
                      None if after is None else _day(after), dict(changes))
        return {
            "graph": self.name, "state": self.state, "change_id": change_id,
            "after_bar": None if after is None else _day(after),
            "changes": {f"{s}.{k}": {"from": current[s][k], "to": new[s][k]} for s, fields in plan.items() for k in fields},
        }

    async def equity_curve(self) -> list[tuple[int, str]]:
        return list(self.equity)

    async def latencies(self) -> list[float]:
        return list(self.stats.latency_ms)

    async def decisions(self) -> list[float]:
        """Each bar's decision latency (ms): released into the graph (``_submit`` began) -> its ORDERS resolved."""
        return list(self.stats.decision_ms)


def _pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile of sorted ``values`` (None: empty), as ``status`` reports it."""
    return None if not values else round(values[min(len(values) - 1, int(q * len(values)))], 3)


async def _gather(ref: Any) -> Any:
    if isinstance(ref, list):
        return list(await asyncio.gather(*ref))
    return await ref


def _cause(exc: BaseException) -> BaseException:
    """The error an actor raised, out of Ray's wrapper (a ``ConfigError`` stays one)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else exc


def _day(ts: int) -> str:
    import numpy as np

    return str(np.datetime64(int(ts), "ns"))[:19]


def remote_graph(name: str, namespace: str, detached: bool = False, **options: Any) -> Any:
    """``GraphActor`` as a named Ray actor (``detached``: outlives the driver that made it).

    It runs on the node of the process that creates it (the driver: the head for a cluster
    job).  With no resources of its own Ray places it on any node (a soft affinity spreads it
    too, measured on Ray 2.60), and a graph has no restart path (its bars in flight live in its
    memory): it must not go down with a worker node whose actors restart elsewhere."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    opts: dict[str, Any] = {"num_cpus": 0, "name": name, "namespace": namespace, "max_concurrency": 64,
                            "scheduling_strategy": here, **options}
    if detached:
        opts["lifetime"] = "detached"
    return ray.remote(GraphActor).options(**opts)


def find_graphs(namespace: str | None = None) -> list[tuple[str, str]]:
    """(namespace, name) of every running graph actor (all namespaces unless one is given)."""
    from ray.util import list_named_actors

    out = []
    for entry in list_named_actors(all_namespaces=True):
        ns, name = entry["namespace"], entry["name"]
        if name.endswith(GRAPH_SUFFIX) and (namespace is None or ns == namespace):
            out.append((ns, name))
    return sorted(out)
