"""The engine a ``tinywindow run`` (and the demo) composes: data, agents and serving once, then
any number of trading runs on them (backtest through ``pipeline.run_trading``; paper and live
through the actor graph, ``pipeline.start_stream``).  CLI-private: the commands print, this
module composes and returns plain data."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tinywindow.config import Config

Say = Callable[[str], None]


def progress(total: int | None, desc: str, unit: str = "it") -> Any:
    """A tqdm bar on stderr, quiet when stderr is not a terminal (logs, CI, jobs)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                disable=not sys.stderr.isatty() or bool(os.environ.get("TW_NO_PROGRESS")))


class StopFlag:
    """Set by SIGINT / SIGTERM while installed (``signals``); a second SIGINT raises."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self) -> bool:
        return self.reason is not None

    @contextmanager
    def signals(self) -> Iterator[StopFlag]:
        def handler(signum: int, _frame: Any) -> None:
            if self.reason is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.reason = signal.Signals(signum).name
            print(f"\n{self.reason}: finishing the bars in flight, writing checkpoints, then stopping "
                  "(Ctrl-C again to abandon)", file=sys.stderr, flush=True)

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


@dataclass
class Engine:
    cfg: Config
    data: Any = None
    agents: Any = None
    plan: Any = None
    bars: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    serving: bool = False
    detached: bool = False
    _key: str = "backtest"
    _before: Callable[[], None] = field(default=lambda: None)

    # ------------------------------------------------------------------ start
    def start_data(self, say: Say) -> list[dict[str, Any]]:
        import ray

        from actors import pipeline
        from tinywindow.engine.plan import make_plan

        bar = progress(len(self.cfg.data.sources), "ingest", "source")
        self.data = pipeline.start_data(self.cfg, on_loaded=lambda _: bar.update())
        bar.close()
        self.bars = {n: ray.get(a.history.remote()) for n, a in self.data.actors.items()}
        feeds = {s.name for s in self.cfg.data.sources if s.kind == "grpc"}
        self.plan = make_plan(self.cfg.run, self.cfg.agents, self.bars, allow_empty=feeds)
        return self.data.summary  # type: ignore[no-any-return]

    def start_agents(self, say: Say) -> dict[str, dict[str, Any]]:
        from actors import pipeline
        from tinywindow.models.params import DEMO_BUDGET, TEST_BUDGET

        run = self.cfg.run
        budget = {"test": TEST_BUDGET, "demo": DEMO_BUDGET, "full": {}}[run.budget]
        train_sources = run.train_sources or list(self.data.actors)
        features = pipeline.features_of(self.data, train_sources, run.train.start, run.train.end, run.symbols or None)
        bar = progress(len(run.agents), "train", "agent")
        self.agents = pipeline.start_agents(
            self.cfg, features, {k: dict(v) for k, v in budget.items()}, agents=list(run.agents),
            retrain=run.retrain_models, on_trained=lambda _: bar.update())
        bar.close()
        self.versions = {a: r["version"] for a, r in self.agents.trained.items()}
        return self.agents.trained  # type: ignore[no-any-return]

    def start_serving(self) -> float:
        import ray

        from actors import serving
        from tinywindow.serving.auth import serving_token, token_digest

        t0 = time.perf_counter()
        digest = token_digest(serving_token(self.cfg.serving))
        serving.start(self.cfg, list(self.versions), digest, dict(self.versions))
        ray.get([actor.attach_serving.remote(serving.APP_NAME) for actor in self.agents.actors.values()])
        self.serving = True
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ trade
    def trade(self, mode: str, cfg: Config | None = None, say: Say = print,
              should_stop: Callable[[], bool] = lambda: False, key: str | None = None,
              before_teardown: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """One trading run of ``mode`` on the started engine; returns its summary (also
        written to ``<data_dir>/summary.json`` under ``key``, default the mode) and kills the
        run's consensus, portfolio and graph afterwards (``before_teardown()`` first: the
        live consensus still answers the serving gateway then)."""
        cfg = cfg or self.cfg
        self._key, self._before = key or mode, before_teardown
        if mode == "backtest":
            return self._backtest(cfg, say, should_stop)
        return self._stream(cfg, mode, say, should_stop)

    def _trade_names(self, cfg: Config) -> tuple[list[str], list[str] | None]:
        return list(cfg.run.trade_sources or list(self.data.actors)), list(cfg.run.symbols) or None

    def _backtest(self, cfg: Config, say: Say, should_stop: Callable[[], bool]) -> dict[str, Any]:
        import ray

        from actors import pipeline

        run = cfg.run
        sources, symbols = self._trade_names(cfg)
        bar = progress(self.plan.trade_bars if cfg is self.cfg else None, "backtest", "bar")
        report = pipeline.run_trading(
            cfg, self.data, self.agents, sources, str(run.trade.start), str(run.trade.end), period_bars=run.period_bars,
            say=say, symbols=symbols, on_bar=lambda *_: bar.update(), should_stop=should_stop,
            actor_names={"consensus": run.actor_name("backtest", "consensus"),
                         "portfolio": run.actor_name("backtest", "portfolio")})
        bar.close()
        try:
            orders = ray.get(report.portfolio.orders.remote())
            summary = self._summary(cfg, "backtest", report.signals, orders, report.order_sides, report.snapshot,
                                    report.equity, list(report.benchmark_equity), report.times,
                                    {a: sorted({v for _, vs in report.versions_by_bar for k, v in vs.items() if k == a})
                                     for a in self.agents.actors},
                                    report.promotions, report.outcomes, len(report.risk_events), report.journal["ok"],
                                    report.seconds, report.start_equity or cfg.portfolio.initial_cash_usd,
                                    {"stopped": report.stopped, "resumed_after": report.resumed_after})
        finally:
            try:
                self._before()
            finally:
                _kill(report.consensus, report.portfolio)
        summary["report"] = report
        return summary

    def _stream(self, cfg: Config, mode: str, say: Say, should_stop: Callable[[], bool]) -> dict[str, Any]:
        import numpy as np
        import ray

        from actors import pipeline

        run = cfg.run
        sources, symbols = self._trade_names(cfg)
        start: Any = run.trade.start
        end = run.trade.end
        window = pipeline.bars_of(self.data, sources, start, end, symbols)
        times = np.unique(window.column("ts").cast("int64").to_numpy())
        if run.paper.bars is not None and len(times) > run.paper.bars:
            times = times[-run.paper.bars:]
            start = int(times[0])
        follow = [s.name for s in cfg.data.sources if s.kind == "grpc" and s.name in sources]
        t0 = time.perf_counter()
        stream = pipeline.start_stream(cfg, self.data, self.agents, sources, start, end, mode=mode, symbols=symbols,
                                       follow=follow, detached=self.detached)
        bar = progress(None if follow else len(times), mode, "bar")
        seen = [0]

        def on_status(st: dict[str, Any]) -> None:
            bar.update(st["bars"] - seen[0])
            seen[0] = st["bars"]

        try:
            status = pipeline.watch_stream(stream, should_stop, on_status)
            bar.close()
            if status["state"] == "failed":
                say(f"  the graph failed: {status['error']}")
            curve = ray.get(stream.graph.equity_curve.remote())
            orders = ray.get(stream.portfolio.orders.remote())
            snapshot = ray.get(stream.portfolio.snapshot.remote())
            journal = ray.get(stream.portfolio.verify_journal.remote())
            risk = ray.get(stream.portfolio.risk_events.remote())
            traded = [t for t, _ in curve]
            start_cash = stream.start_equity or cfg.portfolio.initial_cash_usd
            bench = list(pipeline.buy_and_hold(window, traded, start_cash)) if traded else []
            summary = self._summary(
                cfg, mode, status["signals"], orders, status["order_sides"], snapshot, [float(e) for _, e in curve],
                [float(x) for x in bench], traded, status["versions"], [], status["outcomes"], len(risk), journal["ok"],
                time.perf_counter() - t0, start_cash,
                {"state": status["state"], "error": status["error"], "resumed_after": stream.resumed_after,
                 "latency_ms": status["latency_ms"], "max_inflight": status["max_inflight"],
                 "max_inflight_seen": status["max_inflight_seen"], "speed": run.paper.speed,
                 "sources": {d["name"]: {k: d[k] for k in ("quarantined", "rejected_batches", "stream",
                                                           "stream_error", "max_backlog")}
                             for d in ray.get([src.describe.remote() for src in stream.sources])}})
        finally:
            try:
                self._before()
            finally:
                _kill(stream.graph, stream.consensus, stream.portfolio)
        return summary

    def _summary(self, cfg: Config, mode: str, signals: Any, orders: Any, sides: Any, snapshot: Any,
                 equity: list[float], bench: list[float], times: list[int], voted: dict[str, list[str]],
                 promotions: Any, outcomes: int, risk_events: int, journal_ok: bool, seconds: float,
                 start_cash: float, extra: dict[str, Any]) -> dict[str, Any]:
        import ray

        from tinywindow.engine import summary as S
        from tinywindow.engine.config import periods_per_year

        serving = {a: ray.get(h.version.remote()) for a, h in self.agents.actors.items()}
        doc = S.build(
            mode=mode, run=cfg.run.name, signals=signals, orders=orders, order_sides=sides, snapshot=snapshot,
            equity=equity, benchmark=bench, start_cash=start_cash,
            first=_day(times[0]) if times else None, last=_day(times[-1]) if times else None,
            versions=voted, serving=serving, promotions=promotions, outcomes=outcomes, risk_events=risk_events,
            journal_ok=journal_ok, seconds=seconds, periods=periods_per_year(cfg.run.bar), extra=extra)
        S.write(cfg.path("summary.json"), self._key, doc)
        return doc

    def stop(self) -> None:
        from actors.runtime import shutdown

        shutdown(self.agents.actors.values() if self.agents is not None else ())


def _kill(*actors: Any, timeout_s: float = 60.0) -> None:
    """Kill a run's actors and wait until the live-consensus name is free again, so the next
    run's consensus registers under it (the serving gateway asks that one)."""
    import ray

    from actors.consensus import live_consensus

    for actor in actors:
        ray.kill(actor, no_restart=True)
    deadline = time.monotonic() + timeout_s
    ids = {a._actor_id for a in actors}
    while time.monotonic() < deadline:
        live = live_consensus()
        if live is None or live._actor_id not in ids:
            return
        time.sleep(0.05)


def _day(ts: int) -> str:
    import numpy as np

    return str(np.datetime64(int(ts), "ns"))[:10]
