"""The served TinyWindow app for tests on loopback: a module-scoped fixture factory shared by
tests/ray/test_serving.py and tests/hostile/test_gateway.py (one Serve start per module).

Ports: Serve cannot report a port it picked itself (``port=0``), so the ports are chosen
here.  Bind-then-release of port 0 races (the kernel hands the same ephemeral port to the
next caller), so candidates come from below the ephemeral range, and a start whose proxies
do not answer on them (a port taken meanwhile) is retried on new ports, up to 3 times.
"""

from __future__ import annotations

import math
import os
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from ray import serve

from actors import serving
from actors.training.train import train_agent
from tinywindow.config import Config
from tinywindow.crypto.keystore import KeyStore
from tinywindow.data import features as F
from tinywindow.data.sources.synthetic import generate
from tinywindow.models.registry import ModelRegistry
from tinywindow.serving import votes_pb2_grpc as pb_grpc
from tinywindow.serving.auth import token_digest
from tinywindow.serving.limits import GatewayLimits

TOKEN = "test-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PASSPHRASE = "serving test passphrase"
os.environ.setdefault("TW_PASSPHRASE", PASSPHRASE)  # replicas inherit it when the test cluster starts
TINY_PPO = {"iterations": 1, "train_batch": 256, "minibatch": 64, "epochs": 1, "num_envs": 2, "episode_len": 64}
START_ATTEMPTS = 3
_PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range (32768-60999)


@dataclass
class Served:
    cfg: Config
    registry: ModelRegistry
    features: pa.Table
    versions: dict[str, list[str]]
    http: httpx.Client
    grpc_stub: pb_grpc.TinyWindowStub
    agents: list[str]
    channel: grpc.Channel
    limits: GatewayLimits | None = None
    ports: list[tuple[int, int]] = field(default_factory=list)  # every (http, grpc) pair tried

    def columns(self, table: pa.Table | None = None) -> dict[str, list[Any]]:
        """A FEATURES table as the columnar JSON the API takes."""
        t = self.window() if table is None else table
        cols: dict[str, list[Any]] = {"symbol": [str(s) for s in t.column("symbol").to_pylist()],
                                      "ts": t.column("ts").cast(pa.int64()).to_pylist()}
        for name in F.FEATURE_NAMES:
            cols[name] = [None if (v is None or math.isnan(v)) else v for v in t.column(name).to_pylist()]
        return cols

    def window(self, rows: int = 40) -> pa.Table:
        """The newest ``rows`` feature rows of every symbol."""
        from tinywindow.contracts import symbol_codes
        from tinywindow.data.history import tail_indices

        return self.features.take(pa.array(tail_indices(symbol_codes(self.features), rows)))

    def swap(self, versions: dict[str, str | None]) -> None:
        """``serving.swap``: versions are verified first (a refused one raises)."""
        serving.swap(self.cfg, self.agents, token_digest(TOKEN), versions, self.limits)

    def push_unverified(self, versions: dict[str, str | None]) -> None:
        """Put versions in the deployed Serve config without the driver's check, as a
        hand-edited ``serve deploy`` / RayService manifest would: the replicas' own check
        is what stands."""
        serving.apply(serving.deploy_config(self.cfg, self.agents, token_digest(TOKEN), versions, self.limits))


def ipc_bytes(table: pa.Table, compression: str | None = None, max_chunksize: int | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(compression=compression)) as w:
        w.write_table(table, max_chunksize=max_chunksize)
    return bytes(sink.getvalue().to_pybytes())


def _bindable(port: int) -> bool:
    for host in ("127.0.0.1", ""):  # Serve's gRPC server listens on every interface
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def pick_ports(rng: random.Random, n: int = 2) -> list[int]:
    """``n`` distinct ports that are bindable now, from below the ephemeral range."""
    out: list[int] = []
    while len(out) < n:
        port = rng.randrange(*_PORT_RANGE)
        if port not in out and _bindable(port):
            out.append(port)
    return out


