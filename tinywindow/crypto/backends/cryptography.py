"""The default backend: ML-KEM-768 / ML-DSA-65 from the OpenSSL inside the ``cryptography``
wheel (>= 47)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem

from tinywindow.crypto.backends.base import (
    MLDSA65_PUBLIC_BYTES,
    MLDSA65_SEED_BYTES,
    MLDSA65_SIGNATURE_BYTES,
    MLKEM768_CIPHERTEXT_BYTES,
    MLKEM768_PUBLIC_BYTES,
    MLKEM768_SEED_BYTES,
    KemPrivateKey,
    SigPrivateKey,
    check_len,
)


class _CgKem:
    def __init__(self, key: mlkem.MLKEM768PrivateKey) -> None:
        self._key = key
        self._public = key.public_key().public_bytes_raw()

    def public_bytes(self) -> bytes:
        return self._public

    def decapsulate(self, ciphertext: bytes) -> bytes:
        check_len("ML-KEM-768 ciphertext", ciphertext, MLKEM768_CIPHERTEXT_BYTES)
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
        check_len("ML-KEM-768 seed", seed, MLKEM768_SEED_BYTES)
        return _CgKem(mlkem.MLKEM768PrivateKey.from_seed_bytes(seed))

    def mlkem768_encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        check_len("ML-KEM-768 public key", public_key, MLKEM768_PUBLIC_BYTES)
        shared, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(public_key).encapsulate()
        return shared, ciphertext

    def mldsa65_from_seed(self, seed: bytes) -> SigPrivateKey:
        check_len("ML-DSA-65 seed", seed, MLDSA65_SEED_BYTES)
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
