"""Fixtures for the agent unit tests (no Ray: nothing here trains with RLlib)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from tests.unit.models.synth import planted_features
from tinywindow.crypto.keystore import KeyStore

PASSPHRASE = "agents-test-passphrase"


@pytest.fixture(scope="session")
def planted() -> pa.Table:
    return planted_features(n_symbols=3, n_bars=400, seed=0)


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return KeyStore.init(tmp_path_factory.mktemp("keys") / "ks", PASSPHRASE, scrypt_log2_n=10)


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread() -> Iterator[None]:
    """Small forward passes are fastest (and steadiest on a shared 2-core box) on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
