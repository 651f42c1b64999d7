"""Fixtures for the crypto tests: cheap keystores (scrypt 2**10) in temp folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinywindow.crypto.keystore import KeyStore

PASSPHRASE = "correct horse battery staple"


class FakeClock:
    """Deterministic nanosecond clock (STYLE rule 3)."""

    def __init__(self, start: int = 1_700_000_000_000_000_000, step: int = 1_000) -> None:
        self.now, self.step = start, step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def make_keystore(path: Path, passphrase: str = PASSPHRASE) -> KeyStore:
    return KeyStore.init(path, passphrase, scrypt_log2_n=10, clock=FakeClock())


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    return make_keystore(tmp_path / "keys")


@pytest.fixture(scope="module")
def shared_keystore(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return make_keystore(tmp_path_factory.mktemp("shared") / "keys")
