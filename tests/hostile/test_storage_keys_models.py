"""Hostile storage inputs: the keystore index and the model registry (sealed model files, the
tuned file).  Journals, segments and the verify CLI are in test_storage.py.

Every case asserts the typed error, that the error names the field or path, and that the
stored bytes are unchanged.  No Ray.  The table of cases is docs/reliability/storage.md.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.storage_kit import PASSPHRASE, digest_tree, new_keystore
from tinywindow.cli.verify import check_path
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.manifest import MANIFEST, sign_dir
from tinywindow.crypto.sealed import seal_bytes
from tinywindow.errors import IntegrityError, KeyStoreError, ModelError
from tinywindow.models.params import read_tuned, tuned_path
from tinywindow.models.registry import ModelRegistry


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return new_keystore(tmp_path_factory)


# ---------------------------------------------------------------------------- keystore
def _kdf(field: str, value: object) -> Callable[[dict], None]:
    def edit(index: dict) -> None:
        index["kdf"][field] = value

    return edit


def _set(field: str, value: object) -> Callable[[dict], None]:
    def edit(index: dict) -> None:
        index[field] = value

    return edit


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


KEYSTORE_TAMPER = [
    ("kdf-log2_n-2TB", _kdf("log2_n", 34), "'log2_n'"),
    ("kdf-log2_n-just-over", _kdf("log2_n", 21), "'log2_n'"),
    ("kdf-log2_n-string", _kdf("log2_n", "17"), "'log2_n'"),
    ("kdf-log2_n-bool", _kdf("log2_n", True), "'log2_n'"),
    ("kdf-r-negative", _kdf("r", -1), "'r'"),
    ("kdf-r-huge", _kdf("r", 1 << 20), "'r'"),
    ("kdf-p-hang", _kdf("p", 1_000_000), "'p'"),
    ("kdf-p-zero", _kdf("p", 0), "'p'"),
    ("kdf-salt-changed", _kdf("salt", _b64(b"\x01" * 16)), "kdf salt"),
    ("kdf-salt-huge", _kdf("salt", _b64(b"\x00" * 100_000)), "'salt'"),
    ("kdf-salt-not-base64", _kdf("salt", "***"), "'salt'"),
    ("kdf-name-changed", _kdf("name", "argon2"), "'kdf'"),
    ("index-mac-changed", _set("mac", _b64(b"\x00" * 32)), "bad HMAC"),
    ("index-check-changed", _set("check", _b64(b"\x00" * 32)), "wrong passphrase"),
    ("index-keys-garbage", _set("keys", ["../../etc/passwd"]), "'keys'"),
    ("index-active-garbage", _set("active", 42), "'active'"),
]


@pytest.fixture
def keystore_copy(keystore: KeyStore, tmp_path: Path) -> Path:
    target = tmp_path / "keys"
    shutil.copytree(keystore.directory, target)
    return target


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("edit", "words"), [pytest.param(e, w, id=i) for i, e, w in KEYSTORE_TAMPER])
def test_tampered_keystore_index_is_refused_fast(
    keystore_copy: Path, edit: Callable[[dict], None], words: str
) -> None:
    index_path = keystore_copy / "keystore.json"
    index = json.loads(index_path.read_text())
    edit(index)
    index_path.write_text(json.dumps(index))
    before = digest_tree(keystore_copy)
    with pytest.raises(KeyStoreError) as info:
        KeyStore.open(keystore_copy, PASSPHRASE)
    assert words in str(info.value)
    assert digest_tree(keystore_copy) == before


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param(b"{not json", "not JSON", id="index-not-json"),
        pytest.param(b"\xff\xfe\x00", "not JSON", id="index-not-utf8"),
        pytest.param(None, "not a regular file", id="index-is-a-fifo"),
    ],
)
def test_unreadable_keystore_index_is_refused(keystore_copy: Path, content: bytes | None, words: str) -> None:
    index_path = keystore_copy / "keystore.json"
    index_path.unlink()
    if content is None:
        os.mkfifo(index_path)
    else:
        index_path.write_bytes(content)
    with pytest.raises(KeyStoreError, match=words):
        KeyStore.open(keystore_copy, PASSPHRASE)
    with pytest.raises(KeyStoreError):
        KeyStore.public_ring(keystore_copy)


@pytest.mark.timeout(10)
def test_wrong_passphrase(keystore_copy: Path) -> None:
    before = digest_tree(keystore_copy)
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeyStore.open(keystore_copy, "not the passphrase")
    assert digest_tree(keystore_copy) == before


@pytest.mark.timeout(10)
def test_init_refuses_a_cost_open_would_refuse(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="'log2_n'"):
        KeyStore.init(tmp_path / "k", PASSPHRASE, scrypt_log2_n=30)
    assert not (tmp_path / "k").exists()


# ---------------------------------------------------------------------------- model registry
AGENT = "xgboost"


@pytest.fixture
def registry(tmp_path: Path, keystore: KeyStore) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry", keystore, signer=keystore)


def _signed_version(registry: ModelRegistry, keystore: KeyStore, name: str) -> Path:
    path = registry.root / AGENT / name
    path.mkdir(parents=True)
    (path / "model.json").write_text("{}")
    sign_dir(path, keystore, {"agent": AGENT, "version": name, "kind": "xgboost"})
    return path


def _stray_file(registry: ModelRegistry, keystore: KeyStore) -> Path:
    path = registry.root / AGENT / "v0007"
    path.write_text("not a model")
    return path


def _empty_dir(registry: ModelRegistry, keystore: KeyStore) -> Path:
    path = registry.root / AGENT / "v0003"
    path.mkdir()
    return path


def _symlink(registry: ModelRegistry, keystore: KeyStore) -> Path:
    path = registry.root / AGENT / "v0009"
    path.symlink_to(registry.root / AGENT / "v0001")
    return path


def _manifest(content: bytes | None) -> Callable[[ModelRegistry, KeyStore], Path]:
    def make(registry: ModelRegistry, keystore: KeyStore) -> Path:
        path = _signed_version(registry, keystore, "v0005")
        manifest = path / MANIFEST
        manifest.unlink()
        if content is None:
            manifest.mkdir()
        elif content != b"<missing>":
            manifest.write_bytes(content)
        return path

    return make


REGISTRY = [
    ("registry-stray-file-v0007", _stray_file, ModelError, "stray file"),
    ("registry-empty-dir-v0003", _empty_dir, ModelError, "incomplete"),
    ("registry-symlink-v0009", _symlink, ModelError, "symlink"),
    ("registry-missing-manifest", _manifest(b"<missing>"), IntegrityError, "not signed"),
    ("registry-garbled-manifest", _manifest(b"{garbled"), IntegrityError, "corrupt"),
    ("registry-non-utf8-manifest", _manifest(b'{"body": "\xff\xfe"}'), IntegrityError, "corrupt"),
    ("registry-manifest-wrong-shape", _manifest(b"[1, 2, 3]"), IntegrityError, "not a TinyWindow manifest"),
    ("registry-manifest-is-a-folder", _manifest(None), IntegrityError, "not signed"),
]


@pytest.mark.parametrize(("make", "error", "words"), [pytest.param(m, e, w, id=i) for i, m, e, w in REGISTRY])
def test_registry_refuses_what_is_not_a_version(
    registry: ModelRegistry, keystore: KeyStore, make: Callable[[ModelRegistry, KeyStore], Path],
    error: type[Exception], words: str,
) -> None:
    _signed_version(registry, keystore, "v0001")
    bad = make(registry, keystore)
    before = digest_tree(registry.root)
    infos = {i.version: i for i in registry.versions(AGENT)}
    assert infos["v0001"].ok
    assert not infos[bad.name].ok and words in infos[bad.name].status
    assert registry.latest(AGENT) == ("v0005" if bad.name == "v0005" else "v0001")  # strays skipped
    with pytest.raises(error) as info:
        registry.load(AGENT, bad.name)
    assert words in str(info.value) and str(bad) in str(info.value)
    assert digest_tree(registry.root) == before


def _sealed_model(seal: Callable[[bytes], bytes], name: str = "model.json.twenc") -> Callable[[KeyStore, Path], None]:
    def make(keystore: KeyStore, folder: Path) -> None:
        good = seal_bytes(b"{}", keystore, f"{AGENT}/{folder.name}/model.json")
        (folder / name).write_bytes(seal(good) if name.endswith(".twenc") else b"{}")

    return make


def _flip(blob: bytes) -> bytes:
    return blob[:200] + bytes([blob[200] ^ 1]) + blob[201:]


SEALED_FILES = [  # each re-signed by the key holder: the envelope alone must refuse it
    ("sealed-truncated", _sealed_model(lambda b: b[:-100]), "'model.json.twenc'"),
    ("sealed-bit-flip", _sealed_model(_flip), "'model.json.twenc'"),
    ("sealed-empty", _sealed_model(lambda b: b""), "'model.json.twenc'"),
    ("sealed-foreign-label", _sealed_model(lambda b: b, "booster.ubj.twenc"), "labelled"),
    ("plain-file-in-sealed-version", _sealed_model(lambda b: b, "model.json"), "is not sealed"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("make", "words"), [pytest.param(m, w, id=i) for i, m, w in SEALED_FILES])
def test_registry_refuses_a_broken_sealed_file_even_when_signed(
    registry: ModelRegistry, keystore: KeyStore, make: Callable[[KeyStore, Path], None], words: str
) -> None:
    folder = registry.root / AGENT / "v0001"
    folder.mkdir(parents=True)
    make(keystore, folder)
    sign_dir(folder, keystore, {"agent": AGENT, "version": "v0001", "kind": "xgboost", "encrypted": True})
    before = digest_tree(registry.root)
    with pytest.raises(IntegrityError) as info:
        registry.load(AGENT, "v0001")
    assert words in str(info.value) and str(folder) in str(info.value)
    assert digest_tree(registry.root) == before


@pytest.mark.timeout(10)
def test_tuned_file_that_is_a_fifo_or_folder_is_refused(tmp_path: Path, keystore: KeyStore) -> None:
    path = tuned_path(tmp_path, AGENT)
    path.parent.mkdir()
    os.mkfifo(path)
    with pytest.raises(IntegrityError, match="not a regular file"):
        read_tuned(tmp_path, AGENT, keystore)
    ok, line = check_path(path, keystore)
    assert not ok and "not a regular file" in line
    path.unlink()
    path.mkdir()
    with pytest.raises(IntegrityError, match="cannot be read|not a regular file"):
        read_tuned(tmp_path, AGENT, keystore)
