"""Keystore: init/open/rotate/list/export, permissions, and clear typed errors."""

from __future__ import annotations

import json
import pickle
import stat
from pathlib import Path

import pytest

from tinywindow.config import load
from tinywindow.crypto import PublicKeyRing, keystore_dir, open_keystore
from tinywindow.crypto.keystore import INDEX, KeyStore
from tinywindow.errors import KeyStoreError

from .conftest import PASSPHRASE, make_keystore


def test_init_open_rotate_list(tmp_path: Path) -> None:
    ks = make_keystore(tmp_path / "keys")
    first = ks.active_id
    second = ks.rotate()
    assert second != first and ks.active_id == second
    infos = ks.list()
    assert [i.key_id for i in infos] == [first, second]
    assert [i.active for i in infos] == [False, True]
    assert infos[0].created_ns < infos[1].created_ns  # from the injected clock
    again = KeyStore.open(tmp_path / "keys", PASSPHRASE)
    assert again.active_id == second and [i.key_id for i in again.list()] == [first, second]
    assert again.active().public == ks.active().public


def test_files_are_private(keystore: KeyStore) -> None:
    assert stat.S_IMODE(keystore.directory.stat().st_mode) == 0o700
    for path in keystore.directory.iterdir():
        if path.name != ".lock":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_private_keys_not_in_the_clear(keystore: KeyStore) -> None:
    seeds = keystore.active().seeds
    for path in keystore.directory.iterdir():
        raw = path.read_bytes()
        assert seeds[:16] not in raw and seeds[:16].hex().encode() not in raw


def test_export_public_round_trip(keystore: KeyStore, tmp_path: Path) -> None:
    keystore.rotate()
    out = tmp_path / "pub.json"
    out.write_text(json.dumps(keystore.export_public()))
    ring = PublicKeyRing.load(str(out))
    assert ring.ids() == sorted(i.key_id for i in keystore.list())
    only = keystore.export_public([keystore.active_id])
    assert [k["key_id"] for k in only["keys"]] == [keystore.active_id]
    assert "sealed" not in out.read_text()


def test_wrong_passphrase(keystore: KeyStore) -> None:
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeyStore.open(keystore.directory, "not it")


def test_missing_keystore_and_key_file(tmp_path: Path, keystore: KeyStore) -> None:
    with pytest.raises(KeyStoreError, match="no keystore"):
        KeyStore.open(tmp_path / "nowhere", PASSPHRASE)
    (keystore.directory / f"{keystore.active_id}.key").unlink()
    with pytest.raises(KeyStoreError, match="not found"):
        KeyStore.open(keystore.directory, PASSPHRASE)


def test_corrupt_key_file(keystore: KeyStore) -> None:
    path = keystore.directory / f"{keystore.active_id}.key"
    data = json.loads(path.read_text())
    sealed = bytearray(data["sealed"].encode())
    sealed[10] = ord("A") if sealed[10] != ord("A") else ord("B")
    data["sealed"] = sealed.decode()
    path.write_text(json.dumps(data))
    with pytest.raises(KeyStoreError, match="corrupt"):
        KeyStore.open(keystore.directory, PASSPHRASE)
    path.write_text("{not json")
    with pytest.raises(KeyStoreError, match="corrupt"):
        KeyStore.open(keystore.directory, PASSPHRASE)


def test_tampered_public_key_is_refused(keystore: KeyStore) -> None:
    path = keystore.directory / f"{keystore.active_id}.key"
    data = json.loads(path.read_text())
    data["public"]["x25519"] = data["public"]["x25519"][::-1]
    path.write_text(json.dumps(data))
    with pytest.raises(KeyStoreError):
        KeyStore.open(keystore.directory, PASSPHRASE)


def test_tampered_index_is_refused(tmp_path: Path) -> None:
    ks = make_keystore(tmp_path / "keys")
    first = ks.active_id
    ks.rotate()
    index = json.loads((ks.directory / INDEX).read_text())
    index["active"] = first  # roll the active key back
    (ks.directory / INDEX).write_text(json.dumps(index))
    with pytest.raises(KeyStoreError, match="modified"):
        KeyStore.open(ks.directory, PASSPHRASE)


def test_init_refuses_to_overwrite(keystore: KeyStore) -> None:
    with pytest.raises(KeyStoreError, match="already exists"):
        KeyStore.init(keystore.directory, PASSPHRASE, scrypt_log2_n=10)


def test_unlocked_keys_cannot_be_pickled(keystore: KeyStore) -> None:
    for obj in (keystore, keystore.active()):
        with pytest.raises(KeyStoreError, match="picklable"):
            pickle.dumps(obj)
    assert "private=<hidden>" in repr(keystore.active())


def test_open_keystore_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load(environ={}, overrides={"data_dir": str(tmp_path), "crypto.passphrase_env": "TW_TEST_PW"})
    assert keystore_dir(cfg.crypto, cfg.data_dir) == tmp_path / "keys"
    make_keystore(keystore_dir(cfg.crypto, cfg.data_dir))
    monkeypatch.delenv("TW_TEST_PW", raising=False)
    with pytest.raises(KeyStoreError, match="TW_TEST_PW"):
        open_keystore(cfg.crypto, cfg.data_dir)
    monkeypatch.setenv("TW_TEST_PW", PASSPHRASE)
    assert open_keystore(cfg.crypto, cfg.data_dir).active_id == open_keystore(cfg.crypto, cfg.data_dir, PASSPHRASE).active_id
    absolute = cfg.set("crypto.keystore_dir", str(tmp_path / "keys"))
    assert keystore_dir(absolute.crypto, "/elsewhere") == tmp_path / "keys"
