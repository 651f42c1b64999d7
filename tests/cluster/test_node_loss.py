"""Several Ray nodes on one machine (``ray.cluster_utils.Cluster``): losing the node a
DataSourceActor runs on restarts it on another node, where its start-up path restores the
history from the encrypted segments (shared storage)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.data_source import remote_data_source
from tests.raytools import COLD_START_S, poll, retry_once
from tinywindow.config import Config
from tinywindow.crypto.keystore import KeyStore
from tinywindow.data.persist import EncryptedSink

PASSPHRASE = "node loss test passphrase"


@ray.remote(num_cpus=0, resources={"data": 1})
class Slot:
    def ready(self) -> bool:
        return True


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A one-node ``Cluster`` (nodes are added by the test), its head started with a cold-start
    deadline and retried once; shut down whatever state it reached."""
    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=False)

    def start_head() -> None:
        c.add_node(num_cpus=1, resources={"data": 1}, include_dashboard=False)
        c.wait_for_nodes(timeout=COLD_START_S)
        ray.init(address=c.address, logging_level="WARNING", log_to_driver=False)

    def reset() -> None:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()

    try:
        retry_once(start_head, "the Cluster head node", cleanup=reset)
        yield c
    finally:
        reset()


def _poll(fn: Any, ok: Any, timeout_s: float = COLD_START_S) -> Any:
    return poll(fn, ok, timeout_s, "node-loss test condition", every_s=0.1)


def test_data_actor_survives_the_loss_of_its_node(cluster: Cluster, tmp_path: Path) -> None:
    worker = cluster.add_node(num_cpus=1, resources={"data": 1})
    cluster.wait_for_nodes(timeout=COLD_START_S)
    _poll(lambda: ray.available_resources().get("data", 0), lambda n: n >= 2)  # both schedulable
    # hold the head's "data" slot so the actor starts on the worker; released right after
    placeholder = Slot.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(cluster.head_node.node_id, soft=False)
    ).remote()
    ray.get(placeholder.ready.remote())
    cfg = Config().set("data_dir", str(tmp_path))
    KeyStore.init(cfg.path("keys"), PASSPHRASE, scrypt_log2_n=10)
    actor = remote_data_source(
        max_restarts=2, resources={"data": 1}, runtime_env={"env_vars": {"TW_PASSPHRASE": PASSPHRASE}},
    ).remote({"name": "nasdaq", "kind": "bundled", "datasets": ["nasdaq"]}, {"segment_rows": 2000},
             EncryptedSink.from_config(cfg.crypto, cfg.data_dir))
    assert ray.get(actor.load.remote()) == 5031
    ray.get(actor.flush.remote())
    first = ray.get(actor.describe.remote())
    assert first["node"] == worker.node_id
    ray.kill(placeholder)
    before = ray.get(actor.history.remote())

    cluster.remove_node(worker)  # the node is gone, with the actor's process and memory

    def state() -> dict[str, Any] | None:
        try:
            return ray.get(actor.describe.remote(), timeout=10)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return None

    after = _poll(state, lambda d: d is not None and d["node"] != worker.node_id)
    assert after["restored"] == {"segments": 3, "rows": 5031, "refused": []}
    assert ray.get(actor.history.remote()).equals(before)
    ray.kill(actor)
