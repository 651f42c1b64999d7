"""The gRPC feed on loopback: replay, resume without gaps or duplicates, hostile servers."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pyarrow as pa
import pytest

from tinywindow.data.base import concat_bars, time_order
from tinywindow.data.feed import market_data_pb2 as pb
from tinywindow.data.feed.client import GrpcFeedSource
from tinywindow.data.feed.server import FeedLog, FeedServer, MarketDataServicer
from tinywindow.data.sources.synthetic import generate
from tinywindow.errors import DataError, TransientError

BARS_ = generate(4, 50, seed=3)


def _collect(src: GrpcFeedSource) -> pa.Table:
    return concat_bars(list(src.stream()))


def _key(t: pa.Table) -> list[tuple[str, int]]:
    return sorted(zip(t.column("symbol").to_pylist(), t.column("ts").cast(pa.int64()).to_pylist(), strict=True))


def test_stream_history_and_symbols() -> None:
    with FeedServer(BARS_, batch_rows=7) as server:
        src = GrpcFeedSource("feed", server.address)
        got = _collect(src)
        assert _key(got) == _key(BARS_) and src.last_seq == 200
        assert src.symbols() == ["SYN0000", "SYN0001", "SYN0002", "SYN0003"]
        hist = src.fetch(["SYN0002"], "2007-01-10", "2007-02-01")
        assert set(hist.column("symbol").to_pylist()) == {"SYN0002"} and hist.num_rows == 16
        one = GrpcFeedSource("f1", server.address, symbols=["SYN0001"])
        assert _collect(one).num_rows == 50


class DroppingServicer(MarketDataServicer):
    """Aborts each of the first ``drops`` subscriptions after a few batches, and resends the
    last batch it sent on every reconnect (duplicates the client must discard)."""

    drops = 3

    def __init__(self, feed: FeedLog, batch_rows: int) -> None:
        super().__init__(feed, batch_rows)
        self.calls = 0

    def Subscribe(self, request: pb.SubscribeRequest, context: grpc.ServicerContext) -> Iterator[pb.BarBatch]:
        self.calls += 1
        start = max(0, int(request.after_seq) - 5)  # deliberately overlap: resend old bars
        for i, batch in enumerate(super().Subscribe(pb.SubscribeRequest(after_seq=start), context)):
            if self.calls <= self.drops and i == 3:
                context.abort(grpc.StatusCode.UNAVAILABLE, "simulated drop")
            yield batch


def test_resume_after_drops_without_gaps_or_duplicates() -> None:
    with FeedServer(time_order(BARS_), batch_rows=6, servicer=DroppingServicer) as server:
        src = GrpcFeedSource("feed", server.address, sleep=lambda s: None)
        got = _collect(src)
    assert src.reconnects == 3
    assert _key(got) == _key(BARS_)  # every bar exactly once
    assert got.num_rows == BARS_.num_rows


class GarbageServicer(MarketDataServicer):
    def Subscribe(self, request: pb.SubscribeRequest, context: grpc.ServicerContext) -> Iterator[pb.BarBatch]:
        yield pb.BarBatch(bars=[pb.Bar(seq=1, symbol="X", ts_ns=10, open=1, high=2, low=0.5, close=1, volume=1)], from_seq=1, to_seq=1)
        yield pb.BarBatch(
            bars=[
                pb.Bar(seq=2, symbol="X", ts_ns=20, open=1, high=2, low=0.5, close=1, volume=1),
                pb.Bar(seq=3, symbol="X", ts_ns=30, open=1, high=0.1, low=0.5, close=float("nan"), volume=1),
            ],
            from_seq=2,
            to_seq=3,
        )
        yield pb.BarBatch(bars=[pb.Bar(seq=4, symbol="X", ts_ns=5, open=1, high=2, low=0.5, close=1, volume=1)], from_seq=4, to_seq=4)
        yield pb.BarBatch(bars=[pb.Bar(seq=5, symbol="X", ts_ns=40, open=1, high=2, low=0.5, close=1, volume=1)], from_seq=5, to_seq=5)


def _garbage_server() -> FeedServer:
    return FeedServer(BARS_.slice(0, 0), servicer=GarbageServicer)


def test_garbage_batch_rejected_whole_naming_row_and_column() -> None:
    with _garbage_server() as server:
        it = GrpcFeedSource("feed", server.address).stream()
        assert next(it).num_rows == 1
        with pytest.raises(DataError) as exc:
            next(it)
    assert exc.value.source == "feed" and exc.value.row == 1 and exc.value.column in {"close", "high"}


def test_garbage_recorded_and_stream_continues_with_on_reject() -> None:
    rejected: list[tuple[DataError, int]] = []
    with _garbage_server() as server:
        src = GrpcFeedSource("feed", server.address, on_reject=lambda e, t: rejected.append((e, t.num_rows)))
        got = _collect(src)
    # batch 2 (NaN, high < low) rejected whole; batch 4 goes back in time: rejected
    assert got.column("ts").cast(pa.int64()).to_pylist() == [10, 40]
    assert [n for _, n in rejected] == [2, 1]
    assert "not after the previous bar" in str(rejected[1][0])
    assert src.rejected_batches == 2


def test_garbage_quarantined_rows_counted() -> None:
    with _garbage_server() as server:
        src = GrpcFeedSource("feed", server.address, on_bad_rows="quarantine", on_reject=lambda e, t: None)
        got = _collect(src)
    assert got.column("ts").cast(pa.int64()).to_pylist() == [10, 20, 40]
    assert src.quarantined.count == 1


def test_unreachable_feed_gives_up_with_transient_error() -> None:
    delays: list[float] = []
    src = GrpcFeedSource("feed", "127.0.0.1:1", max_reconnects=3, sleep=delays.append)
    with pytest.raises(TransientError, match="3 reconnects"):
        list(src.stream())
    assert delays == sorted(delays) and len(delays) == 3  # exponential back-off


def test_paced_publisher_streams_live() -> None:
    table = generate(2, 5, seed=0)
    # 5 business days at 2 days per second: the live stream takes ~2 s, not 0
    with FeedServer(table, speed=2 * 86400.0) as server:
        import time

        t0 = time.monotonic()
        got = _collect(GrpcFeedSource("feed", server.address))
        took = time.monotonic() - t0
    assert got.num_rows == 10 and took > 1.0
    assert np.all(np.diff(got.column("ts").cast(pa.int64()).to_numpy()) >= 0)
