"""``GrpcFeedSource``: the feed client, a DataSource that reconnects and resumes.

Each message is one Arrow IPC record batch of BARS rows with their sequence numbers (see
``codec``).  The client remembers the last sequence number it processed.  After a dropped
connection it subscribes again from there, drops every row it already has, by ``seq`` (no
duplicates, at row granularity) and refuses a batch that does not start right after it (no
gaps: it re-subscribes from its own position instead).  Every batch is decoded and validated
against BARS before it is delivered, including timestamps against the last bar seen for each
symbol across batches; checks are whole-batch numpy/Arrow operations, never per bar.  A bad
batch (undecodable bytes, wrong row count or ``seq``, a BARS violation) is rejected whole
with a ``DataError`` naming the field and row (or its bad rows quarantined, by
configuration); with an ``on_reject`` callback the stream counts it, hands it over and
carries on.
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
from tinywindow.data.feed.codec import CHANNEL_OPTIONS, decode_batch, empty_bars
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
        channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        return channel, pb_grpc.MarketDataStub(channel)

    @staticmethod
    def _by_symbol(table: pa.Table) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The dictionary, each row's code, and ts (int64) of a validated BARS table."""
        symbol = table.column("symbol").combine_chunks()
        codes = np.asarray(symbol.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        return symbol.dictionary.to_pylist(), codes, table.column("ts").cast(pa.int64()).to_numpy()

    def _check_continuity(self, table: pa.Table) -> None:
        """Per symbol, the first bar of a batch must come after the last bar delivered.

        Rows are already increasing per symbol within the batch, so each symbol's first row is
        the one to compare; the loop runs per symbol present, not per bar."""
        if not self._last_ts or table.num_rows == 0:
            return
        names, codes, ts = self._by_symbol(table)
        present, first = np.unique(codes, return_index=True)
        bad_rows = [
            int(row)
            for code, row in zip(present.tolist(), first.tolist(), strict=True)
            if ts[row] <= self._last_ts.get(names[code], np.iinfo(np.int64).min)
        ]
        if bad_rows:
            row = min(bad_rows)
            raise DataError(
                f"BARS: timestamp not after the previous bar of {names[codes[row]]!r}",
                source=self.name,
                row=row,
                column="ts",
            )

    def _remember(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        names, codes, ts = self._by_symbol(table)
        present, last_from_end = np.unique(codes[::-1], return_index=True)
        last = len(codes) - 1 - last_from_end  # rows are increasing per symbol: the last wins
        for code, row in zip(present.tolist(), last.tolist(), strict=True):
            self._last_ts[names[code]] = int(ts[row])

    def _reject(self, exc: DataError, raw: pa.Table) -> None:
        """Count a rejected batch and hand it to ``on_reject``; raise without one."""
        self.rejected_batches += 1
        if self.on_reject is None:
            raise exc
        self.on_reject(exc, raw)

    def admit_batch(self, raw: pa.Table) -> pa.Table | None:
        """Validate one batch; None when it was rejected (and handed to ``on_reject``)."""
        try:
            table, q = admit(raw, self.name, self.on_bad_rows)
            self._check_continuity(table)
        except DataError as exc:
            self._reject(exc, raw)
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

    def _admit_message(self, msg: pb.BarBatch) -> pa.Table | None:
        """Decode one message, drop the rows at or before ``last_seq``, validate the rest."""
        try:
            raw, seq = decode_batch(msg, self.name)
        except DataError as exc:
            self._reject(exc, empty_bars())
            return None
        start = int(np.searchsorted(seq, self.last_seq, side="right"))  # seq is increasing
        return self.admit_batch(raw.slice(start) if start else raw)

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
            parts = [decode_batch(b, self.name)[0] for b in stub.History(req, timeout=60)]
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
                    table = self._admit_message(batch)
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