def _answers(cfg: Config, agents: list[str], timeout_s: float) -> str | None:
    """None when both proxies answer as this app within ``timeout_s``, else why not."""
    deadline = time.monotonic() + timeout_s
    why = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"http://127.0.0.1:{cfg.serving.http_port}/healthz", timeout=2)
            if r.status_code == 200 and r.json().get("agents") == sorted(agents):
                break
            why = f"HTTP port {cfg.serving.http_port} answered {r.status_code} {r.text[:100]}"
        except (httpx.HTTPError, ValueError) as exc:
            why = f"HTTP port {cfg.serving.http_port}: {exc!r}"
        time.sleep(0.2)
    else:
        return why
    with grpc.insecure_channel(f"127.0.0.1:{cfg.serving.grpc_port}") as ch:
        try:
            grpc.channel_ready_future(ch).result(timeout=max(deadline - time.monotonic(), 1.0))
        except grpc.FutureTimeoutError:
            return f"gRPC port {cfg.serving.grpc_port} not ready"
    return None


def start_serving(
    cfg: Config,
    agents: list[str],
    versions: dict[str, str | None],
    limits: GatewayLimits | None = None,
    attempts: int = START_ATTEMPTS,
    seed: int | None = None,
) -> tuple[Config, list[tuple[int, int]]]:
    """``serving.start`` on fresh ports, retried on new ones when the proxies do not answer
    (a port taken between the pick and Serve's bind); returns the config and ports tried."""
    rng = random.Random(seed)
    tried: list[tuple[int, int]] = []
    failures: list[str] = []
    for _attempt in range(attempts):
        http_port, grpc_port = pick_ports(rng)
        tried.append((http_port, grpc_port))
        run_cfg = cfg.set("serving.http_port", http_port).set("serving.grpc_port", grpc_port)
        try:
            serving.start(run_cfg, agents, token_digest(TOKEN), versions, limits)
            why = _answers(run_cfg, agents, timeout_s=60)
        except Exception as exc:  # any start failure is reported with every attempt below
            why = repr(exc)
        if why is None:
            return run_cfg, tried
        failures.append(f"ports http={http_port} grpc={grpc_port}: {why}")
        serve.shutdown()  # Serve keeps the options of its first start: begin again
    raise RuntimeError(
        f"the serving test app did not start after {attempts} attempts on fresh ports "
        f"(a port conflict each time?): " + "; ".join(failures)
    )


def build_served(
    root: Path,
    agents: list[str],
    *,
    xgboost_versions: int = 2,
    limits: GatewayLimits | None = None,
    max_request_bytes: int = 256 * 1024,
) -> Served:
    """Train small signed versions, start Serve with the first of each, connect clients."""
    cfg = (
        Config()
        .set("data_dir", str(root))
        .set("agents.window", 8)
        .set("agents.valid_bars", 60)
        .set("agents.xgb_rounds", 20)
        .set("serving.max_replicas", 1)
        .set("serving.max_request_bytes", max_request_bytes)
    )
    keys = KeyStore.init(cfg.path("keys"), PASSPHRASE, scrypt_log2_n=10)
    registry = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, keys)
    features = F.compute(generate(4, 400, seed=5))
    versions: dict[str, list[str]] = {a: [] for a in agents}
    if "xgboost" in agents:
        for seed in range(1, xgboost_versions + 1):
            versions["xgboost"].append(str(train_agent("xgboost", features, cfg, registry=registry, seed=seed).version))
    if "lstm" in agents:
        versions["lstm"].append(str(train_agent("lstm", features, cfg, registry=registry, overrides=TINY_PPO).version))
    first: dict[str, str | None] = {a: v[0] for a, v in versions.items() if v}
    cfg, tried = start_serving(cfg, agents, first, limits)
    http = httpx.Client(base_url=f"http://127.0.0.1:{cfg.serving.http_port}", timeout=30)
    channel = grpc.insecure_channel(f"127.0.0.1:{cfg.serving.grpc_port}")
    return Served(cfg, registry, features, versions, http, pb_grpc.TinyWindowStub(channel), agents, channel, limits, tried)


def served_fixture(agents: list[str], **kwargs: Any) -> Callable[..., Iterator[Served]]:
    """A module-scoped ``served`` fixture (needs ``ray_cluster``); assign it to ``served``."""

    @pytest.fixture(scope="module")
    def served(tmp_path_factory: pytest.TempPathFactory, _ray_session: None) -> Iterator[Served]:
        import ray

        if not ray.is_initialized():  # a multi-node test shut the session cluster down
            from tests.conftest import _start_local_ray

            _start_local_ray()
        app = build_served(tmp_path_factory.mktemp("serving"), list(agents), **kwargs)
        try:
            yield app
        finally:
            app.http.close()
            app.channel.close()
            serve.shutdown()

    return served
