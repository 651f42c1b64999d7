"""A job for tests/cluster/test_job_submit.py: the library on a cluster started by `ray start`."""

from __future__ import annotations

import json

import ray

from actors.data_source import remote_data_source
from actors.runtime import connect
from tinywindow.config import Config


def main() -> None:
    connect(Config())  # attaches to the cluster in RAY_ADDRESS, set by the job supervisor
    actor = remote_data_source().remote({"name": "goog", "kind": "bundled", "datasets": ["goog"]})
    rows = ray.get(actor.load.remote())
    features = ray.get(actor.features_window.remote(5))
    print("RESULT " + json.dumps({
        "rows": rows,
        "feature_rows": features.num_rows,
        "nodes": len([n for n in ray.nodes() if n["Alive"]]),
        "auth": ray.get(ray.remote(lambda: __import__("os").environ.get("RAY_AUTH_MODE")).remote()),
    }))


if __name__ == "__main__":
    main()
