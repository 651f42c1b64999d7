"""Shared by the hostile storage tests: the keystore passphrase, a fake clock, file digests
(to show a refusal changed nothing) and a bit flipper."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from tinywindow.crypto.keystore import KeyStore

PASSPHRASE = "hostile storage passphrase"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        self.now += 1_000
        return self.now


def digest_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``root``: compared before and after each case
    (size and the first MiB for the sparse giant of the verify cases)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and stat.S_ISREG(path.stat().st_mode):
            with open(path, "rb") as fh:
                head = fh.read(1 << 20)
            out[str(path.relative_to(root))] = f"{path.stat().st_size}:{hashlib.sha256(head).hexdigest()}"
    return out


def flip(path: Path, pos: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= mask
    path.write_bytes(bytes(data))


def new_keystore(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return KeyStore.init(tmp_path_factory.mktemp("ks") / "keys", PASSPHRASE, scrypt_log2_n=10, clock=Clock())
