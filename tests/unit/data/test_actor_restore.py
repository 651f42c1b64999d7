"""DataSourceActor's start-up path, in-process: persisted segments come back, tampered ones
are refused and reported."""

from __future__ import annotations

import asyncio
from pathlib import Path

from actors.data_source import DataSourceActor
from tinywindow.config import Config, DataConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.store import EncryptedStore

GOOG = {"name": "goog", "kind": "bundled", "datasets": ["goog"]}


def _store(tmp_path: Path) -> EncryptedStore:
    cfg = Config().set("data_dir", str(tmp_path))
    keys = KeyStore.init(cfg.path("keys"), "restore test passphrase", scrypt_log2_n=10)
    return EncryptedStore.from_config(cfg.crypto, cfg.data_dir, keys)


def test_a_new_instance_starts_from_the_persisted_segments(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = DataSourceActor(GOOG, DataConfig(segment_rows=1000), store)
    assert first.restored == {"segments": 0, "rows": 0, "refused": []}
    assert asyncio.run(first.load()) == 2148
    asyncio.run(first.flush())
    before = asyncio.run(first.history())

    second = DataSourceActor(GOOG, DataConfig(segment_rows=1000), store)  # e.g. after a crash
    assert second.restored["rows"] == 2148 and second.restored["segments"] == 3
    assert asyncio.run(second.history()).equals(before)
    assert asyncio.run(second.load()) == 0  # the source adds nothing new: nothing written twice
    assert asyncio.run(second.flush()) == []
    assert len(store.list("goog/bars-")) == 3


def test_a_tampered_segment_is_refused_and_reported(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = DataSourceActor(GOOG, DataConfig(segment_rows=100_000), store)
    asyncio.run(first.load())
    asyncio.run(first.flush())
    (name,) = store.list("goog/bars-")
    path = Path(store.path_of(name))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    second = DataSourceActor(GOOG, DataConfig(segment_rows=100_000), store)
    assert second.restored["rows"] == 0
    assert second.restored["refused"][0]["segment"] == name
    assert "IntegrityError" in second.restored["refused"][0]["error"]
    assert asyncio.run(second.load()) == 2148  # the gap is filled from the source
    assert asyncio.run(second.describe())["restored"]["refused"]
