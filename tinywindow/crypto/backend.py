"""Post-quantum primitives behind one small protocol, so the rest of ``tinywindow.crypto`` does
not care which library computes ML-KEM-768 and ML-DSA-65.

* ``CryptographyBackend`` (default): the OpenSSL inside the ``cryptography`` wheel (>= 47).
* ``OqsBackend`` (optional, ``tinywindow.crypto.oqs_backend``): liboqs through ``liboqs-python``,
  imported lazily and only after the liboqs shared library is known to load.

Private keys are always derived from their FIPS seeds (ML-KEM: 64-byte ``d || z``, ML-DSA:
32-byte ``xi``): the keystore stores seeds, so every backend rebuilds the same key pair from them.
Classical pieces (X25519, AES-256-GCM, HKDF) always come from ``cryptography``.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem

from tinywindow.errors import ConfigError

MLKEM768_SEED_BYTES = 64
MLKEM768_PUBLIC_BYTES = 1184
MLKEM768_CIPHERTEXT_BYTES = 1088
MLKEM_SHARED_BYTES = 32
MLDSA65_SEED_BYTES = 32
MLDSA65_PUBLIC_BYTES = 1952
MLDSA65_SIGNATURE_BYTES = 3309
MLDSA_MAX_CONTEXT = 255

BACKEND_NAMES = ("cryptography", "oqs", "auto")


class KemPrivateKey(Protocol):
    """An ML-KEM-768 decapsulation key."""

    def public_bytes(self) -> bytes: ...

    def decapsulate(self, ciphertext: bytes) -> bytes:
        """The 32-byte shared secret (FIPS 203 implicit rejection: a bad ciphertext gives a
        pseudo-random secret, never an exception)."""
        ...


class SigPrivateKey(Protocol):
    """An ML-DSA-65 signing key."""

    def public_bytes(self) -> bytes: ...

    def sign(self, message: bytes, context: bytes) -> bytes: ...


class Backend(Protocol):
    """The post-quantum operations TinyWindow needs; see the module docstring."""

    name: str

    def mlkem768_from_seed(self, seed: bytes) -> KemPrivateKey: ...

    def mlkem768_encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        """``(shared_secret, ciphertext)`` for the holder of ``public_key``."""
        ...

    def mldsa65_from_seed(self, seed: bytes) -> SigPrivateKey: ...

    def mldsa65_verify(
        self, public_key: bytes, signature: bytes, message: bytes, context: bytes
    ) -> bool: ...


def _check_len(what: str, data: bytes, n: int) -> None:
    if len(data) != n:
        raise ValueError(f"{what} must be {n} bytes, got {len(data)}")


class _CgKem:
    def __init__(self, key: mlkem.MLKEM768PrivateKey) -> None:
        self._key = key
        self._public = key.public_key().public_bytes_raw()

    def public_bytes(self) -> bytes:
        return self._public

    def decapsulate(self, ciphertext: bytes) -> bytes:
        _check_len("ML-KEM-768 ciphertext", ciphertext, MLKEM768_CIPHERTEXT_BYTES)
        return self._key.decapsulate(ciphertext)


class _CgSig:
    def __init__(self, key: mldsa.MLDSA65PrivateKey) -> None:
        self._key = key
        self._public = key.public_key().public_bytes_raw()

    def public_bytes(self) -> bytes:
        return self._public

    def sign(self, message: bytes, context: bytes) -> bytes:
        return self._key.sign(message, context)


class CryptographyBackend:
    """ML-KEM-768 / ML-DSA-65 from the OpenSSL bundled in the ``cryptography`` wheel."""

    name = "cryptography"

    def mlkem768_from_seed(self, seed: bytes) -> KemPrivateKey:
        _check_len("ML-KEM-768 seed", seed, MLKEM768_SEED_BYTES)
        return _CgKem(mlkem.MLKEM768PrivateKey.from_seed_bytes(seed))

    def mlkem768_encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        _check_len("ML-KEM-768 public key", public_key, MLKEM768_PUBLIC_BYTES)
        shared, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(public_key).encapsulate()
        return shared, ciphertext

    def mldsa65_from_seed(self, seed: bytes) -> SigPrivateKey:
        _check_len("ML-DSA-65 seed", seed, MLDSA65_SEED_BYTES)
        return _CgSig(mldsa.MLDSA65PrivateKey.from_seed_bytes(seed))

    def mldsa65_verify(
        self, public_key: bytes, signature: bytes, message: bytes, context: bytes
    ) -> bool:
        if len(public_key) != MLDSA65_PUBLIC_BYTES or len(signature) != MLDSA65_SIGNATURE_BYTES:
            return False
        try:
            mldsa.MLDSA65PublicKey.from_public_bytes(public_key).verify(signature, message, context)
        except (InvalidSignature, ValueError):
            return False
        return True


_DEFAULT = CryptographyBackend()


def get_backend(name: str = "cryptography") -> Backend:
    """The backend called ``name``: ``cryptography``, ``oqs`` (liboqs; ``ConfigError`` naming
    the reason when it cannot load) or ``auto`` (liboqs when it loads, else
    ``cryptography``)."""
    if name == "cryptography":
        return _DEFAULT
    if name in ("oqs", "auto"):
        from tinywindow.crypto import oqs_backend

        if name == "oqs":
            return oqs_backend.OqsBackend()
        return oqs_backend.OqsBackend() if oqs_backend.available() else _DEFAULT
    raise ConfigError(
        f"unknown crypto backend {name!r} (allowed: {', '.join(BACKEND_NAMES)})", key="crypto.backend"
    )
