"""gRPC feed throughput on loopback: bars/s received and validated by the client.

The server replays ``--symbols`` synthetic symbols (``tinywindow.data.sources.synthetic``)
at full speed from a child process on 127.0.0.1; the parent runs ``GrpcFeedSource.stream``
(decode, sequence checks, BARS validation, per-symbol continuity) and counts the rows it
yields.  The clock starts at the Subscribe call and stops when the stream ends; the
server's start-up (building and ordering the data) is not counted.  Each row is the median
of ``--repeat`` runs (fresh clients on one server) per ``--batch-rows`` value.  The floor is the same codec and validation without gRPC, in one
process: ``encode_batch`` -> ``decode_batch`` -> ``admit``.

    .venv/bin/python bench/feed.py [--symbols 500] [--bars 2520] [--batch-rows 256 4096 16384] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

GOAL_BARS_S = 1_000_000


def _serve(symbols: int, bars: int, batch_rows: int, port_q: Any, stop: Any) -> None:
    """The child process: a feed server over the synthetic panel until ``stop`` is set."""
    from tinywindow.data.feed.server import FeedServer
    from tinywindow.data.sources.synthetic import generate

    with FeedServer(
        generate(symbols, bars, seed=7), host="127.0.0.1", batch_rows=batch_rows
    ) as server:
        port_q.put(server.port)
        stop.wait()


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda r: r["bars_s"])[len(runs) // 2]


def grpc_loopback(symbols: int, bars: int, batch_rows: int, repeat: int = 3) -> dict[str, float]:
    from tinywindow.data.feed.client import GrpcFeedSource

    ctx = mp.get_context("spawn")
    port_q, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(symbols, bars, batch_rows, port_q, stop), daemon=True)
    proc.start()
    try:
        port = port_q.get(timeout=300)
        runs = []
        for _ in range(repeat):
            src = GrpcFeedSource("bench", f"127.0.0.1:{port}")
            t0 = time.perf_counter()
            rows = sum(t.num_rows for t in src.stream())
            took = time.perf_counter() - t0
            if rows != symbols * bars or src.last_seq != rows:
                raise SystemExit(
                    f"feed lost bars: got {rows} (last seq {src.last_seq}), expected {symbols * bars}"
                )
            runs.append({"rows": rows, "seconds": took, "bars_s": rows / took})
    finally:
        stop.set()
        proc.join(30)
    return _median(runs)


def in_process_floor(symbols: int, bars: int, batch_rows: int, repeat: int = 3) -> dict[str, float]:
    import numpy as np

    from tinywindow.data.base import admit, time_order
    from tinywindow.data.feed.codec import decode_batch, encode_batch
    from tinywindow.data.sources.synthetic import generate

    table = time_order(generate(symbols, bars, seed=7)).unify_dictionaries().combine_chunks()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = 0
        for lo in range(0, table.num_rows, batch_rows):
            part = table.slice(lo, batch_rows)
            seq = np.arange(lo + 1, lo + part.num_rows + 1, dtype=np.uint64)
            raw, _ = decode_batch(encode_batch(part, seq, lo + 1, lo + part.num_rows))
            rows += admit(raw, "bench")[0].num_rows
        took = time.perf_counter() - t0
        runs.append({"rows": rows, "seconds": took, "bars_s": rows / took})
    return _median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument(
        "--bars", type=int, default=2520, help="bars per symbol (2520: ten years of days)"
    )
    ap.add_argument("--batch-rows", type=int, nargs="+", default=[256, 4096, 16384])
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    args = ap.parse_args()

    rows: list[tuple[str, int, dict[str, float]]] = []
    for br in args.batch_rows:
        rows.append(
            (
                "gRPC loopback: FeedServer (child process) -> GrpcFeedSource.stream",
                br,
                grpc_loopback(args.symbols, args.bars, br, args.repeat),
            )
        )
    for br in args.batch_rows:
        rows.append(
            (
                "floor, one process: encode_batch -> decode_batch -> admit",
                br,
                in_process_floor(args.symbols, args.bars, br, args.repeat),
            )
        )

    print(
        f"feed: {args.symbols} symbols x {args.bars} bars = {args.symbols * args.bars:,} bars, "
        f"{os.cpu_count()} CPUs, goal >= {GOAL_BARS_S:,} bars/s end to end"
    )
    print(f"{'code path':<70} {'batch rows':>10} {'seconds':>8} {'bars/s':>12}")
    for name, br, r in rows:
        print(f"{name:<70} {br:>10} {r['seconds']:>8.2f} {r['bars_s']:>12,.0f}")
    grpc_rows = [(br, r) for name, br, r in rows if name.startswith("gRPC")]
    best_br, best = max(grpc_rows, key=lambda x: x[1]["bars_s"])
    floor = max(r["bars_s"] for name, _, r in rows if name.startswith("floor"))
    out = {
        "feed_bars_s": round(best["bars_s"]),
        "feed_batch_rows": best_br,
        "feed_bars": best["rows"],
        "symbols": args.symbols,
        "floor_in_process_bars_s": round(floor),
        "goal_bars_s": GOAL_BARS_S,
        "met": best["bars_s"] >= GOAL_BARS_S,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
