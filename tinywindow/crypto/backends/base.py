"""The post-quantum backend protocol and the sizes every backend agrees on.

``Backend`` is what the rest of ``tinywindow.crypto`` calls for ML-KEM-768 and ML-DSA-65;
``backends.cryptography`` and ``backends.oqs`` implement it.  Private keys are always derived
from their FIPS seeds (ML-KEM: 64-byte ``d || z``, ML-DSA: 32-byte ``xi``): the keystore stores
seeds, so every backend rebuilds the same key pair from them.
"""

from __future__ import annotations

from typing import Protocol

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


def check_len(what: str, data: bytes, n: int) -> None:
    if len(data) != n:
        raise ValueError(f"{what} must be {n} bytes, got {len(data)}")
