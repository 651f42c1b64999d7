"""Builds the actor graph and runs it: data sources first (agents, consensus and the
portfolio join as their layers land)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tinywindow.config import Config, SourceConfig
from tinywindow.data.features import complete_mask
from tinywindow.data.persist import EncryptedSink
from tinywindow.log import get_logger

log = get_logger("pipeline")

DEMO_SOURCES = [
    SourceConfig(name="sp500", kind="bundled", datasets=["sp500"]),
    SourceConfig(name="nasdaq", kind="bundled", datasets=["nasdaq"]),
    SourceConfig(name="goog", kind="bundled", datasets=["goog"]),
    SourceConfig(name="btcusd", kind="bundled", datasets=["btcusd"]),
    SourceConfig(name="synthetic", kind="synthetic", n_symbols=200, n_bars=2520, seed=7),
]


@dataclass
class DataStage:
    """One DataSourceActor per configured source, loaded in parallel."""

    actors: dict[str, Any] = field(default_factory=dict)
    summary: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def start_data(cfg: Config, sources: list[SourceConfig] | None = None) -> DataStage:
    import ray

    from actors.data_source import remote_data_source

    stage = DataStage()
    t0 = time.perf_counter()
    sink = EncryptedSink.from_config(cfg) if cfg.data.persist else None
    for scfg in sources or cfg.data.sources:
        stage.actors[scfg.name] = remote_data_source().remote(scfg, cfg.data, sink)
    loads = {name: a.load.remote() for name, a in stage.actors.items()}
    ray.get(list(loads.values()))
    # features through the object store: each source's FEATURES table is put once
    feats = {name: a.features.remote() for name, a in stage.actors.items()}
    descs = ray.get([a.describe.remote() for a in stage.actors.values()])
    for desc, ref in zip(descs, feats.values(), strict=True):
        table = ray.get(ref)
        desc["feature_rows"] = table.num_rows
        desc["feature_rows_complete"] = int(complete_mask(table).sum())
        desc["feature_mb"] = table.nbytes / 1e6
        stage.summary.append(desc)
    stage.seconds = time.perf_counter() - t0
    return stage
