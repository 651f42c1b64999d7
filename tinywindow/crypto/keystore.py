"""The keystore: key sets on disk, private halves encrypted under a passphrase.

::

    <dir>/keystore.json     index: format, scrypt parameters and salt, passphrase check value,
                            active key id, key ids in creation order, HMAC over all of it
    <dir>/<key id>.key      one key set: public keys in the clear, the 128 bytes of seeds
                            sealed with AES-256-GCM (AAD: the public part)

The passphrase goes through scrypt once per ``open`` (``master``); each key file is sealed
under ``HKDF(master, "tinywindow/keystore/v1/wrap" || key id)``.  The check value
``HMAC(master, "check")`` tells a wrong passphrase from a corrupt key file.  Files are 0600,
the folder 0700, every write is atomic.  Rotation adds a key set and makes it active; old key
sets stay, so everything written before stays readable, and new data goes to the new key.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import hmac
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tinywindow.core.log import get_logger
from tinywindow.crypto.backends import Backend, get_backend
from tinywindow.crypto.fsutil import atomic_write_local, read_regular
from tinywindow.crypto.keys import SEEDS_BYTES, KeySet, PublicKeyRing, PublicKeys, b64, unb64
from tinywindow.errors import IntegrityError, KeyStoreError

INDEX = "keystore.json"
INDEX_FORMAT = "tinywindow-keystore/1"
KEY_FORMAT = "tinywindow-key/1"
DEFAULT_SCRYPT_LOG2_N = 17
MAX_JSON_BYTES = 1 << 20
_log = get_logger("crypto.keystore")


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    created_ns: int
    active: bool


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


# Bounds on the stored KDF parameters, checked *before* scrypt runs: the index is only
# authenticated by a key scrypt derives, so a tampered n, r or p must not make it hang,
# crash or allocate gigabytes first.  Memory is 128 * r * 2**log2_n bytes (1 GiB at 20).
SCRYPT_LOG2_N = (10, 20)
SCRYPT_R = (8, 8)
SCRYPT_P = (1, 4)
SALT_BYTES = (16, 64)
_KEY_ID = re.compile(r"^[0-9a-f]{32}$")


def _kdf_params(kdf: Any, where: Path) -> tuple[bytes, int, int, int]:
    """``(salt, log2_n, r, p)`` from the index's ``kdf`` after bounds checks; ``KeyStoreError``
    naming the field otherwise."""
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise KeyStoreError(f"keystore index {where}: field 'kdf' must be a scrypt parameter object")
    values = {}
    for name, (lo, hi) in (("log2_n", SCRYPT_LOG2_N), ("r", SCRYPT_R), ("p", SCRYPT_P)):
        value = kdf.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise KeyStoreError(
                f"keystore index {where}: kdf field {name!r} = {value!r} is out of range "
                f"(allowed {lo}..{hi}); refusing to run scrypt with it"
            )
        values[name] = value
    salt = unb64(kdf.get("salt"), f"keystore index {where}: kdf field 'salt'")
    if not SALT_BYTES[0] <= len(salt) <= SALT_BYTES[1]:
        raise KeyStoreError(
            f"keystore index {where}: kdf field 'salt' is {len(salt)} bytes "
            f"(allowed {SALT_BYTES[0]}..{SALT_BYTES[1]})"
        )
    return salt, values["log2_n"], values["r"], values["p"]


def _master(passphrase: str, kdf: Any, where: Path) -> bytes:
    if not passphrase:
        raise KeyStoreError("empty passphrase")
    salt, log2_n, r, p = _kdf_params(kdf, where)
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _check_index(index: dict[str, Any], where: Path) -> None:
    """Structure of the index (before the KDF runs): format, key ids, check and mac values."""
    if index.get("format") != INDEX_FORMAT:
        raise KeyStoreError(f"keystore index {where} has an unknown format (field 'format')")
    keys = index.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) and _KEY_ID.match(k) for k in keys):
        raise KeyStoreError(f"keystore index {where}: field 'keys' must be a list of 32-hex-digit key ids")
    active = index.get("active")
    if not isinstance(active, str) or not _KEY_ID.match(active):
        raise KeyStoreError(f"keystore index {where}: field 'active' is not a key id")
    for name in ("check", "mac"):
        if len(unb64(index.get(name), f"keystore index {where}: field {name!r}")) != 32:
            raise KeyStoreError(f"keystore index {where}: field {name!r} is not 32 bytes")


def _mac(master: bytes, label: bytes, data: bytes = b"") -> bytes:
    return hmac.new(master, label + data, hashlib.sha256).digest()


def _wrap_key(master: bytes, key_id: bytes) -> AESGCM:
    info = b"tinywindow/keystore/v1/wrap" + key_id
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master))


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = read_regular(path, limit=MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES:
            raise KeyStoreError(f"{what} is corrupt (over {MAX_JSON_BYTES} bytes): {path}")
        data = json.loads(raw)
    except FileNotFoundError:
        raise KeyStoreError(f"{what} not found: {path}") from None
    except IntegrityError as exc:
        raise KeyStoreError(f"{what} cannot be read: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise KeyStoreError(f"{what} is corrupt (not JSON): {path}") from None
    if not isinstance(data, dict):
        raise KeyStoreError(f"{what} is corrupt: {path}")
    return data



def _verify_index(root: Path, index: dict[str, Any], master: bytes) -> None:
    check = unb64(index.get("check"), "keystore check value")
    if not hmac.compare_digest(check, _mac(master, b"tinywindow/keystore/v1/check")):
        raise KeyStoreError(
            f"wrong passphrase for keystore {root} (or its kdf salt/parameters in {INDEX} were changed)"
        )
    body = {k: v for k, v in index.items() if k != "mac"}
    mac = unb64(index.get("mac"), "keystore index mac")
    if not hmac.compare_digest(mac, _mac(master, b"tinywindow/keystore/v1/index", _canonical(body))):
        raise KeyStoreError(f"keystore index {root / INDEX} was modified (bad HMAC)")


def read_index(directory: str | Path) -> dict[str, Any]:
    """The keystore index of ``directory``, structure checked (no passphrase, not authenticated:
    for listing only)."""
    root = Path(directory)
    index = _read_json(root / INDEX, "keystore index")
    _check_index(index, root / INDEX)
    return index


class KeyStore:
    """Unlocked key sets of one keystore folder (see the module docstring).

    Not picklable on purpose: a Ray actor on another node opens the keystore itself with
    ``open_keystore(cfg.crypto, cfg.data_dir)`` (keystore folder on shared storage or copied to the node, the
    passphrase in the env var named by ``crypto.passphrase_env``)."""

    def __init__(
        self,
        directory: Path,
        master: bytes,
        index: dict[str, Any],
        keys: dict[bytes, tuple[KeySet, int]],
        backend: Backend,
        clock: Callable[[], int],
    ) -> None:
        self.directory = directory
        self._master, self._index, self._keys = master, index, keys
        self._backend, self._clock = backend, clock

    # ------------------------------------------------------------------ create / open
    @classmethod
    def init(
        cls,
        directory: str | Path,
        passphrase: str,
        *,
        scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N,
        backend: Backend | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> KeyStore:
        """Create a keystore with one fresh key set; refuses to overwrite an existing one."""
        root = Path(directory)
        if (root / INDEX).exists():
            raise KeyStoreError(f"a keystore already exists in {root}; use 'keys rotate' instead")
        kdf = {"name": "scrypt", "salt": b64(os.urandom(16)), "log2_n": scrypt_log2_n, "r": 8, "p": 1}
        _kdf_params(kdf, root / INDEX)  # refuse a cost that open would refuse
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        master = _master(passphrase, kdf, root / INDEX)
        index: dict[str, Any] = {
            "format": INDEX_FORMAT,
            "kdf": kdf,
            "check": b64(_mac(master, b"tinywindow/keystore/v1/check")),
            "active": "",
            "keys": [],
        }
        store = cls(root, master, index, {}, backend or get_backend(), clock)
        with store._locked():
            store._add_key()
        _log.info("keystore created in %s with key %s", root, store.active_id)
        return store

    @classmethod
    def open(
        cls,
        directory: str | Path,
        passphrase: str,
        *,
        backend: Backend | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> KeyStore:
        root = Path(directory)
        if not (root / INDEX).exists():
            raise KeyStoreError(f"no keystore in {root} (run 'tinywindow keys init')")
        index = _read_json(root / INDEX, "keystore index")
        _check_index(index, root / INDEX)
        master = _master(passphrase, index.get("kdf"), root / INDEX)
        _verify_index(root, index, master)
        store = cls(root, master, index, {}, backend or get_backend(), clock)
        for key_hex in index.get("keys", []):
            store._keys[bytes.fromhex(key_hex)] = store._load_key(key_hex)
        if bytes.fromhex(str(index.get("active", ""))) not in store._keys:
            raise KeyStoreError(f"keystore index {root / INDEX} names no valid active key")
        return store

    @staticmethod
    def public_ring(directory: str | Path) -> PublicKeyRing:
        """Public keys of every key set in ``directory`` (no passphrase needed)."""
        root = Path(directory)
        index = _read_json(root / INDEX, "keystore index")
        _check_index(index, root / INDEX)
        keys = []
        for key_hex in index.get("keys", []):
            data = _read_json(root / f"{key_hex}.key", f"key file {key_hex}")
            public_json = data.get("public")
            if not isinstance(public_json, dict):
                raise KeyStoreError(f"key file {key_hex}.key is corrupt (no public part)")
            public = PublicKeys.from_json(public_json)
            if public.key_id_hex != key_hex:
                raise KeyStoreError(f"key file {key_hex}.key holds key {public.key_id_hex}")
            keys.append(public)
        return PublicKeyRing(keys)

    # ------------------------------------------------------------------ operations
    def rotate(self) -> str:
        """Add a fresh key set and make it active; returns its id (hex)."""
        with self._locked():
            key_hex = self._add_key()
        _log.info("keystore %s rotated to key %s", self.directory, key_hex)
        return key_hex

    def list(self) -> builtins.list[KeyInfo]:
        active = self.active_id
        return [
            KeyInfo(k.hex(), created, k.hex() == active) for k, (_, created) in self._keys.items()
        ]

    def export_public(self, key_ids: Sequence[str] | None = None) -> dict[str, Any]:
        """The public keys (all, or the ids given) as a JSON-able public key file."""
        wanted = [bytes.fromhex(k) for k in key_ids] if key_ids else builtins.list(self._keys)
        return PublicKeyRing(self.public(k) for k in wanted).to_json()

    @property
    def active_id(self) -> str:
        return str(self._index["active"])

    @property
    def backend(self) -> Backend:
        return self._backend

    def active(self) -> KeySet:
        return self._keys[bytes.fromhex(self.active_id)][0]

    def private(self, key_id: bytes) -> KeySet:
        try:
            return self._keys[key_id][0]
        except KeyError:
            raise KeyStoreError(f"key {key_id.hex()} is not in keystore {self.directory}") from None

    def public(self, key_id: bytes) -> PublicKeys:
        return self.private(key_id).public

    def __repr__(self) -> str:
        return f"KeyStore({str(self.directory)!r}, active={self.active_id}, keys={len(self._keys)})"

    def __reduce__(self) -> Any:
        raise KeyStoreError(
            "a KeyStore is not picklable: give the actor the keystore folder and the passphrase "
            "env var, and call open_keystore() there"
        )

    # ------------------------------------------------------------------ internals
    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if (self.directory / INDEX).exists():  # another process may have rotated meanwhile
                fresh = _read_json(self.directory / INDEX, "keystore index")
                _check_index(fresh, self.directory / INDEX)
                _verify_index(self.directory, fresh, self._master)
                for key_hex in fresh.get("keys", []):
                    if bytes.fromhex(key_hex) not in self._keys:
                        self._keys[bytes.fromhex(key_hex)] = self._load_key(key_hex)
                self._index = fresh
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _add_key(self) -> str:
        keyset = KeySet(os.urandom(SEEDS_BYTES), self._backend)
        key_hex, created = keyset.public.key_id_hex, int(self._clock())
        public = keyset.public.to_json()
        nonce = os.urandom(12)
        sealed = _wrap_key(self._master, keyset.key_id).encrypt(nonce, keyset.seeds, _canonical(public))
        record = {
            "format": KEY_FORMAT,
            "key_id": key_hex,
            "created_ns": created,
            "public": public,
            "nonce": b64(nonce),
            "sealed": b64(sealed),
        }
        atomic_write_local(self.directory / f"{key_hex}.key", json.dumps(record, indent=1).encode())
        self._keys[keyset.key_id] = (keyset, created)
        index = dict(self._index)
        index["keys"] = [*self._index["keys"], key_hex]
        index["active"] = key_hex
        self._write_index(index)
        return key_hex

    def _write_index(self, index: dict[str, Any]) -> None:
        body = {k: v for k, v in index.items() if k != "mac"}
        body["mac"] = b64(_mac(self._master, b"tinywindow/keystore/v1/index", _canonical(body)))
        atomic_write_local(self.directory / INDEX, json.dumps(body, indent=1).encode())
        self._index = body

    def _load_key(self, key_hex: str) -> tuple[KeySet, int]:
        path = self.directory / f"{key_hex}.key"
        data = _read_json(path, f"key file {key_hex}")
        if data.get("format") != KEY_FORMAT or data.get("key_id") != key_hex:
            raise KeyStoreError(f"key file {path} is corrupt (wrong format or key id)")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            _log.warning("key file %s is readable by others (mode %o); chmod 600 it", path, mode)
        public_json = data.get("public")
        if not isinstance(public_json, dict):
            raise KeyStoreError(f"key file {path} is corrupt (no public part)")
        public = PublicKeys.from_json(public_json)
        try:
            seeds = _wrap_key(self._master, public.key_id).decrypt(
                unb64(data.get("nonce"), f"{path} nonce"),
                unb64(data.get("sealed"), f"{path} sealed keys"),
                _canonical(public_json),
            )
        except (InvalidTag, ValueError):
            raise KeyStoreError(f"key file {path} is corrupt (sealed private keys fail authentication)") from None
        keyset = KeySet(seeds, self._backend)
        if keyset.public != public:
            raise KeyStoreError(f"key file {path} is corrupt (private keys do not match the public keys)")
        created = data.get("created_ns")
        return keyset, created if isinstance(created, int) else 0
