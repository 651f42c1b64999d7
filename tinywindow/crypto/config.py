"""Configuration of the crypto layer: backend, KEM, keystore, store and journal locations.

Defined beside the package that uses it and composed into the root ``tinywindow.config.Config``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tinywindow.core.settings import Section


class CryptoConfig(Section):
    """Layer 4 (``tinywindow.crypto``); paths are under ``data_dir`` unless absolute."""

    backend: Literal["cryptography", "oqs", "auto"] = "cryptography"
    kem: Literal["hybrid", "mlkem768"] = "hybrid"
    keystore_dir: str = "keys"
    passphrase_env: str = Field(default="TW_PASSPHRASE", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)
    # EncryptedStore root: a path or a pyarrow.fs URI (s3://bucket/prefix)
    store_dir: str = "store"
    journal_dir: str = "journal"
    # scrypt cost for new keystores: 2**n iterations (17: ~128 MiB, ~0.4 s per unlock)
    scrypt_log2_n: int = Field(default=17, ge=10, le=20)  # the keystore refuses more on open
    # fsync every journal append (a trading journal wants this; backtests may turn it off)
    journal_fsync: bool = True
