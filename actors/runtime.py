"""Connecting to Ray (an embedded local cluster by default, or a running one by address) and
tearing a run down cleanly."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tinywindow.config import Config
from tinywindow.config.placement import local_resources, unoffered
from tinywindow.core.log import get_logger

log = get_logger("runtime")

# Ray warns ("N PYTHON worker processes have been started ... 4x the maximum expected startup
# concurrency") once a node's worker processes, less 8 kept for I/O workers, reach 4x its
# worker start-up concurrency, which defaults to its CPU count.  The demo keeps up to 18
# long-lived workers with fractional CPUs (data sources, agents, consensus, portfolio, Serve's
# controller, proxy and replicas; measured) on purpose, so on 2 CPUs the warning fired at 16.
# With 8 concurrent start-ups it fires at 40: still a guard against runaway worker creation.
MIN_STARTUP_CONCURRENCY = 8


def connect(cfg: Config, **overrides: Any) -> Any:
    """``ray.init`` for the CLI and jobs.

    Without ``ray.address`` this starts a private local cluster (``"local"``: never attaches
    to one an earlier ``ray start`` left behind), no dashboard.  Token auth stays on
    (``RAY_AUTH_MODE=token`` unless set otherwise).  Inside a ``ray job submit`` job the
    cluster's address comes from ``RAY_ADDRESS``.
    """
    # Ray reads these when it is imported: set them first.
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    # ``ray.address`` wins; inside a ``ray job submit`` job Ray sets RAY_ADDRESS.
    address = cfg.ray.address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
    if address is None:
        kwargs.update(address="local", include_dashboard=False, num_cpus=cfg.ray.num_cpus)
        cpus = cfg.ray.num_cpus or os.cpu_count() or 1
        kwargs["_system_config"] = {"worker_maximum_startup_concurrency": max(MIN_STARTUP_CONCURRENCY, cpus)}
        if cfg.ray.object_store_bytes:
            kwargs["object_store_memory"] = cfg.ray.object_store_bytes
        custom = local_resources(cfg)  # a laptop runs a config written for a cluster as it is
        if custom:
            kwargs["resources"] = custom
    else:
        kwargs["address"] = address
    kwargs.update(overrides)
    context = ray.init(**kwargs)
    if address is not None:
        for line in unoffered(cfg, ray.cluster_resources()):
            log.warning("placement: %s", line)
    return context


def shutdown(handle_holders: Iterable[Any] = ()) -> None:
    """Tear a run down in dependency order, so that Ray reports no failed calls.

    1. ``handle_holders``: actors holding Serve deployment handles are killed first; each
       handle's long poll is a call waiting on the Serve controller, which would otherwise
       fail (and be reported) when the controller exits.
    2. Serve: apps deleted, proxies, replicas and controller stopped (``serving.shutdown``).
    3. ``ray.shutdown()``: the remaining actors of this driver end with it; an embedded
       cluster stops.
    """
    import ray

    from actors import serving

    if not ray.is_initialized():
        return
    for actor in handle_holders:
        ray.kill(actor)
    serving.shutdown()
    ray.shutdown()
