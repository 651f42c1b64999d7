"""Hand a ~100 MB table from a DataSourceActor to 3 readers: Arrow through the object store
(one copy, zero-copy readers) vs the same data as pickled pandas.

Both paths run in one Ray session: the actor holds 800 symbols x 2520 bars; each round asks
it for the history and has 3 reader actors consume it (sum a column).  Arrow: the actor
returns a Table (Ray stores it once), the driver passes the ObjectRef to the readers.
Pickled pandas: the actor returns ``pickle.dumps(frame)``, each reader ``pickle.loads`` it.

    python bench/handoff.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import time

os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pyarrow as pa
import ray

from actors.data_source import DataSourceActor
from tinywindow.cli._tables import table


class BenchSource(DataSourceActor):
    async def history_pickled(self) -> bytes:
        return pickle.dumps(self.bars.table().to_pandas(), protocol=pickle.HIGHEST_PROTOCOL)


@ray.remote(num_cpus=0)
class Reader:
    def read_arrow(self, t: pa.Table) -> float:
        import pyarrow.compute as pc

        return float(pc.sum(t.column("close")).as_py())

    def read_pickled(self, blob: bytes) -> float:
        return float(pickle.loads(blob)["close"].sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--symbols", type=int, default=800)
    args = ap.parse_args()
    ray.init("local", num_cpus=2, object_store_memory=2 * 1024**3, include_dashboard=False,
             logging_level="WARNING", log_to_driver=False)
    actor = ray.remote(BenchSource).options(num_cpus=0, max_concurrency=4).remote(
        {"name": "syn", "kind": "synthetic", "n_symbols": args.symbols, "n_bars": 2520}, {"cache_bytes": 0}
    )
    ray.get(actor.load.remote())
    readers = [Reader.remote() for _ in range(3)]
    ray.get([r.read_arrow.remote(ray.put(pa.table({"close": [1.0]}))) for r in readers])  # warm up
    nbytes = ray.get(actor.history.remote()).nbytes

    def arrow_round() -> float:
        t0 = time.perf_counter()
        ref = actor.history.remote()
        sums = ray.get([r.read_arrow.remote(ref) for r in readers])
        dt = time.perf_counter() - t0
        assert len(set(sums)) == 1
        del ref
        return dt

    def pickled_round() -> float:
        t0 = time.perf_counter()
        ref = actor.history_pickled.remote()
        sums = ray.get([r.read_pickled.remote(ref) for r in readers])
        dt = time.perf_counter() - t0
        assert len(set(sums)) == 1
        del ref
        return dt

    arrow = [arrow_round() for _ in range(args.rounds)]
    pickled = [pickled_round() for _ in range(args.rounds)]
    a, p = statistics.median(arrow), statistics.median(pickled)
    rows = [
        ["Arrow Table via object store", nbytes / 1e6, 3, a * 1000, min(arrow) * 1000],
        ["pickled pandas", nbytes / 1e6, 3, p * 1000, min(pickled) * 1000],
    ]
    print(f"Hand-off of {nbytes / 1e6:.0f} MB from a DataSourceActor to 3 readers, median of {args.rounds}")
    print(table(rows, ["path", "MB", "readers", "median ms", "best ms"]))
    print(f"\nArrow hand-off is {p / a:.1f}x faster")
    print(json.dumps({"handoff_speedup": round(p / a, 2), "arrow_ms": round(a * 1000, 1), "pickled_ms": round(p * 1000, 1)}))
    ray.shutdown()


if __name__ == "__main__":
    main()
