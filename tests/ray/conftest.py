"""One shared local Ray cluster for every test under tests/ray."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ["RAY_AUTH_MODE"] = "token"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        "local",
        num_cpus=2,
        object_store_memory=1024 * 1024**2,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
