from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.records._run import build_run, keystore
from tinywindow.execution.config import PortfolioConfig

PORT = PortfolioConfig(commission_bps=1.5, slippage_bps=2.5)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 40-bar run's journals (portfolio and consensus) and its keystore."""
    d = tmp_path_factory.mktemp("run")
    keys = keystore(d)
    got = build_run(d, keys)
    got["durable"].close()
    got["consensus"].close()
    return {"data_dir": Path(d), "keys": keys, "engine": got["engine"]}
