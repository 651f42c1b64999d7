"""A feed server that replays any source over gRPC at a speed factor.

A publisher thread appends the source's bars, in time order, to an in-memory log; each
subscriber streams the log from the sequence number it asks for, as Arrow IPC record
batches of up to ``batch_rows`` bars (sliced from the log, never built bar by bar), waiting
for new bars when it has caught up.  When the replay is over, streams end normally (OK).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures

import grpc
import numpy as np
import pyarrow as pa

from tinywindow.core.log import get_logger
from tinywindow.data.base import DataSource, select, time_order
from tinywindow.data.feed import market_data_pb2 as pb
from tinywindow.data.feed import market_data_pb2_grpc as pb_grpc
from tinywindow.data.feed.codec import CHANNEL_OPTIONS, encode_batch

log = get_logger("feed.server")


class FeedLog:
    """The bars published so far, numbered from 1, with a condition to wait for more."""

    def __init__(self, table: pa.Table) -> None:
        self.table = time_order(table).unify_dictionaries().combine_chunks()
        self.ts = self.table.column("ts").cast(pa.int64()).to_numpy()
        symbol = self.table.column("symbol").combine_chunks()
        if not pa.types.is_dictionary(symbol.type):
            symbol = symbol.dictionary_encode()
        self.dictionary: list[str] = symbol.dictionary.to_pylist()
        self.codes = np.asarray(symbol.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        self.published = 0  # bars 1..published are visible
        self.finished = False
        self.cond = threading.Condition()

    def publish_until(self, n: int) -> None:
        with self.cond:
            self.published = max(self.published, min(n, self.table.num_rows))
            self.cond.notify_all()

    def finish(self) -> None:
        with self.cond:
            self.published = self.table.num_rows
            self.finished = True
            self.cond.notify_all()

    def wait_beyond(self, seq: int, timeout: float) -> bool:
        """Block until a bar after ``seq`` is published; False on timeout or end of replay."""
        with self.cond:
            self.cond.wait_for(lambda: self.published > seq or self.finished, timeout)
            return self.published > seq


def run_publisher(
    feed: FeedLog,
    speed: float,
    stop: threading.Event,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Publish the log one timestamp at a time; ``speed`` market seconds per wall second."""
    if speed <= 0 or feed.table.num_rows == 0:
        feed.finish()
        return
    cuts = np.flatnonzero(np.diff(feed.ts)) + 1
    ends = np.concatenate([cuts, [len(feed.ts)]])
    previous = int(feed.ts[0])
    for end in ends:
        if stop.is_set():
            return
        gap = (int(feed.ts[end - 1]) - previous) / 1e9 / speed
        if gap > 0:
            stop.wait(gap)
        previous = int(feed.ts[end - 1])
        feed.publish_until(int(end))
    feed.finish()


class MarketDataServicer(pb_grpc.MarketDataServicer):
    def __init__(self, feed: FeedLog, batch_rows: int = 256) -> None:
        self.feed = feed
        self.batch_rows = batch_rows

    def _codes(self, symbols: Sequence[str]) -> np.ndarray | None:
        """Dictionary codes of the wanted symbols; None for every symbol."""
        if not symbols:
            return None
        wanted = set(symbols)
        return np.array([i for i, s in enumerate(self.feed.dictionary) if s in wanted], dtype=np.int64)

    def _batch(self, lo: int, hi: int, codes: np.ndarray | None) -> pb.BarBatch:
        """Bars with seq in [lo, hi] (1-based) whose symbol code is in ``codes`` (all if None)."""
        part = self.feed.table.slice(lo - 1, hi - lo + 1)
        seqs = np.arange(lo, hi + 1, dtype=np.uint64)
        if codes is not None:
            keep = np.isin(self.feed.codes[lo - 1 : hi], codes)
            part, seqs = part.filter(pa.array(keep)), seqs[keep]
        return encode_batch(part, seqs, lo, hi)

    def Subscribe(self, request: pb.SubscribeRequest, context: grpc.ServicerContext) -> Iterator[pb.BarBatch]:
        wanted = self._codes(request.symbols)
        seq = int(request.after_seq)
        while context.is_active():
            if not self.feed.wait_beyond(seq, timeout=0.5):
                if self.feed.finished and self.feed.published <= seq:
                    return
                continue
            hi = min(self.feed.published, seq + self.batch_rows)
            yield self._batch(seq + 1, hi, wanted)
            seq = hi

    def History(self, request: pb.HistoryRequest, context: grpc.ServicerContext) -> Iterator[pb.BarBatch]:
        table = select(
            self.feed.table,
            list(request.symbols) or None,
            request.start_ns or None,
            request.end_ns or None,
        )
        for lo in range(0, table.num_rows, self.batch_rows):
            part = table.slice(lo, self.batch_rows)
            hi = lo + part.num_rows
            yield encode_batch(part, np.arange(lo + 1, hi + 1, dtype=np.uint64), lo + 1, hi)

    def Symbols(self, request: pb.SymbolsRequest, context: grpc.ServicerContext) -> pb.SymbolsReply:
        present = sorted(self.feed.dictionary[int(c)] for c in np.unique(self.feed.codes))
        return pb.SymbolsReply(symbols=present, last_seq=self.feed.published)


class FeedServer:
    """A running feed server; ``port=0`` picks a free port (see ``.port``)."""

    def __init__(
        self,
        source: DataSource | pa.Table,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 0.0,
        batch_rows: int = 256,
        servicer: Callable[[FeedLog, int], pb_grpc.MarketDataServicer] = MarketDataServicer,
    ) -> None:
        table = source if isinstance(source, pa.Table) else source.fetch()
        self.feed = FeedLog(table)
        self.speed = speed
        self._stop = threading.Event()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=CHANNEL_OPTIONS)
        pb_grpc.add_MarketDataServicer_to_server(servicer(self.feed, batch_rows), self._server)
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind feed server to {host}:{port}")
        self.address = f"{host}:{self.port}"
        self._publisher = threading.Thread(
            target=run_publisher, args=(self.feed, speed, self._stop), daemon=True, name="feed-publisher"
        )

    def start(self) -> FeedServer:
        self._server.start()
        self._publisher.start()
        log.info("feed serving %d bars on %s at speed %s", self.feed.table.num_rows, self.address, self.speed or "max")
        return self

    def stop(self, grace: float | None = 0.5) -> None:
        self._stop.set()
        self._server.stop(grace).wait()

    def wait(self) -> None:
        self._server.wait_for_termination()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
