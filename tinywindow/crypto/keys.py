"""Key sets and key ids.

A *key set* is what one keystore generation holds: an ML-KEM-768 key and an X25519 key (the two
halves of the hybrid KEM) and an ML-DSA-65 signing key.  Its id is the first 16 bytes of
``SHA-256("tinywindow/key-id/v1" || mlkem768_pk || x25519_pk || mldsa65_pk)``, shown as 32 hex
digits.  Verification needs only the public half (``PublicKeys``); a ``PublicKeyRing`` holds
public halves by id, loaded from ``tinywindow keys export-public`` output or a keystore folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import x25519

from tinywindow.crypto.backends import (
    MLDSA65_PUBLIC_BYTES,
    MLKEM768_PUBLIC_BYTES,
    Backend,
    KemPrivateKey,
    SigPrivateKey,
)
from tinywindow.errors import KeyStoreError

KEY_ID_BYTES = 16
X25519_BYTES = 32
SEEDS_BYTES = 64 + X25519_BYTES + 32  # ML-KEM d||z, X25519 scalar, ML-DSA xi
PUBLIC_FORMAT = "tinywindow-public-keys/1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise KeyStoreError(f"{what} is missing or not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise KeyStoreError(f"{what} is not valid base64") from None


def compute_key_id(mlkem768: bytes, x25519_pk: bytes, mldsa65: bytes) -> bytes:
    h = hashlib.sha256(b"tinywindow/key-id/v1")
    for part in (mlkem768, x25519_pk, mldsa65):
        h.update(part)
    return h.digest()[:KEY_ID_BYTES]


@dataclass(frozen=True)
class PublicKeys:
    """The public half of a key set: enough to encrypt to it and to verify its signatures."""

    mlkem768: bytes
    x25519: bytes
    mldsa65: bytes

    def __post_init__(self) -> None:
        for what, data, n in (
            ("ML-KEM-768 public key", self.mlkem768, MLKEM768_PUBLIC_BYTES),
            ("X25519 public key", self.x25519, X25519_BYTES),
            ("ML-DSA-65 public key", self.mldsa65, MLDSA65_PUBLIC_BYTES),
        ):
            if len(data) != n:
                raise KeyStoreError(f"{what} must be {n} bytes, got {len(data)}")

    @property
    def key_id(self) -> bytes:
        return compute_key_id(self.mlkem768, self.x25519, self.mldsa65)

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    def to_json(self) -> dict[str, str]:
        return {
            "key_id": self.key_id_hex,
            "mlkem768": b64(self.mlkem768),
            "x25519": b64(self.x25519),
            "mldsa65": b64(self.mldsa65),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublicKeys:
        keys = cls(
            unb64(data.get("mlkem768"), "mlkem768"),
            unb64(data.get("x25519"), "x25519"),
            unb64(data.get("mldsa65"), "mldsa65"),
        )
        if data.get("key_id") != keys.key_id_hex:
            raise KeyStoreError(f"public keys do not match their key id {data.get('key_id')!r}")
        return keys


class KeySet:
    """An unlocked key set (private keys in memory).  It refuses to be pickled so it never
    travels through Ray's object store or a log by accident."""

    __slots__ = ("_kem", "_sig", "_x25519", "public", "seeds")

    def __init__(self, seeds: bytes, backend: Backend) -> None:
        if len(seeds) != SEEDS_BYTES:
            raise KeyStoreError(f"key seeds must be {SEEDS_BYTES} bytes, got {len(seeds)}")
        self.seeds = seeds
        self._kem: KemPrivateKey = backend.mlkem768_from_seed(seeds[:64])
        self._x25519 = x25519.X25519PrivateKey.from_private_bytes(seeds[64:96])
        self._sig: SigPrivateKey = backend.mldsa65_from_seed(seeds[96:])
        self.public = PublicKeys(
            self._kem.public_bytes(), self._x25519.public_key().public_bytes_raw(), self._sig.public_bytes()
        )

    @property
    def key_id(self) -> bytes:
        return self.public.key_id

    def mlkem_decapsulate(self, ciphertext: bytes) -> bytes:
        return self._kem.decapsulate(ciphertext)

    def x25519_exchange(self, peer_public: bytes) -> bytes:
        """X25519 with ``peer_public``; ``ValueError`` for a low-order point (all-zero secret)."""
        return self._x25519.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))

    def sign(self, message: bytes, context: bytes) -> bytes:
        return self._sig.sign(message, context)

    def __repr__(self) -> str:
        return f"KeySet(key_id={self.public.key_id_hex}, private=<hidden>)"

    def __reduce__(self) -> Any:
        raise KeyStoreError(
            "unlocked keys are not picklable: pass the keystore directory and passphrase env var "
            "to the actor and call open_keystore() there"
        )


class PublicKeySource(Protocol):
    """Anything that can look up the public keys of a key id (a KeyStore, a PublicKeyRing)."""

    def public(self, key_id: bytes) -> PublicKeys: ...


class PrivateKeySource(PublicKeySource, Protocol):
    """Anything that can also hand out unlocked key sets (a KeyStore)."""

    def private(self, key_id: bytes) -> KeySet: ...

    def active(self) -> KeySet: ...


class PublicKeyRing:
    """Public keys by id, for verifying without any private key or passphrase."""

    def __init__(self, keys: Iterable[PublicKeys]) -> None:
        self._keys = {k.key_id: k for k in keys}

    def public(self, key_id: bytes) -> PublicKeys:
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyStoreError(f"no public key with id {key_id.hex()} in this key ring") from None

    def ids(self) -> list[str]:
        return sorted(k.hex() for k in self._keys)

    def to_json(self) -> dict[str, Any]:
        return {"format": PUBLIC_FORMAT, "keys": [self._keys[k].to_json() for k in sorted(self._keys)]}

    @classmethod
    def from_json(cls, data: Any) -> PublicKeyRing:
        if not isinstance(data, dict) or data.get("format") != PUBLIC_FORMAT:
            raise KeyStoreError(f"not a TinyWindow public key file (format {PUBLIC_FORMAT!r} expected)")
        entries = data.get("keys")
        if not isinstance(entries, list):
            raise KeyStoreError("public key file has no 'keys' list")
        return cls(PublicKeys.from_json(e) for e in entries if isinstance(e, dict))

    @classmethod
    def load(cls, path: str) -> PublicKeyRing:
        try:
            with open(path, encoding="utf-8") as fh:
                return cls.from_json(json.load(fh))
        except FileNotFoundError:
            raise KeyStoreError(f"public key file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise KeyStoreError(f"public key file {path} is not valid JSON: {exc}") from None
