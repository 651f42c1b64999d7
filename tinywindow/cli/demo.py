"""``tinywindow demo``: the whole engine on bundled real data, on an embedded Ray cluster."""

from __future__ import annotations

import argparse
import time
from typing import Any

from tinywindow.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the engine end to end on bundled real data (make demo)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    from actors.pipeline import DEMO_SOURCES, start_data
    from actors.runtime import connect
    from tinywindow.report import iso, table

    t0 = time.perf_counter()
    connect(cfg)
    print(f"Ray up in {time.perf_counter() - t0:.1f}s")
    data = start_data(cfg, DEMO_SOURCES)
    rows = [
        [d["name"], d["kind"], len(d["symbols"]), d["rows"], iso(d["first_ts"]), iso(d["last_ts"]),
         d["feature_rows_complete"], d["quarantined"], round(d["feature_mb"], 1)]
        for d in data.summary
    ]
    print(f"\n== Layer 1: market data -> DataSourceActors -> object store ({data.seconds:.1f}s)")
    print(table(rows, ["source", "kind", "symbols", "bars", "first", "last", "feature rows", "quarantined", "features MB"]))
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f}s")
    return 0
