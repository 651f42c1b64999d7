"""Cache, history and the persistence hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tinywindow.config import Config
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.store import EncryptedStore
from tinywindow.data.base import replay
from tinywindow.data.cache import TableCache
from tinywindow.data.history import BarHistory, tail_indices
from tinywindow.data.persist import EncryptedSink, SegmentSink, SegmentWriter
from tinywindow.data.sources.synthetic import generate
from tinywindow.errors import DataError


def _t(rows: int) -> pa.Table:
    return pa.table({"x": np.zeros(rows, dtype=np.float64)})  # 8 bytes a row


def test_cache_lru_byte_budget_and_counters() -> None:
    c = TableCache(max_bytes=800)
    c.put("a", _t(40))  # 320 B
    c.put("b", _t(40))
    assert c.get("a") is not None  # a is now most recent
    c.put("c", _t(40))  # 960 B > 800: evicts b (least recent)
    assert "b" not in c and "a" in c and "c" in c
    assert c.get("b") is None
    s = c.stats()
    assert (s.hits, s.misses, s.evictions, s.entries, s.bytes) == (1, 1, 1, 2, 640)
    c.put("huge", _t(1000))  # larger than the budget: not kept
    assert "huge" not in c
    calls: list[int] = []
    c.get_or_compute("k", lambda: calls.append(1) or _t(1))
    c.get_or_compute("k", lambda: calls.append(1) or _t(1))
    assert calls == [1] and c.stats().hit_rate > 0
    with pytest.raises(ValueError):
        TableCache(-1)


def test_tail_indices() -> None:
    codes = np.array([0, 0, 0, 1, 2, 2])
    assert tail_indices(codes, 2).tolist() == [1, 2, 3, 4, 5]
    assert tail_indices(codes, 1).tolist() == [2, 3, 5]


def test_history_append_stream_window_latest_and_range() -> None:
    bars = generate(3, 100, seed=0)
    h = BarHistory("s", compact_rows=7)
    for batch in replay(bars):
        h.append(batch)
    assert h.num_rows == 300 and h.symbols() == ["SYN0000", "SYN0001", "SYN0002"]
    assert h.table().equals(bars)  # symbol-major, time order within a symbol
    w = h.window(5)
    assert w.num_rows == 15 and w.slice(0, 5).equals(bars.slice(95, 5))
    assert h.latest(["SYN0001"]).equals(bars.slice(199, 1))
    assert h.range("2007-01-03", "2007-01-05").num_rows == 6
    # a replay over loaded history is dropped and counted, not duplicated
    added, stale = h.append(bars.slice(0, 10))
    assert added.num_rows == 0 and stale == 10
    with pytest.raises(DataError, match="not after"):
        h.append(bars.slice(0, 1), stale="error")
    with pytest.raises(DataError, match=">= 1"):
        h.window(0)


def test_segments_are_encrypted_signed_and_cut_by_rows(tmp_path: Path) -> None:
    cfg = Config().set("data_dir", str(tmp_path))
    KeyStore.init(cfg.path("keys"), "a passphrase for tests", scrypt_log2_n=10)
    recipe = EncryptedSink.from_config(cfg.crypto, cfg.data_dir)
    import os

    os.environ["TW_PASSPHRASE"] = "a passphrase for tests"
    try:
        sink = recipe()  # what an actor does in its own process
    finally:
        del os.environ["TW_PASSPHRASE"]
    assert isinstance(sink, SegmentSink) and isinstance(sink, EncryptedStore)
    w = SegmentWriter(sink, "src", segment_rows=50)
    bars = generate(2, 60, seed=0)
    written = []
    for batch in replay(bars):
        written += w.add(batch)
    written += w.flush()
    assert len(written) == 3 and len(w.segments) == 3
    names = sink.list("src/")
    back = pa.concat_tables([sink.read(n) for n in names])
    assert back.num_rows == 120 and back.sort_by([("ts", "ascending")]).column("close").to_pylist() == (
        bars.sort_by([("ts", "ascending")]).column("close").to_pylist()
    )
    for path in written:  # nothing readable on disk
        raw = Path(path).read_bytes()
        assert b"SYN0000" not in raw and b"ARROW1" not in raw
    assert "a passphrase for tests" not in repr(recipe)
