"""DataSourceActor on the shared local cluster: object store hand-off, streaming, bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
import pytest
import ray

from actors.data_source import remote_data_source
from tinywindow.config import Config
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.store import EncryptedStore
from tinywindow.data.feed import market_data_pb2 as pb
from tinywindow.data.feed.codec import encode_batch
from tinywindow.data.feed.server import FeedServer, MarketDataServicer
from tinywindow.data.persist import EncryptedSink
from tinywindow.data.sources.synthetic import generate
from tinywindow.errors import DataError

pytestmark = pytest.mark.usefixtures("ray_cluster")


@ray.remote(num_cpus=0)
class Reader:
    def read(self, table: pa.Table) -> dict[str, int]:
        """Called with a top-level ref: Ray resolves it to a zero-copy view of the object."""
        return {"rows": table.num_rows, "nbytes": table.nbytes, "allocated": pa.total_allocated_bytes()}


@ray.remote(num_cpus=0)
class Collector:
    def __init__(self) -> None:
        self.rows = 0
        self.notices = 0

    async def on_bars(self, notice: dict[str, Any]) -> None:
        table = await notice["bars"]  # the notice carries an ObjectRef, not a copy
        self.rows += table.num_rows
        self.notices += 1

    def totals(self) -> tuple[int, int]:
        return self.rows, self.notices


PASSPHRASE = "passphrase for the ray tests"


def _encrypted(tmp_path: Path) -> tuple[EncryptedSink, EncryptedStore, dict[str, Any]]:
    """A keystore under tmp_path, the sink recipe an actor gets, a reader for the test, and
    the actor options that give the actor its passphrase."""
    cfg = Config().set("data_dir", str(tmp_path))
    ks = KeyStore.init(cfg.path("keys"), PASSPHRASE, scrypt_log2_n=10)
    reader = EncryptedStore.from_config(cfg.crypto, cfg.data_dir, ks)
    return EncryptedSink.from_config(cfg.crypto, cfg.data_dir), reader, {"runtime_env": {"env_vars": {"TW_PASSPHRASE": PASSPHRASE}}}


def _poll(fn: Any, ok: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_history_through_object_store_to_three_zero_copy_readers() -> None:
    actor = remote_data_source().remote({"name": "syn", "kind": "synthetic", "n_symbols": 50, "n_bars": 2520})
    assert ray.get(actor.load.remote()) == 126_000
    ref = actor.history.remote()  # one copy in the object store, owned by this driver
    readers = [Reader.remote() for _ in range(3)]
    results = ray.get([r.read.remote(ref) for r in readers])
    for res in results:
        assert res["rows"] == 126_000
        assert res["nbytes"] > 5_000_000
        # zero-copy: the reader's Arrow pool allocated nothing for the 6.5 MB table
        assert res["allocated"] < 1_000_000
    feats = ray.get(actor.features_window.remote(5))
    assert feats.num_rows == 250 and feats.column_names[2] == "ret_1"
    latest = ray.get(actor.latest.remote())
    assert latest.num_rows == 50
    desc = ray.get(actor.describe.remote())
    assert desc["rows"] == 126_000 and len(desc["symbols"]) == 50
    ray.kill(actor)


def test_bundled_real_data_and_bad_calls_keep_actor_alive() -> None:
    actor = remote_data_source().remote({"name": "b", "kind": "bundled", "datasets": ["sp500", "goog"]})
    assert ray.get(actor.load.remote()) == 5031 + 2148
    with pytest.raises(DataError, match=">= 1"):
        ray.get(actor.window.remote(0))
    w = ray.get(actor.window.remote(10, ["GOOG"]))
    assert w.num_rows == 10 and set(w.column("symbol").to_pylist()) == {"GOOG"}
    h = ray.get(actor.history.remote("2008-01-01", "2009-01-01"))
    assert h.num_rows == 253 * 2
    ray.kill(actor)


def test_streams_a_grpc_feed_notifies_subscribers_and_persists(tmp_path: Path) -> None:
    bars = generate(5, 120, seed=11)
    sink, reader, options = _encrypted(tmp_path)
    with FeedServer(bars, batch_rows=17) as server:
        actor = remote_data_source(**options).remote(
            {"name": "feed", "kind": "grpc", "address": server.address}, {"segment_rows": 200}, sink
        )
        sub = Collector.remote()
        ray.get(actor.subscribe.remote(sub))
        ray.get(actor.start_stream.remote())
        assert ray.get(actor.wait_stream.remote(60)) == "finished"
    desc = ray.get(actor.describe.remote())
    assert desc["rows"] == 600 and desc["rejected_batches"] == 0
    rows, notices = _poll(lambda: ray.get(sub.totals.remote()), lambda v: v[0] == 600)
    assert rows == 600 and notices >= 600 // 17
    names = reader.list("feed/")
    assert len(names) == len(desc["segments"]) >= 3
    assert sum(reader.read(n).num_rows for n in names) == 600  # verified, then decrypted
    ray.kill(actor)


class Hostile(MarketDataServicer):
    """Good bars, then garbage, then a drop, then good bars again."""

    def Subscribe(self, request: pb.SubscribeRequest, context: grpc.ServicerContext) -> Iterator[pb.BarBatch]:
        if request.after_seq == 0:
            yield _x_bars([1, 2, 3], [10, 20, 30])
            yield _x_bars([4], [40], open_=-1.0)
            context.abort(grpc.StatusCode.UNAVAILABLE, "dropped")
        yield _x_bars([5], [50])


def _x_bars(seq: list[int], ts: list[int], open_: float = 1.0) -> pb.BarBatch:
    """A feed message of bars of symbol X (an Arrow IPC batch with its sequence numbers)."""
    n = len(ts)
    table = pa.table(
        {
            "symbol": pa.array(["X"] * n).dictionary_encode(),
            "ts": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            **{k: [v] * n for k, v in (("open", open_), ("high", 2.0), ("low", 0.5), ("close", 1.0), ("volume", 1.0))},
        }
    )
    return encode_batch(table, np.array(seq, np.uint64), seq[0], seq[-1])


def test_garbage_and_drops_are_recorded_and_the_actor_keeps_running(tmp_path: Path) -> None:
    sink, reader, options = _encrypted(tmp_path)
    with FeedServer(generate(1, 1).slice(0, 0), servicer=Hostile) as server:
        actor = remote_data_source(**options).remote(
            {"name": "hostile", "kind": "grpc", "address": server.address}, None, sink
        )
        ray.get(actor.start_stream.remote())
        assert ray.get(actor.wait_stream.remote(60)) == "finished"
    desc = ray.get(actor.describe.remote())
    assert desc["rows"] == 4  # 3 good + 1 after the reconnect; the bad bar never applied
    assert desc["rejected_batches"] == 1
    assert desc["rejects"][0]["column"] == "open" and "not positive" in desc["rejects"][0]["error"]
    rejects = reader.list("hostile/rejects")
    assert len(rejects) == 1 and reader.read(rejects[0]).num_rows == 1  # kept, not lost
    assert ray.get(actor.latest.remote()).column("ts").cast(pa.int64()).to_pylist() == [50]
    ray.kill(actor)


def test_unreachable_feed_marks_stream_failed_not_the_actor() -> None:
    actor = remote_data_source().remote(
        {"name": "down", "kind": "grpc", "address": "127.0.0.1:1", "max_reconnects": 3}
    )
    ray.get(actor.start_stream.remote())
    state = _poll(lambda: ray.get(actor.describe.remote())["stream"], lambda s: s != "running", 60)
    assert state == "failed"
    assert "TransientError" in ray.get(actor.describe.remote())["stream_error"]
    ray.kill(actor)


def test_a_crashed_actor_comes_back_with_its_history_from_its_segments(tmp_path: Path) -> None:
    sink, reader, options = _encrypted(tmp_path)
    actor = remote_data_source(max_restarts=1, **options).remote(
        {"name": "goog", "kind": "bundled", "datasets": ["goog"]}, {"segment_rows": 1000}, sink
    )
    assert ray.get(actor.load.remote()) == 2148
    ray.get(actor.flush.remote())
    before = ray.get(actor.history.remote())
    ray.kill(actor, no_restart=False)  # a crash: Ray restarts it through __init__

    def restored() -> dict[str, Any] | None:
        try:
            return ray.get(actor.describe.remote(), timeout=10)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return None

    desc = _poll(restored, lambda d: d is not None and d["restored"]["rows"] > 0)
    assert desc["restored"] == {"segments": 3, "rows": 2148, "refused": []}
    assert ray.get(actor.history.remote()).equals(before)  # without asking the source again
    assert len(reader.list("goog/bars-")) == 3
    ray.kill(actor)
