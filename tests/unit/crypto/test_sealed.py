"""Sealed files: one envelope per file, labelled with its place, errors naming the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.crypto.conftest import make_keystore
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.sealed import open_sealed, verify_sealed, write_sealed
from tinywindow.errors import IntegrityError, KeyStoreError

SECRET = b'{"params": {"lr": 0.000271828}}'


def test_round_trip_with_public_verification(tmp_path: Path, shared_keystore: KeyStore) -> None:
    path = write_sealed(tmp_path / "x.json.twenc", SECRET, shared_keystore, "a/x.json")
    assert SECRET not in path.read_bytes() and b"0.000271828" not in path.read_bytes()
    assert open_sealed(path, shared_keystore, "a/x.json") == SECRET
    ring = KeyStore.public_ring(shared_keystore.directory)
    assert verify_sealed(path, ring, "a/x.json").signer == shared_keystore.active().key_id


def test_wrong_label_flipped_byte_and_other_keystore_name_the_file(
    tmp_path: Path, shared_keystore: KeyStore
) -> None:
    path = write_sealed(tmp_path / "x.twenc", SECRET, shared_keystore, "a/x.json")
    with pytest.raises(IntegrityError, match=rf"{path}.*labelled 'a/x\.json', expected 'b/x\.json'"):
        open_sealed(path, shared_keystore, "b/x.json")
    other = make_keystore(tmp_path / "other")
    with pytest.raises(KeyStoreError, match=str(path)):
        open_sealed(path, other, "a/x.json")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError, match=str(path)):
        verify_sealed(path, shared_keystore, "a/x.json")
    with pytest.raises(FileNotFoundError):
        open_sealed(tmp_path / "missing.twenc", shared_keystore, "missing")
