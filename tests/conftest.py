"""Shared test set-up: every test is marked by the folder it lives in, and every test that needs
Ray shares one local cluster (``ray_cluster``), started with a deadline sized for a cold first
start on a loaded 2-core machine and retried once."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Explicit in every process a test starts (Ray 2.60 turns token auth on for local clusters).
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray waits 30 s for the GCS port file by default; a cold first start has taken longer.
os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "180")


def _session_auth_token() -> None:
    """Token auth needs a token before any Ray process starts: ``ray.init`` writes
    ``~/.ray/auth_token`` on first use, but ``ray start`` and ``ray.cluster_utils.Cluster``
    refuse to start (the GCS aborts) on a machine that has none, which is every fresh machine.
    The suite brings its own, in a file only this run uses, inherited by every process."""
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = Path(tempfile.mkdtemp(prefix="tw-test-auth-")) / "auth_token"
    path.write_text(secrets.token_hex(32))
    path.chmod(0o600)
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)


_session_auth_token()

_LAYERS = {
    "unit": pytest.mark.unit,
    "ray": pytest.mark.ray,
    "cluster": pytest.mark.cluster,
    "hostile": pytest.mark.hostile,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for name, mark in _LAYERS.items():
            if name in parts:
                item.add_marker(mark)


@pytest.fixture()
def seed(request: pytest.FixtureRequest) -> int:
    """The seed of a test whose outcome depends on the luck of a training run: ``TW_TEST_SEED``
    (0 by default), plus the repetition number under ``pytest --count N`` (pytest-repeat), so
    repeating such a test measures its margin over N seeds, not one seed N times."""
    base = int(os.environ.get("TW_TEST_SEED", "0"))
    callspec = getattr(request.node, "callspec", None)
    step = callspec.params.get("__pytest_repeat_step_number", 0) if callspec is not None else 0
    return base + int(step)


def _start_local_ray() -> None:
    """``ray.init("local")`` with one retry: a cold first start (bytecode compiling, cold page
    cache, a busy core) has taken over a minute before the GCS came up."""
    import ray

    last: BaseException | None = None
    for attempt in (1, 2):
        try:
            ray.init(
                "local",
                num_cpus=2,
                object_store_memory=1024 * 1024**2,
                include_dashboard=False,
                logging_level="WARNING",
                log_to_driver=False,
            )
            return
        except Exception as e:
            last = e
            if ray.is_initialized():
                ray.shutdown()
            if attempt == 1:
                print(f"ray_cluster: the local Ray cluster did not start ({e!r}); retrying once")
                time.sleep(2)
    raise RuntimeError(f"the local Ray cluster did not start after two attempts: {last!r}") from last


@pytest.fixture(scope="session")
def _ray_session() -> Iterator[None]:
    import ray

    if not ray.is_initialized():
        _start_local_ray()
    try:
        yield
    finally:
        if ray.is_initialized():
            ray.shutdown()


@pytest.fixture()
def ray_cluster(_ray_session: None) -> Iterator[None]:
    """The one shared local cluster (restarted if a multi-node test shut it down)."""
    import ray

    if not ray.is_initialized():
        _start_local_ray()
    yield
