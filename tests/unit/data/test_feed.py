"""The gRPC feed on loopback: Arrow IPC batches, resume without gaps or duplicates, hostile
servers."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pyarrow as pa
import pytest

from tinywindow.contracts import BARS
from tinywindow.data.base import concat_bars, time_order
from tinywindow.data.feed import market_data_pb2 as pb
from tinywindow.data.feed.client import GrpcFeedSource
from tinywindow.data.feed.codec import decode_batch, encode_batch
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
        resend = pb.SubscribeRequest(symbols=request.symbols, after_seq=start)
        for i, batch in enumerate(super().Subscribe(resend, context)):
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


def test_filtered_resume_after_drops_is_exact_per_row() -> None:
    # batch_rows=5 against a resend of 5 old bars: every resumed batch mixes old and new rows
    with FeedServer(time_order(BARS_), batch_rows=5, servicer=DroppingServicer) as server:
        src = GrpcFeedSource("feed", server.address, symbols=["SYN0001", "SYN0003"], sleep=lambda s: None)
        got = _collect(src)
    want = BARS_.filter(pa.compute.is_in(BARS_.column("symbol").cast(pa.string()), pa.array(["SYN0001", "SYN0003"])))
    assert src.reconnects == 3 and src.last_seq == 200
    assert _key(got) == _key(want) and got.num_rows == 100


def test_wire_is_one_arrow_batch_per_message_and_large_batches_pass() -> None:
    table = generate(500, 200, seed=1)  # 100k bars: one ~6 MB message, over gRPC's 4 MB default
    with FeedServer(table, batch_rows=200_000) as server:
        src = GrpcFeedSource("feed", server.address)
        parts = list(src.stream())
    assert [p.num_rows for p in parts] == [100_000] and parts[0].schema.equals(BARS)
    msg = encode_batch(BARS_.slice(0, 3), np.array([7, 8, 9], np.uint64), 7, 9)
    raw, seq = decode_batch(msg)
    assert seq.tolist() == [7, 8, 9] and raw.column_names == BARS.names and msg.num_rows == 3


def _bars(ts: list[int], close: float = 1.0, high: float = 2.0) -> pa.Table:
    n = len(ts)
    cols = {"symbol": ["X"] * n, "ts": ts, "open": [1.0] * n, "high": [high] * n, "low": [0.5] * n}
    table = pa.table({**cols, "close": [close] * n, "volume": [1.0] * n})
    return table.set_column(0, "symbol", table.column("symbol").dictionary_encode()).set_column(
        1, "ts", table.column("ts").cast(pa.timestamp("ns", tz="UTC"))
    )


def _msg(table: pa.Table, first: int) -> pb.BarBatch:
    n = table.num_rows
    return encode_batch(table, np.arange(first, first + n, dtype=np.uint64), first, first + n - 1)


class GarbageServicer(MarketDataServicer):
    def Subscribe(self, request: pb.SubscribeRequest, context: grpc.ServicerContext) -> Iterator[pb.BarBatch]:
        yield _msg(_bars([10]), 1)
        bad = pa.concat_tables([_bars([20]), _bars([30], close=float("nan"), high=0.1)]).unify_dictionaries()
        yield _msg(bad, 2)  # row 1: NaN close, high < low
        yield _msg(_bars([5]), 4)  # goes back in time
        yield _msg(_bars([40]), 5)


class CorruptServicer(MarketDataServicer):
    """Frames that are not well-formed batches of their range, between good ones."""

    def Subscribe(self, request: pb.SubscribeRequest, context: grpc.ServicerContext) -> Iterator[pb.BarBatch]:
        yield _msg(_bars([10]), 1)
        yield pb.BarBatch(from_seq=2, to_seq=2, num_rows=1, arrow_ipc=b"not arrow at all")
        wrong_count = _msg(_bars([30]), 3)
        wrong_count.num_rows = 2
        yield wrong_count
        yield encode_batch(_bars([40, 50]), np.array([4, 9], np.uint64), 4, 5)  # seq 9 outside 4..5
        yield encode_batch(_bars([60]).drop_columns(["close"]), np.array([6], np.uint64), 6, 6)
        yield _msg(_bars([70]), 7)


def test_corrupt_frames_rejected_naming_the_field_and_the_stream_continues() -> None:
    rejected: list[DataError] = []
    with FeedServer(BARS_.slice(0, 0), servicer=CorruptServicer) as server:
        src = GrpcFeedSource("feed", server.address, on_reject=lambda e, t: rejected.append(e))
        got = _collect(src)
    assert got.column("ts").cast(pa.int64()).to_pylist() == [10, 70] and src.last_seq == 7
    assert [(e.column, e.row) for e in rejected] == [("arrow_ipc", None), ("num_rows", None), ("seq", 1), ("close", None)]
    assert src.rejected_batches == 4 and all(e.source == "feed" for e in rejected)


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
