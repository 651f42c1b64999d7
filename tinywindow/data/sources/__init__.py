"""Build a DataSource from its configuration."""

from __future__ import annotations

from tinywindow.data.base import DataSource
from tinywindow.data.config import SourceConfig
from tinywindow.data.feed.client import GrpcFeedSource, RejectHandler
from tinywindow.errors import ConfigError


def build_source(
    cfg: SourceConfig, on_bad_rows: str = "reject", on_reject: RejectHandler | None = None
) -> DataSource:
    """The DataSource a ``data.sources`` entry describes."""
    if cfg.kind == "bundled":
        from tinywindow.data.sources.bundled import BundledSource

        return BundledSource(cfg.name, cfg.datasets, on_bad_rows, cfg.replay_speed)
    if cfg.kind == "file":
        from tinywindow.data.sources.files import FileOptions, FileSource

        if not cfg.path:
            raise ConfigError(f"source {cfg.name!r}: kind 'file' needs a path", key="data.sources.path")
        return FileSource(
            cfg.name, cfg.path, cfg.columns, cfg.symbol, cfg.timezone, on_bad_rows, cfg.replay_speed,
            options=FileOptions.from_config(cfg),
        )
    if cfg.kind == "synthetic":
        from tinywindow.data.sources.synthetic import SyntheticSource

        return SyntheticSource(
            cfg.name, cfg.n_symbols, cfg.n_bars, cfg.seed, cfg.start, cfg.freq, cfg.replay_speed,
            planted=cfg.planted.given() if cfg.planted is not None else None,
        )
    return GrpcFeedSource(
        cfg.name, cfg.address, cfg.symbols, on_bad_rows, on_reject, max_reconnects=cfg.max_reconnects
    )
