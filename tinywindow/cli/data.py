"""``tinywindow data list|show|ingest``."""

from __future__ import annotations

import argparse
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tinywindow.config import Config
from tinywindow.data.config import SourceConfig
from tinywindow.errors import ConfigError, DataError


def register(sub: Any) -> None:
    p = sub.add_parser("data", help="market-data sources: list, show, ingest")
    cmds = p.add_subparsers(dest="data_command", metavar="ACTION")
    cmds.required = True

    ls = cmds.add_parser("list", help="configured sources and the bundled datasets")
    ls.set_defaults(func=cmd_list)

    show = cmds.add_parser("show", help="summarise a source (per symbol) and print its newest rows")
    show.add_argument("source", help="a configured source name, or a bundled dataset (sp500, goog, ...)")
    show.add_argument("--rows", type=int, default=5, help="newest rows to print (default 5)")
    show.add_argument("--features", action="store_true", help="print features instead of bars")
    show.set_defaults(func=cmd_show)

    ing = cmds.add_parser(
        "ingest", help="fetch, validate and persist sources as encrypted, signed Arrow IPC segments"
    )
    ing.add_argument("sources", nargs="*", help="source names (default: every configured source)")
    ing.set_defaults(func=cmd_ingest)

    seg = cmds.add_parser("segments", help="list stored segments; each is verified and decrypted to count its rows")
    seg.add_argument("prefix", nargs="?", default="", help="name prefix, e.g. a source name")
    seg.set_defaults(func=cmd_segments)


def resolve_source(cfg: Config, name: str) -> SourceConfig:
    """A configured source by name; a bare bundled dataset name works too."""
    from tinywindow.data.sources.bundled import DATASETS

    for s in cfg.data.sources:
        if s.name == name:
            return s
    if name in DATASETS:
        return SourceConfig(name=name, kind="bundled", datasets=[name])
    known = [s.name for s in cfg.data.sources] + list(DATASETS)
    raise ConfigError(f"unknown source {name!r} (known: {', '.join(known)})", key="data.sources")


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli._tables import table
    from tinywindow.data.sources.bundled import DATASETS

    rows: list[list[Any]] = []
    for s in cfg.data.sources:
        detail = {
            "bundled": ",".join(s.datasets),
            "file": s.path or "",
            "synthetic": f"{s.n_symbols} symbols x {s.n_bars} bars, seed {s.seed}",
            "grpc": s.address,
        }[s.kind]
        rows.append([s.name, s.kind, detail])
    print("Configured sources")
    print(table(rows, ["name", "kind", "detail"]))
    print("\nBundled datasets (offline)")
    print(table([[k, d.symbol, d.description] for k, d in DATASETS.items()], ["dataset", "symbol", "description"]))
    return 0


def summarise(bars: pa.Table) -> list[list[Any]]:
    """Per symbol: rows, first and last bar time, last close."""
    from tinywindow.cli._tables import iso

    df = bars.select(["symbol", "ts", "close"]).to_pandas()
    df["symbol"] = df["symbol"].astype(str)
    df["ts"] = df["ts"].astype("int64")
    g = df.groupby("symbol", sort=True)
    stats = g.agg(bars=("ts", "size"), first=("ts", "min"), last=("ts", "max"))
    last_close = df.loc[g["ts"].idxmax(), ["symbol", "close"]].set_index("symbol")["close"]
    return [
        [sym, int(r.bars), iso(int(r.first)), iso(int(r.last)), float(last_close[sym])]
        for sym, r in stats.iterrows()
    ]


def cmd_show(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli._tables import table
    from tinywindow.contracts import symbol_codes
    from tinywindow.data import features
    from tinywindow.data.history import BarHistory, tail_indices
    from tinywindow.data.sources import build_source

    src = build_source(resolve_source(cfg, args.source), cfg.data.on_bad_rows)
    bars = src.fetch()
    print(f"Source {args.source!r}: {bars.num_rows} bars")
    print(table(summarise(bars), ["symbol", "bars", "first", "last", "last close"]))
    hist = BarHistory(args.source)
    hist.append(bars)
    shown = hist.window(args.rows)
    if args.features:
        f = features.compute(hist.window(args.rows + features.WARMUP_BARS * 4))
        shown = f.take(pa.array(tail_indices(symbol_codes(f), args.rows)))
    print()
    print(shown.to_pandas().to_string(index=False, max_cols=20))
    return 0


def cmd_ingest(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli._storage import state_root
    from tinywindow.cli._tables import iso, table
    from tinywindow.crypto.store import EncryptedStore
    from tinywindow.data.persist import SegmentWriter
    from tinywindow.data.sources import build_source

    cfg = state_root(cfg, "tinywindow data ingest")  # refuses a job's throw-away working directory
    names = args.sources or [s.name for s in cfg.data.sources]
    sink: EncryptedStore | None = None
    rows = []
    for name in names:
        scfg = resolve_source(cfg, name)
        t0 = time.perf_counter()
        src = build_source(scfg, cfg.data.on_bad_rows)
        bars = src.fetch()  # a bad file fails here (DataError: file, row, column), before any write
        if bars.num_rows == 0:
            raise DataError("no bars to ingest", source=scfg.name)
        sink = sink or EncryptedStore.from_config(cfg.crypto, cfg.data_dir)
        writer = SegmentWriter(sink, scfg.name, cfg.data.segment_rows)
        writer.add(bars)
        written = writer.flush()
        q = getattr(src, "quarantined", None)
        ts = bars.column("ts").cast(pa.int64())
        rows.append([
            scfg.name, bars.num_rows, len(set(bars.column("symbol").to_pylist())),
            iso(pc.min(ts).as_py()), iso(pc.max(ts).as_py()), q.count if q else 0,
            len(written), round(time.perf_counter() - t0, 2),
        ])
    print(table(rows, ["source", "bars", "symbols", "first", "last", "quarantined", "segments", "seconds"]))
    if sink is not None:
        print(f"\nencrypted segments under {sink.root} (list them: tinywindow data segments)")
    return 0


def cmd_segments(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli._tables import iso, table
    from tinywindow.crypto.store import EncryptedStore

    store = EncryptedStore.from_config(cfg.crypto, cfg.data_dir)
    rows = []
    for name in store.list(args.prefix):
        t = store.read(name)  # verifies the signature before decrypting anything
        ts = t.column("ts").cast(pa.int64()) if "ts" in t.column_names else None
        first = iso(pc.min(ts).as_py()) if ts is not None and len(ts) else "-"
        last = iso(pc.max(ts).as_py()) if ts is not None and len(ts) else "-"
        rows.append([name, t.num_rows, first, last])
    print(table(rows, ["segment", "rows", "first", "last"]))
    return 0
