"""The storage-root check every command that writes state runs first (``tinywindow.core.storage``)."""

from __future__ import annotations

from tinywindow.config import Config
from tinywindow.core.storage import check_state_root


def state_root(cfg: Config, what: str) -> Config:
    """``cfg`` with ``data_dir`` made absolute, after refusing a root that is a URI or lies in a
    Ray job's ephemeral working directory (unless ``storage.allow_ephemeral``).  Absolute, so
    actors and Tune trials, whose working directory is not the driver's, write to the same place."""
    root = str(check_state_root(cfg.data_dir, cfg.storage, what))
    return cfg if root == cfg.data_dir else cfg.set("data_dir", root)
