"""Connecting to Ray: an embedded local cluster by default, or a running one by address."""

from __future__ import annotations

import os
from typing import Any

from tinywindow.config import Config


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
        if cfg.ray.object_store_bytes:
            kwargs["object_store_memory"] = cfg.ray.object_store_bytes
    else:
        kwargs["address"] = address
    kwargs.update(overrides)
    return ray.init(**kwargs)
