"""EncryptedStore: Arrow round trips, atomic writes, tampering, pyarrow.fs, config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from tinywindow.config import load
from tinywindow.contracts import BARS
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.store import SUFFIX, EncryptedStore
from tinywindow.errors import IntegrityError, KeyStoreError

from .conftest import PASSPHRASE, make_keystore


@runtime_checkable
class SegmentSink(Protocol):
    def write(self, name: str, table: pa.Table) -> str: ...


def bars(n: int = 1000) -> pa.Table:
    rng = np.random.default_rng(7)
    close = 100 + rng.standard_normal(n).cumsum()
    return pa.table(
        {
            "symbol": pa.array((["AAA", "BBB"] * n)[:n]).dictionary_encode(),
            "ts": pa.array(np.arange(n, dtype="int64") * 60_000_000_000, pa.timestamp("ns", tz="UTC")),
            "open": close, "high": close + 1, "low": close - 1, "close": close,
            "volume": rng.uniform(1, 10, n),
        },
        schema=BARS,
    )


def test_round_trip_and_list(keystore: KeyStore, tmp_path: Path) -> None:
    store = EncryptedStore(str(tmp_path / "store"), keystore)
    assert isinstance(store, SegmentSink)
    table = bars()
    path = store.write("bars/sp500/000001", table)
    assert path.endswith("bars/sp500/000001" + SUFFIX) and os.path.exists(path)
    store.write("bars/goog/000001", table.slice(0, 10))
    store.write("features/x", table.slice(0, 1))
    out = store.read("bars/sp500/000001")
    assert out.equals(table) and out.schema.metadata == BARS.metadata
    assert store.list() == ["bars/goog/000001", "bars/sp500/000001", "features/x"]
    assert store.list("bars/") == ["bars/goog/000001", "bars/sp500/000001"]
    assert store.verify("features/x") == keystore.active_id
    raw = Path(path).read_bytes()
    assert b"AAA" not in raw  # the dictionary strings are not in the clear
    assert not [p for p in Path(tmp_path / "store").rglob(".*")]  # no temp files left


def test_overwrite_is_atomic_and_latest_wins(keystore: KeyStore, tmp_path: Path) -> None:
    store = EncryptedStore(str(tmp_path / "store"), keystore)
    store.write("a", bars(10))
    store.write("a", bars(20))
    assert store.read("a").num_rows == 20


def test_tampered_or_renamed_segment_is_refused(keystore: KeyStore, tmp_path: Path) -> None:
    store = EncryptedStore(str(tmp_path / "store"), keystore)
    path = Path(store.write("a", bars(50)))
    raw = bytearray(path.read_bytes())
    os.rename(path, Path(store.path_of("b")))
    with pytest.raises(IntegrityError, match="labelled"):
        store.read("b")
    for pos in (5, 60, len(raw) // 2, len(raw) - 3400, len(raw) - 1):
        bad = bytearray(raw)
        bad[pos] ^= 0x80
        path.write_bytes(bytes(bad))
        with pytest.raises(IntegrityError):
            store.read("a")
    path.write_bytes(bytes(raw[:-100]))
    with pytest.raises(IntegrityError):
        store.read("a")


def test_rotation_reads_old_writes_new(tmp_path: Path) -> None:
    ks = make_keystore(tmp_path / "keys")
    store = EncryptedStore(str(tmp_path / "store"), ks)
    store.write("old", bars(10))
    new_id = ks.rotate()
    store.write("new", bars(10))
    assert store.verify("new") == new_id != store.verify("old")
    assert store.read("old").num_rows == 10
    other = EncryptedStore(str(tmp_path / "store"), make_keystore(tmp_path / "other"))
    with pytest.raises(KeyStoreError):
        other.read("old")


def test_bad_names_and_missing_segments(keystore: KeyStore, tmp_path: Path) -> None:
    store = EncryptedStore(str(tmp_path / "store"), keystore)
    for name in ("", "../x", "a/../b", ".hidden", "a//b", "/abs"):
        with pytest.raises(ValueError):
            store.write(name, bars(2))
    with pytest.raises(FileNotFoundError):
        store.read("missing")
    assert store.list() == []


def test_other_pyarrow_filesystems(keystore: KeyStore, tmp_path: Path) -> None:
    sub = pafs.SubTreeFileSystem(str(tmp_path / "sub"), pafs.LocalFileSystem())
    store = EncryptedStore("segments", keystore, filesystem=sub)
    store.write("x/1", bars(5))
    assert store.read("x/1").num_rows == 5 and store.list() == ["x/1"]
    assert (tmp_path / "sub" / "segments" / f"x/1{SUFFIX}").exists()
    mock = pafs._MockFileSystem()  # a non-local filesystem: temp file + move
    remote = EncryptedStore("bucket/prefix", keystore, filesystem=mock)
    remote.write("y", bars(7))
    assert remote.read("y").num_rows == 7 and remote.list() == ["y"]


def test_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load(environ={}, overrides={"data_dir": str(tmp_path)})
    make_keystore(tmp_path / "keys")
    monkeypatch.setenv(cfg.crypto.passphrase_env, PASSPHRASE)
    store = EncryptedStore.from_config(cfg.crypto, cfg.data_dir)
    assert store.root == str(tmp_path / "store") and store.kem == "hybrid"
    store.write("z", bars(3))
    other = cfg.set("crypto.kem", "mlkem768")
    assert EncryptedStore.from_config(other.crypto, other.data_dir).read("z").num_rows == 3
