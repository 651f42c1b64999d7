"""``DataSourceActor``: one market-data source as an actor.

History, windows and features leave the actor as Arrow tables through the object store (the
caller owns one copy; every reader it hands the ref to reads it zero-copy).  A streaming
source is pumped in the background; every new batch is validated, appended, persisted and
announced to subscribers with an ObjectRef.  Bad input never stops the actor: a rejected batch
is recorded (and persisted under ``rejects/`` when a sink is configured), and the error is
available from ``describe()``.

Start-up is the one recovery path: the actor reloads its own persisted (encrypted, signed)
segments, so a restarted actor has its history back before the source answers again; a
``load()`` or a resumed stream after that only adds what is newer.

The class is plain Python (async methods); ``remote_data_source`` applies ``ray.remote`` at
the edge with explicit, small resources.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from tinywindow.contracts import BARS, Quarantine, symbol_codes, validate
from tinywindow.core.log import get_logger
from tinywindow.data import features as feats
from tinywindow.data.base import DataSource, TimeLike, select, to_utc_ns
from tinywindow.data.cache import TableCache
from tinywindow.data.config import DataConfig, SourceConfig
from tinywindow.data.history import BarHistory, tail_indices
from tinywindow.data.persist import SegmentSink, SegmentWriter, read_segment, segment_name
from tinywindow.data.sources import build_source
from tinywindow.errors import DataError, TinyWindowError

Subscriber = Any  # a Ray actor handle, or a plain callable in-process
MAX_REJECTS_KEPT = 100


def _is_ray_handle(obj: Any) -> bool:
    return hasattr(obj, "_actor_id")


class DataSourceActor:
    def __init__(
        self,
        source_cfg: SourceConfig | dict[str, Any],
        data_cfg: DataConfig | dict[str, Any] | None = None,
        sink: SegmentSink | Callable[[], SegmentSink] | None = None,
        source: DataSource | None = None,
    ) -> None:
        self.cfg = source_cfg if isinstance(source_cfg, SourceConfig) else SourceConfig(**source_cfg)
        self.data_cfg = data_cfg if isinstance(data_cfg, DataConfig | None) else DataConfig(**data_cfg)
        self.data_cfg = self.data_cfg or DataConfig(sources=[self.cfg])
        self.name = self.cfg.name
        self.log = get_logger(f"data.{self.name}")
        self.source = source or build_source(self.cfg, self.data_cfg.on_bad_rows, self._on_reject)
        self.bars = BarHistory(self.name)
        self.cache = TableCache(self.data_cfg.cache_bytes)
        resolved = sink() if callable(sink) and not isinstance(sink, SegmentSink) else sink
        self.writer = SegmentWriter(resolved, self.name, self.data_cfg.segment_rows) if resolved else None
        self.quarantined = Quarantine()
        self.rejects: list[dict[str, Any]] = []
        self.stale_rows = 0
        self.batches = 0
        self._subscribers: dict[str, tuple[Subscriber, str]] = {}
        self._stream_task: asyncio.Task[None] | None = None
        self._stream_state = "idle"
        self._stream_error: str | None = None
        self._bars_added = asyncio.Condition()
        self._publishing: dict[str, Any] | None = None
        self._publish_stop: asyncio.Event | None = None
        self.max_backlog = 0  # most bar times the stream ran ahead of the graph
        self.restored: dict[str, Any] = self._restore()

    # ------------------------------------------------------------------ start-up
    def _restore(self) -> dict[str, Any]:
        """Reload this source's persisted segments: the same path at first start (nothing
        there) and after a crash or restart (history comes back without the source).

        A segment that fails verification is refused, reported in ``describe()`` and
        skipped: corrupt data is worse than a gap the next ``load()`` fills.
        """
        sink = self.writer.sink if self.writer else None
        report: dict[str, Any] = {"segments": 0, "rows": 0, "refused": []}
        if sink is None or not (hasattr(sink, "list") and hasattr(sink, "read")):
            return report
        for name in sink.list(f"{self.name}/bars-"):
            try:
                table = validate(read_segment(sink, name), BARS, source=f"{self.name}:{name}")
            except TinyWindowError as exc:
                report["refused"].append({"segment": name, "error": f"{type(exc).__name__}: {exc}"})
                self.log.error("refused persisted segment %s: %s", name, exc)
                continue
            added, _ = self.bars.append(table, stale="drop")
            report["segments"] += 1
            report["rows"] += added.num_rows
        if report["segments"]:
            self.log.info("restored %d rows from %d segments", report["rows"], report["segments"])
        return report

    # ------------------------------------------------------------------ ingestion
    async def load(self, start: TimeLike = None, end: TimeLike = None) -> int:
        """Fetch history from the source; returns the number of new rows."""
        table = await asyncio.to_thread(self.source.fetch, None, start, end)
        self._absorb_quarantine()
        return self._ingest(table)

    def _absorb_quarantine(self) -> None:
        q = getattr(self.source, "quarantined", None)
        if isinstance(q, Quarantine):
            self.quarantined = q

    def _ingest(self, table: pa.Table) -> int:
        table = validate(table, BARS, source=self.name)
        added, stale = self.bars.append(table, stale="drop")
        self.stale_rows += stale
        if added.num_rows:
            self.batches += 1
            if self.writer is not None:
                self.writer.add(added)
        return added.num_rows

    def _on_reject(self, error: DataError, raw: pa.Table) -> None:
        """A streamed batch failed validation: record it (and keep its bytes) instead of
        applying any part of it."""
        record = {"error": str(error), "row": error.row, "column": error.column, "rows": raw.num_rows}
        if self.writer is not None:
            with contextlib.suppress(Exception):
                record["stored"] = self.writer.sink.write(segment_name(self.name, "rejects", raw), raw)
        self.rejects = [*self.rejects[-(MAX_REJECTS_KEPT - 1):], record]
        self.log.warning("rejected a batch: %s", error)

    # ------------------------------------------------------------------ queries
    def _cached(self, key: tuple[Any, ...], compute: Callable[[], pa.Table]) -> pa.Table:
        return self.cache.get_or_compute((self.bars.version, *key), compute)

    async def latest(self, symbols: Sequence[str] | None = None) -> pa.Table:
        """The newest bar of each symbol (BARS)."""
        return self.bars.latest(symbols)

    async def window(self, n: int, symbols: Sequence[str] | None = None) -> pa.Table:
        """The last ``n`` bars of each symbol (BARS, symbol-major)."""
        key = ("window", n, tuple(symbols) if symbols else None)
        return self._cached(key, lambda: self.bars.window(n, symbols))

    async def history(
        self, start: TimeLike = None, end: TimeLike = None, symbols: Sequence[str] | None = None
    ) -> pa.Table:
        """Bars with start <= ts < end (BARS, symbol-major)."""
        key = ("history", to_utc_ns(start), to_utc_ns(end), tuple(symbols) if symbols else None)
        return self._cached(key, lambda: self.bars.range(start, end, symbols))

    async def features(
        self, start: TimeLike = None, end: TimeLike = None, symbols: Sequence[str] | None = None
    ) -> pa.Table:
        """FEATURES over the full history (so warm-up is right), then selected."""
        full = self._cached(("features",), lambda: feats.compute(self.bars.table()))
        if start is None and end is None and symbols is None:
            return full
        key = ("features", to_utc_ns(start), to_utc_ns(end), tuple(symbols) if symbols else None)
        return self._cached(key, lambda: select(full, symbols, start, end))

    async def features_window(self, n: int, symbols: Sequence[str] | None = None) -> pa.Table:
        """FEATURES of the last ``n`` bars of each symbol, computed over n + warm-up bars."""
        key = ("features_window", n, tuple(symbols) if symbols else None)

        def compute() -> pa.Table:
            bars = self.bars.window(n + feats.WARMUP_BARS * 4, symbols)
            f = feats.compute(bars)
            return f.take(pa.array(tail_indices(symbol_codes(f), n))) if f.num_rows else f

        return self._cached(key, compute)

    async def describe(self) -> dict[str, Any]:
        last = self.bars.last_ts()
        stats = self.cache.stats()
        return {
            "name": self.name,
            "kind": self.cfg.kind,
            "symbols": self.bars.symbols(),
            "rows": self.bars.num_rows,
            "first_ts": _first_ts(self.bars.table()) if self.bars.num_rows else None,
            "last_ts": max(last.values()) if last else None,
            "quarantined": self.quarantined.count,
            "quarantine_reasons": dict(self.quarantined.reasons),
            "rejected_batches": len(self.rejects),
            "rejects": list(self.rejects[-5:]),
            "stale_rows_skipped": self.stale_rows,
            "stream": self._stream_state,
            "stream_error": self._stream_error,
            "max_backlog": self.max_backlog,
            "cache": {"hits": stats.hits, "misses": stats.misses, "bytes": stats.bytes, "entries": stats.entries},
            "segments": list(self.writer.segments) if self.writer else [],
            "restored": self.restored,
            "node": _node_id(),
        }

    # ------------------------------------------------------------------ streaming
    async def subscribe(self, subscriber: Subscriber, method: str = "on_bars", key: str | None = None) -> str:
        """Notify ``subscriber`` of every new batch: ``subscriber.<method>(notice)`` where
        notice = {"source", "rows", "last_ts", "bars": ObjectRef of the BARS table}."""
        key = key or f"sub-{len(self._subscribers)}-{id(subscriber)}"
        self._subscribers[key] = (subscriber, method)
        return key

    async def unsubscribe(self, key: str) -> bool:
        return self._subscribers.pop(key, None) is not None

    async def start_stream(self) -> str:
        if self._stream_task is None or self._stream_task.done():
            self._stream_state, self._stream_error = "running", None
            self._stream_task = asyncio.get_running_loop().create_task(self._pump())
        return self._stream_state

    async def stop_stream(self) -> str:
        if self._stream_task is not None and not self._stream_task.done():
            self._stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream_task
            self._stream_state = "stopped"
        await self.flush()
        return self._stream_state

    async def wait_stream(self, timeout_s: float = 60.0) -> str:
        """Wait until the stream ends (a finite replay) or ``timeout_s`` passes."""
        if self._stream_task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stream_task), timeout_s)
        return self._stream_state

    async def publish(
        self,
        graph: Any,
        start: TimeLike = None,
        end: TimeLike = None,
        symbols: Sequence[str] | None = None,
        window: int = 32,
        speed: float = 0.0,
        follow: bool = False,
        after: int | None = None,
        max_ahead: int = 2,
    ) -> dict[str, Any]:
        """Publish this source's bars to an actor graph, one bar time at a time, in order.

        For each bar time ``t`` in [start, end) after ``after`` (a resumed run's last bar):
        the BARS at ``t`` and the FEATURES of the last ``window`` rows of each symbol with a
        bar at ``t``, computed over this source's whole history up to ``t`` (nothing after
        it; the same values a backtest's full-history features have at ``t``), go to
        ``graph.on_bar(source, t, bars, features)``.  That call returns only when the graph has
        room, so a slow stage makes this source wait (backpressure).  ``speed``: market
        seconds per wall-clock second (0: as fast as the graph takes them).  ``follow``: a
        streaming source keeps publishing what its stream adds until the stream ends; while
        it publishes, the stream pump waits whenever more than ``max_ahead`` bar times are
        unpublished, so a burst waits in the feed, not in this actor's memory.  Ends with
        ``graph.finish(source)``; returns what was published."""
        from tinywindow.core.time import to_utc_ns as _ns

        lo, hi = _ns(start), _ns(end)
        last = after
        prev: int | None = None
        published = 0
        syms_filter = list(symbols) if symbols else None
        self._publish_stop = asyncio.Event()
        self._publishing = {"last": last, "max_ahead": max_ahead, "lo": lo, "hi": hi, "symbols": syms_filter}

        def result(stopped: bool) -> dict[str, Any]:
            return {"source": self.name, "published": published, "last_ts": last, "stopped": stopped}

        try:
            while not self._publish_stop.is_set():
                streaming = follow and self._stream_task is not None and not self._stream_task.done()
                lower = lo if last is None else max(lo if lo is not None else last + 1, last + 1)
                table = self.bars.range(lower, hi, syms_filter)
                times = sorted(set(table.column("ts").cast(pa.int64()).to_pylist())) if table.num_rows else []
                if streaming and times:
                    # a feed may split one bar time over two batches: the newest time is
                    # complete only once a later one (or the end of the stream) arrives
                    newest = max(self.bars.last_ts().values())
                    times = [t for t in times if t < newest]
                if not times:
                    if streaming:
                        async with self._bars_added:
                            with contextlib.suppress(asyncio.TimeoutError):
                                await asyncio.wait_for(self._bars_added.wait(), timeout=1.0)
                        continue
                    if follow and self._stream_state == "failed":
                        raise DataError(f"the feed failed: {self._stream_error}", source=self.name)
                    break
                for t in times:
                    if speed > 0 and prev is not None:
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self._publish_stop.wait(), timeout=(t - prev) / 1e9 / speed)
                    if self._publish_stop.is_set():
                        return result(True)
                    prev = t
                    bars_t = select(table, None, t, t + 1)
                    syms = sorted({str(x) for x in bars_t.column("symbol").to_pylist()})
                    upto = self.bars.range(None, t + 1, syms)  # read here, on the loop the pump appends on
                    feats_t = await asyncio.to_thread(_tail_features, upto, window)
                    accepted = await graph.on_bar.remote(self.name, int(t), bars_t, feats_t)
                    last = int(t)
                    published += 1
                    self._publishing["last"] = last
                    async with self._bars_added:
                        self._bars_added.notify_all()  # the pump may be waiting for room
                    if not accepted:  # the graph stopped
                        return result(True)
                if not follow:
                    break
            if self._publish_stop.is_set():
                return result(True)
        finally:
            self._publishing = None
            async with self._bars_added:
                self._bars_added.notify_all()
        await graph.finish.remote(self.name)
        return result(False)

    async def stop_publishing(self) -> bool:
        """End a ``publish`` now (it returns ``stopped``), even one waiting for the feed's
        next bar or pacing a replay; the stream pump stops with it."""
        if self._publish_stop is not None:
            self._publish_stop.set()
        await self.stop_stream()
        return True

    async def _wait_for_room(self) -> None:
        """While a graph is fed from this stream, hold the pump while more than ``max_ahead``
        bar times wait to be published (backpressure into the feed)."""
        async with self._bars_added:
            self._bars_added.notify_all()
            while self._publishing is not None:
                last, lo, hi = self._publishing["last"], self._publishing["lo"], self._publishing["hi"]
                floor = lo if last is None else last + 1 if lo is None else max(lo, last + 1)
                newer = self.bars.range(floor, hi, self._publishing["symbols"])  # bars waiting to be published
                backlog = len(set(newer.column("ts").cast(pa.int64()).to_pylist())) if newer.num_rows else 0
                self.max_backlog = max(self.max_backlog, backlog)
                if backlog <= self._publishing["max_ahead"]:
                    return
                await self._bars_added.wait()

    async def flush(self) -> list[str]:
        """Write buffered bars as a segment now."""
        return self.writer.flush() if self.writer else []

    async def _pump(self) -> None:
        it: Iterator[pa.Table] = iter(self.source.stream())
        done = object()
        try:
            while True:
                batch = await asyncio.to_thread(next, it, done)
                if batch is done:
                    break
                assert isinstance(batch, pa.Table)
                try:
                    added = self._ingest(batch)
                except DataError as exc:
                    self._on_reject(exc, batch)
                    continue
                finally:
                    self._absorb_quarantine()  # bad rows of a live stream are counted as they come
                if added:
                    self._notify(batch)
                    await self._wait_for_room()
            self._stream_state = "finished"
        except asyncio.CancelledError:
            raise
        except TinyWindowError as exc:
            self._stream_state, self._stream_error = "failed", f"{type(exc).__name__}: {exc}"
            self.log.error("stream failed: %s", exc)
        finally:
            self._absorb_quarantine()
            if self.writer is not None:
                self.writer.flush()

    def _notify(self, batch: pa.Table) -> None:
        if not self._subscribers:
            return
        last = self.bars.last_ts()
        notice: dict[str, Any] = {"source": self.name, "rows": batch.num_rows, "last_ts": max(last.values())}
        handles = [(s, m) for s, m in self._subscribers.values() if _is_ray_handle(s)]
        if handles:
            import ray

            notice["bars"] = ray.put(batch)
            for sub, method in handles:
                getattr(sub, method).remote(notice)
        for sub, _method in self._subscribers.values():
            if not _is_ray_handle(sub):
                sub({**notice, "bars": batch})


def _tail_features(bars: pa.Table, window: int) -> pa.Table:
    """FEATURES of ``bars`` (a source's history up to a bar), the last ``window`` rows of each
    symbol."""
    f = feats.compute(bars)
    return f.take(pa.array(tail_indices(symbol_codes(f), window))) if f.num_rows else f


def _node_id() -> str | None:
    """The Ray node this actor runs on (None in-process, without Ray)."""
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else None
    except Exception:  # no Ray context: a plain in-process instance
        return None


def _first_ts(table: pa.Table) -> int:
    import pyarrow.compute as pc

    return int(pc.min(table.column("ts").cast(pa.int64())).as_py())


def remote_data_source(num_cpus: float = 0.0, **options: Any) -> Any:
    """``DataSourceActor`` as a Ray actor class with explicit, small resources."""
    import ray

    opts = {"num_cpus": num_cpus, "max_concurrency": 16, **options}
    return ray.remote(DataSourceActor).options(**opts)
