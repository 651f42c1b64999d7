"""Signed manifests: any changed, added or removed file, or an unsigned folder, is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tinywindow.crypto import PublicKeyRing
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.manifest import MANIFEST, sign_dir, verify_dir
from tinywindow.errors import IntegrityError

from .conftest import make_keystore

META = {"agent": "lstm", "version": "v3", "val_sharpe": 1.25}


@pytest.fixture
def checkpoint(tmp_path: Path, keystore: KeyStore) -> Path:
    root = tmp_path / "ckpt"
    (root / "learner" / "rl_module").mkdir(parents=True)
    (root / "algorithm_state.pkl").write_bytes(os.urandom(3000))
    (root / "learner" / "rl_module" / "weights.pt").write_bytes(os.urandom(70_000))
    (root / "empty.txt").write_bytes(b"")
    sign_dir(root, keystore, META)
    return root


def test_sign_and_verify(checkpoint: Path, keystore: KeyStore, tmp_path: Path) -> None:
    assert verify_dir(checkpoint, keystore) == META
    ring = PublicKeyRing.from_json(json.loads(json.dumps(keystore.export_public())))
    assert verify_dir(checkpoint, ring) == META  # public keys only
    doc = json.loads((checkpoint / MANIFEST).read_text())
    assert set(json.loads(doc["body"])["files"]) == {
        "algorithm_state.pkl", "empty.txt", "learner/rl_module/weights.pt"
    }


@pytest.mark.parametrize("change", ["modify", "append", "add", "remove", "add_dir_file", "rename"])
def test_any_file_change_is_refused(checkpoint: Path, keystore: KeyStore, change: str) -> None:
    weights = checkpoint / "learner" / "rl_module" / "weights.pt"
    if change == "modify":
        data = bytearray(weights.read_bytes())
        data[12345] ^= 1
        weights.write_bytes(bytes(data))
    elif change == "append":
        with open(checkpoint / "empty.txt", "ab") as fh:
            fh.write(b"x")
    elif change == "add":
        (checkpoint / "evil.pkl").write_bytes(b"cos\nsystem\n")
    elif change == "remove":
        weights.unlink()
    elif change == "add_dir_file":
        (checkpoint / "learner" / "extra").mkdir()
        (checkpoint / "learner" / "extra" / "x.bin").write_bytes(b"1")
    else:
        weights.rename(weights.with_name("weights2.pt"))
    with pytest.raises(IntegrityError):
        verify_dir(checkpoint, keystore)


def test_tampered_manifest_or_unsigned_folder(checkpoint: Path, keystore: KeyStore, tmp_path: Path) -> None:
    path = checkpoint / MANIFEST
    doc = json.loads(path.read_text())
    doc["body"] = doc["body"].replace('"v3"', '"v4"')
    path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="signature"):
        verify_dir(checkpoint, keystore)
    path.write_text("{")
    with pytest.raises(IntegrityError, match="corrupt"):
        verify_dir(checkpoint, keystore)
    path.unlink()
    with pytest.raises(IntegrityError, match="not signed"):
        verify_dir(checkpoint, keystore)


def test_other_keystore_and_symlinks(checkpoint: Path, tmp_path: Path, keystore: KeyStore) -> None:
    with pytest.raises(IntegrityError, match="cannot check"):
        verify_dir(checkpoint, make_keystore(tmp_path / "other"))
    (checkpoint / "link").symlink_to(tmp_path)
    with pytest.raises(IntegrityError, match="symlink"):
        verify_dir(checkpoint, keystore)
    with pytest.raises(IntegrityError, match="symlink"):
        sign_dir(checkpoint, keystore, {})


def test_rotation_keeps_old_manifests_valid(checkpoint: Path, keystore: KeyStore) -> None:
    keystore.rotate()
    assert verify_dir(checkpoint, KeyStore.public_ring(keystore.directory)) == META
