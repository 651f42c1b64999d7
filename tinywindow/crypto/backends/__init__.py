"""Post-quantum primitives behind one small protocol, so the rest of ``tinywindow.crypto`` does
not care which library computes ML-KEM-768 and ML-DSA-65.

* ``base``          the ``Backend`` protocol and the key, ciphertext and signature sizes
* ``cryptography``  ``CryptographyBackend`` (default): the OpenSSL inside the ``cryptography``
  wheel (>= 47)
* ``oqs``           ``OqsBackend`` (optional): liboqs through ``liboqs-python``, imported lazily
  and only after the liboqs shared library is known to load

Classical pieces (X25519, AES-256-GCM, HKDF) always come from ``cryptography``.
``get_backend(name)`` picks one by its configured name (``crypto.backend``).
"""

from __future__ import annotations

from tinywindow.crypto.backends.base import (
    BACKEND_NAMES,
    MLDSA65_PUBLIC_BYTES,
    MLDSA65_SEED_BYTES,
    MLDSA65_SIGNATURE_BYTES,
    MLDSA_MAX_CONTEXT,
    MLKEM768_CIPHERTEXT_BYTES,
    MLKEM768_PUBLIC_BYTES,
    MLKEM768_SEED_BYTES,
    MLKEM_SHARED_BYTES,
    Backend,
    KemPrivateKey,
    SigPrivateKey,
)
from tinywindow.crypto.backends.cryptography import CryptographyBackend
from tinywindow.errors import ConfigError

__all__ = [
    "BACKEND_NAMES",
    "MLDSA65_PUBLIC_BYTES",
    "MLDSA65_SEED_BYTES",
    "MLDSA65_SIGNATURE_BYTES",
    "MLDSA_MAX_CONTEXT",
    "MLKEM768_CIPHERTEXT_BYTES",
    "MLKEM768_PUBLIC_BYTES",
    "MLKEM768_SEED_BYTES",
    "MLKEM_SHARED_BYTES",
    "Backend",
    "CryptographyBackend",
    "KemPrivateKey",
    "SigPrivateKey",
    "get_backend",
]

_DEFAULT = CryptographyBackend()


def get_backend(name: str = "cryptography") -> Backend:
    """The backend called ``name``: ``cryptography``, ``oqs`` (liboqs; ``ConfigError`` naming
    the reason when it cannot load) or ``auto`` (liboqs when it loads, else
    ``cryptography``)."""
    if name == "cryptography":
        return _DEFAULT
    if name in ("oqs", "auto"):
        from tinywindow.crypto.backends import oqs

        if name == "oqs":
            return oqs.OqsBackend()
        return oqs.OqsBackend() if oqs.available() else _DEFAULT
    raise ConfigError(
        f"unknown crypto backend {name!r} (allowed: {', '.join(BACKEND_NAMES)})", key="crypto.backend"
    )
