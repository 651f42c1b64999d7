"""Ray Serve: one deployment per agent model behind an authenticated HTTP + gRPC gateway.

* ``AgentModel`` loads a *signed* version from the model registry (a tampered or unsigned one
  is refused) and answers with ``@serve.batch``: requests arriving together share one
  forward pass.  ``user_config = {"version": ...}`` hot-swaps the model in place: the new
  version is loaded and verified beside the old one, then a single reference assignment
  switches to it, so no request fails during a swap; every vote names the version that made
  it.
* ``Gateway`` (``actors/gateway.py``) is the authenticated HTTP + gRPC ingress.
* ``build_app`` / ``deploy_config`` / ``start`` / ``swap`` / ``promote`` build and run the
  application from one declarative Serve config (the same document a RayService uses).
  ``swap`` verifies every requested version's signed manifest through the registry
  *before* it changes anything: a tampered version raises ``IntegrityError`` and the
  running app keeps serving what it served.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pyarrow as pa
from ray import serve

from actors.gateway import ARROW_STREAM, Gateway
from tinywindow.config import Config
from tinywindow.config.placement import placement
from tinywindow.contracts import symbol_codes
from tinywindow.core.log import get_logger
from tinywindow.errors import IntegrityError, ModelError, TinyWindowError
from tinywindow.models.predictor import BATCH_ROWS, Predictor
from tinywindow.models.windows import WindowIndex
from tinywindow.serving.limits import GatewayLimits, serving_limits
from tinywindow.serving.payload import from_ipc, to_ipc

log = get_logger("serving")
APP_NAME = "tinywindow"
_batch: Any = serve.batch  # its typing does not model methods with several batched arguments
__all__ = [
    "APP_NAME", "ARROW_STREAM", "AgentModel", "Gateway", "build_app", "deploy_config", "promote", "shutdown", "start",
    "swap", "verify_versions",
]


# ---------------------------------------------------------------------------- models


class AgentModel:
    """One agent's model: a verified registry version, batched inference, hot swaps."""

    def __init__(
        self,
        agent: str,
        registry_root: str,
        keystore_dir: str,
        max_batch_size: int = 64,
        batch_wait_timeout_s: float = 0.002,
        torch_threads: int = 1,
        passphrase_env: str = "TW_PASSPHRASE",
    ) -> None:
        import os

        from tinywindow.core.log import register_secret
        from tinywindow.crypto.keystore import KeyStore
        from tinywindow.models.registry import ModelRegistry

        try:
            import torch

            torch.set_num_threads(torch_threads)
        except ImportError:  # pragma: no cover - torch is a hard dependency
            pass
        self.agent = agent
        # model files are encrypted (issue 12): loading decrypts, so the replica opens the
        # keystore with the passphrase its node was started with (README: cluster steps)
        secret = os.environ.get(passphrase_env, "")
        if secret:
            register_secret(secret)
        keys = KeyStore.open(keystore_dir, secret) if secret else KeyStore.public_ring(keystore_dir)
        self.registry = ModelRegistry(registry_root, keys)
        self.predictor: Predictor | None = None
        self.swap_error: str | None = None
        self.swaps = 0
        self.predict_batch.set_max_batch_size(max_batch_size)
        self.predict_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Load ``user_config["version"]`` (None: the latest) and switch to it.

        A version that fails verification is refused: the replica keeps serving the model
        it has and reports the refusal in ``status()``; with no model at all it fails.
        """
        version = (user_config or {}).get("version")
        try:
            new = self.registry.load(self.agent, version)
        except TinyWindowError as exc:
            self.swap_error = f"{type(exc).__name__}: {exc}"
            log.error("%s: refused version %s: %s", self.agent, version, exc)
            if self.predictor is None:
                raise
            return
        self.predictor, self.swap_error = new, None  # one reference swap: atomic for requests
        self.swaps += 1
        log.info("%s: serving version %s", self.agent, new.version)

    def status(self) -> dict[str, Any]:
        p = self.predictor
        return {
            "agent": self.agent,
            "version": p.version if p else None,
            "status": "ok" if p and not self.swap_error else ("refused" if self.swap_error else "loading"),
            "swap_error": self.swap_error,
            "swaps": self.swaps,
        }

    @_batch(max_batch_size=64, batch_wait_timeout_s=0.002)
    async def predict_batch(self, tables: list[pa.Table], latest: list[bool]) -> list[pa.Table]:
        """One window build and one forward pass for every request that arrived together."""
        p = self.predictor  # one version for the whole batch, even if a swap lands meanwhile
        if p is None:
            raise ModelError(f"agent {self.agent!r} has no model loaded")
        out: list[pa.Table | None] = [None] * len(tables)
        for flag in sorted(set(latest)):
            picked = [k for k, lo in enumerate(latest) if lo == flag]
            for k, votes in zip(picked, batched_votes(p, [tables[k] for k in picked], flag), strict=True):
                out[k] = votes
        return [v for v in out if v is not None]

    async def predict(self, features: pa.Table, latest_only: bool = False) -> pa.Table:
        """VOTES for a FEATURES table (see ``Predictor.predict``)."""
        result: pa.Table = await self.predict_batch(features, latest_only)
        return result

    async def predict_ipc(self, features: bytes, latest_only: bool = False) -> bytes:
        """``predict`` with both tables as Arrow IPC bytes: the fast path for small requests."""
        return to_ipc(await self.predict(from_ipc(features), latest_only))

    async def explain_ipc(self, features: bytes, keys: list[tuple[str, int]], top_k: int = 5) -> bytes:
        """EXPLANATIONS (Arrow IPC) of this replica's votes on the (symbol, ts_ns) ``keys``
        rows of ``features`` (``tinywindow.models.explain``), off the event loop."""
        import asyncio

        from tinywindow.models.explain import explain

        p = self.predictor
        if p is None:
            raise ModelError(f"agent {self.agent!r} has no model loaded")
        table = from_ipc(features)
        return to_ipc(await asyncio.to_thread(explain, p, table, [(str(s), int(t)) for s, t in keys], top_k))


def batched_votes(p: Predictor, tables: list[pa.Table], latest_only: bool) -> list[pa.Table]:
    """VOTES for several requests at the cost of one: the requests are concatenated with
    each (request, symbol) pair as its own series, windows are built and scored once, and
    the votes are split back per request.  Equal to ``p.predict`` on each table alone.  A
    cross-sectional model votes on each request alone: its features are ranked across the
    request's symbols, and a ranker's votes depend on the other symbols of the bar."""
    if len(tables) == 1 or p.ranks_across_symbols or p.model_config.get("cross_sectional"):
        return [p.predict(t, latest_only=latest_only) for t in tables]
    keys = ["symbol", "ts", *p.normalizer.names]
    sizes = np.array([t.num_rows for t in tables])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    codes = [symbol_codes(t) for t in tables]
    width = max((int(c.max()) + 1 for c in codes if len(c)), default=1)
    group = np.concatenate([c + k * width for k, c in enumerate(codes)]).astype(np.int32)
    combined = pa.concat_tables([t.select(keys) for t in tables]).combine_chunks()
    grouped = combined.set_column(
        0, "symbol", pa.DictionaryArray.from_arrays(pa.array(group), pa.array(np.arange(width * len(tables), dtype=np.int32)))
    )
    index = WindowIndex.build(grouped, p.normalizer, p.window, latest_only)
    probs = np.empty((len(index), 3), dtype=np.float32)
    for lo in range(0, len(index), BATCH_ROWS):
        hi = min(lo + BATCH_ROWS, len(index))
        probs[lo:hi] = p.probabilities(index.batch(lo, hi))
    votes = p.votes(combined, index.rows, probs)  # rows ascending: request by request
    cuts = np.searchsorted(np.sort(index.rows), offsets)
    return [votes.slice(int(a), int(b - a)) for a, b in itertools.pairwise(cuts)]


# ---------------------------------------------------------------------------- building

# Requests pass through the proxy as bytes; the gateway parses them (INVALID_ARGUMENT, not UNKNOWN).
GRPC_SERVICER = "tinywindow.serving.grpc_service.add_tinywindow_servicer"


def model_deployment_name(agent: str) -> str:
    return f"model-{agent}"


def build_app(
    cfg: Config,
    agents: list[str],
    token_digest: str,
    versions: dict[str, str | None] | None = None,
    limits: GatewayLimits | None = None,
) -> Any:
    """The Serve application: one AgentModel deployment per agent plus the Gateway."""
    from tinywindow.crypto import keystore_dir
    from tinywindow.models.registry import registry_root

    s = cfg.serving
    versions = versions or {}
    autoscaling = {
        "min_replicas": s.min_replicas,
        "max_replicas": max(s.max_replicas, s.min_replicas, 1),
        "initial_replicas": max(s.min_replicas, 1),
        "target_ongoing_requests": max(2, s.max_batch_size // 2),
    }
    def model_args(agent: str) -> tuple[Any, ...]:
        return (agent, str(registry_root(cfg.agents, cfg.data_dir)), str(keystore_dir(cfg.crypto, cfg.data_dir)), s.max_batch_size, s.batch_wait_timeout_s, 1, cfg.crypto.passphrase_env)

    deployment: Any = serve.deployment
    models = {
        agent: deployment(AgentModel)
        .options(
            name=model_deployment_name(agent),
            ray_actor_options=placement(s.replica_cpus, s.replica_resources),
            autoscaling_config=autoscaling,
            max_ongoing_requests=max(s.max_batch_size * 2, 16),
            logging_config={"enable_access_log": False},  # internal hop: the gateway logs requests
            user_config={"version": versions.get(agent)},
            health_check_period_s=5,
        )
        .bind(*model_args(agent))
        for agent in agents
    }
    limits = limits or serving_limits(s)
    gateway_args = (token_digest, s.max_request_bytes, cfg.consensus.model_dump(), limits.model_dump())
    gateway = deployment(Gateway).options(
        name="gateway",
        ray_actor_options=placement(s.replica_cpus, s.replica_resources),
        max_ongoing_requests=256,
    )
    return gateway.bind(models, *gateway_args)


def app_builder(args: dict[str, Any]) -> Any:
    """Serve's ``import_path`` entry (``actors.serving:app_builder``): the application from
    the JSON args of a Serve config (see ``deploy_config``).

    Without ``token_digest`` in the args (a committed RayService manifest), the token comes
    from ``TW_SERVING__TOKEN`` in the cluster's environment (a Kubernetes Secret).
    """
    from tinywindow.config import build
    from tinywindow.serving.auth import serving_token, token_digest

    cfg = build(args.get("config", {}))
    digest = args.get("token_digest") or token_digest(serving_token(cfg.serving))
    limits = GatewayLimits(**args["limits"]) if "limits" in args else None
    return build_app(cfg, list(args["agents"]), str(digest), limits=limits)


def deploy_config(
    cfg: Config,
    agents: list[str],
    token_digest: str | None,
    versions: dict[str, str | None] | None = None,
    limits: GatewayLimits | None = None,
) -> dict[str, Any]:
    """The declarative Serve config (``ServeDeploySchema``) of the whole app.

    The same document runs locally (``start``/``swap``), under ``serve deploy`` and in a
    KubeRay RayService (``serveConfigV2``).  Only the token's digest travels in it.  A new
    model version changes nothing but a deployment's ``user_config``, so Serve reconfigures
    the running replicas in place.  ``limits`` overrides ``serving.limits`` (pass the same
    value to every later ``swap``: a change restarts the gateway).
    """
    versions = versions or {}
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": cfg.serving.host, "port": cfg.serving.http_port},
        "grpc_options": {"port": cfg.serving.grpc_port, "grpc_servicer_functions": [GRPC_SERVICER]},
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": "actors.serving:app_builder",
                "args": {
                    "agents": list(agents),
                    **({"token_digest": token_digest} if token_digest else {}),
                    **({"limits": limits.model_dump()} if limits is not None else {}),
                    "config": cfg.model_dump(mode="json", exclude={"serving": {"token"}}),
                },
                "deployments": [
                    {"name": model_deployment_name(a), "user_config": {"version": versions.get(a)}}
                    for a in agents
                ],
            }
        ],
    }


def apply(config: dict[str, Any], timeout_s: float = 120.0) -> None:
    """Deploy a ``deploy_config`` document and wait until the app is RUNNING."""
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    client = _get_global_client()
    if client is None:
        raise ModelError("Serve is not running (call start() first)")
    client.deploy_apps(ServeDeploySchema.model_validate(config))
    deadline = time.monotonic() + timeout_s
    while True:
        status = serve.status().applications.get(APP_NAME)
        state = str(status.status) if status else "NOT_STARTED"
        if state.endswith("RUNNING"):
            return
        if state.endswith("DEPLOY_FAILED") or time.monotonic() > deadline:
            detail = status.message if status else ""
            raise ModelError(f"serving app {APP_NAME!r} is {state}: {detail}")
        time.sleep(0.2)


def start_proxies(cfg: Config) -> None:
    """Start Serve's proxies on the configured host and ports (before any app is deployed:
    Serve keeps the options of its first start)."""
    from ray.serve.config import gRPCOptions

    serve.start(
        http_options={"host": cfg.serving.host, "port": cfg.serving.http_port},
        grpc_options=gRPCOptions(port=cfg.serving.grpc_port, grpc_servicer_functions=[GRPC_SERVICER]),
    )


def start(
    cfg: Config,
    agents: list[str],
    token_digest: str,
    versions: dict[str, str | None] | None = None,
    limits: GatewayLimits | None = None,
) -> dict[str, Any]:
    """Start Serve (HTTP on ``serving.host``, gRPC on ``serving.grpc_port``) and deploy."""
    start_proxies(cfg)
    t0 = time.perf_counter()
    config = deploy_config(cfg, agents, token_digest, versions, limits)
    apply(config)
    log.info("serving %s in %.1fs", ", ".join(agents), time.perf_counter() - t0)
    return config


def shutdown(timeout_s: float = 30.0) -> None:
    """Delete every app and stop Serve's actors, leaving no call waiting on the controller.

    ``serve.shutdown()`` blocks in ``ServeController.graceful_shutdown`` until the controller
    ``ray.kill``s itself; the controller runs with ``max_task_retries=-1``, so Ray 2.60 reports
    that in-flight call to the driver as "Task ServeController.graceful_shutdown failed ...
    will be retried ... killed by `ray.kill`".  Here the controller is asked to shut down
    without waiting and its exit is observed through the GCS (its name is released), not
    through a call on it.  Stop the actors holding deployment handles first: each handle's
    long poll is another pending ``ServeController.listen_for_change`` call.  Falls back to
    ``serve.shutdown()`` if the controller has not exited within ``timeout_s``.
    """
    import ray
    from ray.serve import context
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:  # Serve is not running
        context._disconnect()
        return
    client = context._get_global_client()
    if client is not None:
        client.shutdown_cached_handles()
    ray.get(controller.graceful_shutdown.remote(False), timeout=timeout_s)  # wait=False: returns at once
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        except ValueError:  # the controller has exited
            context._disconnect()
            return
        time.sleep(0.1)
    log.warning("Serve controller still running %.0fs after shutdown was requested: serve.shutdown()", timeout_s)
    serve.shutdown()


def promote(agent: str, version: str, app: str = APP_NAME, timeout_s: float = 120.0) -> None:
    """Put ``version`` live for ``agent`` on the running app, from anywhere in the cluster.

    Reads the deployed Serve config back from the controller, changes that one
    deployment's ``user_config`` and redeploys it: the replicas reconfigure in place.
    """
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeInstanceDetails

    client = _get_global_client()
    if client is None:
        raise ModelError("Serve is not running")
    details = ServeInstanceDetails(**client.get_serve_details())
    target = model_deployment_name(agent)
    applications = []
    found = False
    for name, info in details.applications.items():
        if info.deployed_app_config is None:
            raise ModelError(f"app {name!r} was not deployed from a config; cannot promote")
        doc = info.deployed_app_config.model_dump(mode="json", exclude_unset=True)
        if name == app:
            for d in doc.get("deployments", []):
                if d.get("name") == target:
                    d["user_config"] = {"version": version}
                    found = True
        applications.append(doc)
    if not found:
        raise ModelError(f"no deployment {target!r} in Serve app {app!r}")
    config = {
        "proxy_location": str(details.proxy_location.value) if details.proxy_location else "HeadOnly",
        "http_options": details.http_options.model_dump(mode="json", exclude_unset=True) if details.http_options else {},
        "grpc_options": details.grpc_options.model_dump(mode="json", exclude_unset=True) if details.grpc_options else {},
        "applications": applications,
    }
    apply(config, timeout_s)


def verify_versions(cfg: Config, versions: dict[str, str | None]) -> dict[str, str]:
    """Verify each requested version (None: the newest) through the registry, as the
    replicas will; returns the resolved names.  Raises ``IntegrityError`` (tampered,
    unsigned) or ``ModelError`` (missing) saying the swap was refused."""
    from tinywindow.models.registry import ModelRegistry

    registry = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, read_only=True)
    resolved: dict[str, str] = {}
    for agent, version in versions.items():
        try:
            resolved[agent] = str(registry.metadata(agent, version)["version"])
        except IntegrityError as exc:
            raise IntegrityError(f"swap refused, the running app is unchanged: {exc}") from None
        except ModelError as exc:
            raise ModelError(f"swap refused, the running app is unchanged: {exc}") from None
    return resolved


def live_status(agents: list[str], app: str = APP_NAME) -> dict[str, dict[str, Any]]:
    """Each agent's ``AgentModel.status()`` (from one of its replicas)."""
    return {
        a: serve.get_deployment_handle(model_deployment_name(a), app).status.remote().result(timeout_s=30)
        for a in agents
    }


def swap(
    cfg: Config,
    agents: list[str],
    token_digest: str,
    versions: dict[str, str | None],
    limits: GatewayLimits | None = None,
) -> dict[str, Any]:
    """Put new model versions live: only ``user_config`` changes, so replicas reconfigure in
    place and requests keep flowing.

    Every version is verified first (``verify_versions``): a refused one raises before the
    app is touched.  Should the replicas still refuse one (their registry differs from
    this process's), the previous versions are put back and ``IntegrityError`` raised.
    """
    verify_versions(cfg, versions)
    before = {a: s["version"] for a, s in live_status(agents).items()}
    config = deploy_config(cfg, agents, token_digest, versions, limits)
    apply(config)
    refused = {
        a: s for a, s in live_status(agents).items() if versions.get(a) and s["version"] != versions[a]
    }
    if refused:
        apply(deploy_config(cfg, agents, token_digest, {**versions, **{a: before[a] for a in refused}}, limits))
        detail = "; ".join(f"{a} {versions[a]}: {s['swap_error']}" for a, s in refused.items())
        raise IntegrityError(f"swap refused by the replicas, previous versions kept: {detail}")
    return config
