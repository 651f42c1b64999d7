"""Layer 4: post-quantum encryption, signatures, keystore, encrypted store, journal, manifests.

Every byte TinyWindow writes to disk goes through here:

* ``envelope``  ML-KEM-768 (+ X25519 hybrid) wrapped AES-256-GCM, signed with ML-DSA-65
* ``keystore``  passphrase-protected key sets with ids and rotation
* ``store``     ``EncryptedStore``: Arrow IPC segments, encrypted, signed, written atomically
* ``journal``   append-only, hash-chained, signed records (orders, fills, risk events...)
* ``manifest``  signed manifests for folders of artefacts (model checkpoints)
* ``sealed``    one file, one envelope labelled with its path (model files, tuned parameters)

This package never imports Ray.  Unlocked keys cannot be pickled: a Ray actor opens the
keystore itself with ``open_keystore(cfg.crypto, cfg.data_dir)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tinywindow.core.log import register_secret
from tinywindow.crypto.backends import Backend, get_backend
from tinywindow.crypto.keys import KeySet, PublicKeyRing, PublicKeys
from tinywindow.crypto.keystore import KeyInfo, KeyStore
from tinywindow.errors import KeyStoreError

if TYPE_CHECKING:
    from tinywindow.crypto.config import CryptoConfig

__all__ = [
    "Backend",
    "KeyInfo",
    "KeySet",
    "KeyStore",
    "PublicKeyRing",
    "PublicKeys",
    "get_backend",
    "keystore_dir",
    "open_keystore",
    "passphrase_from_env",
    "under",
]


def under(data_dir: str | Path, path: str) -> Path:
    """``path`` under ``data_dir`` unless absolute (how every crypto path is configured)."""
    p = Path(path)
    return p if p.is_absolute() else Path(data_dir) / p


def keystore_dir(crypto: CryptoConfig, data_dir: str | Path) -> Path:
    """``crypto.keystore_dir``, under ``data_dir`` unless absolute."""
    return under(data_dir, crypto.keystore_dir)


def passphrase_from_env(crypto: CryptoConfig) -> str:
    """The passphrase from the env var named by ``crypto.passphrase_env`` (masked in logs)."""
    value = os.environ.get(crypto.passphrase_env, "")
    if not value:
        raise KeyStoreError(
            f"no keystore passphrase: set the {crypto.passphrase_env} environment variable"
        )
    register_secret(value)
    return value


def open_keystore(crypto: CryptoConfig, data_dir: str | Path, passphrase: str | None = None) -> KeyStore:
    """Open the keystore of the ``crypto`` section (its folder under ``data_dir`` unless
    absolute); the passphrase comes from the env var when not given."""
    secret = passphrase if passphrase is not None else passphrase_from_env(crypto)
    register_secret(secret)
    return KeyStore.open(keystore_dir(crypto, data_dir), secret, backend=get_backend(crypto.backend))
