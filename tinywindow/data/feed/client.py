"""``GrpcFeedSource``: the feed client, a DataSource that reconnects and resumes.

The client remembers the last sequence number it delivered.  After a dropped connection it
subscribes again from there, discards anything it already has (no duplicates) and refuses a
batch that does not start right after it (no gaps: it re-subscribes from its own position
instead).  Every batch is validated before it is delivered, including timestamps against the
last bar seen for each symbol across batches.  A bad batch is rejected whole with a
``DataError`` (or its bad rows quarantined, by configuration); with an ``on_reject`` callback
the stream records it and carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import grpc
import numpy as np
import pyarrow as pa

from tinywindow.contracts import Quarantine
from tinywindow.core.log import get_logger
from tinywindow.data.base import TimeLike, admit, concat_bars, to_utc_ns
from tinywindow.data.feed import market_data_pb2 as pb
from tinywindow.data.feed import market_data_pb2_grpc as pb_grpc
from tinywindow.data.feed.codec import bars_to_table
from tinywindow.errors import DataError, TransientError

log = get_logger("feed.client")

RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}

RejectHandler = Callable[[DataError, pa.Table], None]


class GrpcFeedSource:
    """A DataSource reading a TinyWindow feed server."""

    def __init__(
        self,
        name: str,
        address: str,
        symbols: Sequence[str] = (),
        on_bad_rows: str = "reject",
        on_reject: RejectHandler | None = None,
        max_reconnects: int = 20,
        backoff_s: tuple[float, float] = (0.05, 2.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.address = address
        self.wanted = list(symbols)
        self.on_bad_rows = on_bad_rows
        self.on_reject = on_reject
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.last_seq = 0
        self.reconnects = 0
        self.rejected_batches = 0
        self.quarantined = Quarantine()
        self._last_ts: dict[str, int] = {}

    # ------------------------------------------------------------------ helpers
    def _stub(self) -> tuple[grpc.Channel, pb_grpc.MarketDataStub]:
        channel = grpc.insecure_channel(self.address)
        return channel, pb_grpc.MarketDataStub(channel)

    def _check_continuity(self, table: pa.Table) -> None:
        """Per symbol, the first bar of a batch must come after the last bar delivered."""
        if not self._last_ts or table.num_rows == 0:
            return
        symbols = table.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False)
        ts = table.column("ts").cast(pa.int64()).to_numpy()
        prev = np.array([self._last_ts.get(s, np.iinfo(np.int64).min) for s in symbols])
        bad = ts <= prev
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"BARS: timestamp not after the previous bar of {symbols[row]!r}",
                source=self.name,
                row=row,
                column="ts",
            )

    def _remember(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        symbols = table.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False)
        ts = table.column("ts").cast(pa.int64()).to_numpy()
        for s, t in zip(symbols.tolist(), ts.tolist(), strict=True):
            self._last_ts[s] = t  # rows are increasing per symbol: the last one wins

    def admit_batch(self, raw: pa.Table) -> pa.Table | None:
        """Validate one batch; None when it was rejected (and handed to ``on_reject``)."""
        try:
            table, q = admit(raw, self.name, self.on_bad_rows)
            self._check_continuity(table)
        except DataError as exc:
            self.rejected_batches += 1
            if self.on_reject is None:
                raise
            self.on_reject(exc, raw)
            return None
        if q.count:
            log.warning("%s: quarantined %d row(s): %s", self.name, q.count, q.reasons)
            self.quarantined = self.quarantined.merge(q)
        self._remember(table)
        return table

    def _retry(self, failures: int, reason: str) -> None:
        """Back off before re-subscribing from ``last_seq``; give up after too many in a row."""
        if failures > self.max_reconnects:
            raise TransientError(
                f"feed {self.name!r} at {self.address}: {failures - 1} reconnects without "
                f"progress (last: {reason})"
            )
        self.reconnects += 1
        delay = min(self.backoff_s[1], self.backoff_s[0] * 2 ** (failures - 1))
        log.info("%s: %s; resubscribing from seq %d in %.2fs", self.name, reason, self.last_seq, delay)
        self.sleep(delay)

    # ------------------------------------------------------------------ DataSource
    def symbols(self) -> list[str]:
        channel, stub = self._stub()
        try:
            return list(stub.Symbols(pb.SymbolsRequest(), timeout=10).symbols)
        except grpc.RpcError as exc:
            raise TransientError(f"feed {self.address}: {exc.code().name}") from None
        finally:
            channel.close()

    def fetch(
        self,
        symbols: Sequence[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> pa.Table:
        req = pb.HistoryRequest(
            symbols=list(symbols or self.wanted),
            start_ns=to_utc_ns(start) or 0,
            end_ns=to_utc_ns(end) or 0,
        )
        channel, stub = self._stub()
        try:
            parts = [bars_to_table(list(b.bars)) for b in stub.History(req, timeout=60)]
        except grpc.RpcError as exc:
            raise TransientError(f"feed {self.address}: {exc.code().name}: {exc.details()}") from None
        finally:
            channel.close()
        table, q = admit(concat_bars(parts), self.name, self.on_bad_rows)
        self.quarantined = self.quarantined.merge(q)
        return table

    def stream(self) -> Iterator[pa.Table]:
        """Validated BARS batches until the server ends the feed; resumes across drops."""
        failures = 0
        while True:
            channel, stub = self._stub()
            try:
                request = pb.SubscribeRequest(symbols=self.wanted, after_seq=self.last_seq)
                for batch in stub.Subscribe(request):
                    if batch.to_seq <= self.last_seq:
                        continue  # already delivered (a resend after reconnect)
                    if batch.from_seq > self.last_seq + 1:
                        failures += 1
                        self._retry(failures, f"gap {self.last_seq + 1}..{batch.from_seq - 1}")
                        break
                    fresh = [b for b in batch.bars if b.seq > self.last_seq]
                    table = self.admit_batch(bars_to_table(fresh))
                    self.last_seq = int(batch.to_seq)
                    failures = 0
                    if table is not None and table.num_rows:
                        yield table
                else:
                    return  # the server ended the feed
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE:
                    raise TransientError(f"feed {self.address}: {exc.code().name}: {exc.details()}") from None
                failures += 1
                self._retry(failures, f"{exc.code().name} {exc.details()}")
            finally:
                channel.close()
