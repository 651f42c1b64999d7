"""Ray Serve: one deployment per agent model behind an authenticated HTTP + gRPC gateway.

* ``AgentModel`` loads a *signed* version from the model registry (a tampered or unsigned one
  is refused) and answers with ``@serve.batch``: requests arriving together share one
  forward pass.  ``user_config = {"version": ...}`` hot-swaps the model in place: the new
  version is loaded and verified beside the old one, then a single reference assignment
  switches to it, so no request fails during a swap; every vote names the version that made
  it.
* ``Gateway`` is the ingress: HTTP (FastAPI; ``POST /v1/votes``, ``POST /v1/signal``,
  ``GET /v1/models``, ``GET /healthz``, OpenAPI at ``/openapi.json``) and gRPC (the
  ``TinyWindow`` service of ``tinywindow/serving/votes.proto``).  Both require the bearer
  token; bodies are size-limited; a bad payload gets 400 / INVALID_ARGUMENT naming the field.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
# runtime, and Serve's ingress wrapper re-binds them outside this module's globals.

import asyncio
import itertools
import json
import time
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from tinywindow.agents.data import WindowIndex
from tinywindow.agents.predictor import BATCH_ROWS, Predictor
from tinywindow.config import Config, ConsensusConfig
from tinywindow.errors import ModelError, TinyWindowError
from tinywindow.log import get_logger
from tinywindow.schema import VOTES, symbol_codes
from tinywindow.serving import votes_pb2 as pb
from tinywindow.serving.auth import bearer_ok
from tinywindow.serving.payload import (
    PayloadError,
    features_from_columns,
    features_from_ipc,
    features_from_rows,
    from_ipc,
    records,
    to_ipc,
)

log = get_logger("serving")
APP_NAME = "tinywindow"
_batch: Any = serve.batch  # its typing does not model methods with several batched arguments
ARROW_STREAM = "application/vnd.apache.arrow.stream"


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
    ) -> None:
        from tinywindow.agents.registry import ModelRegistry
        from tinywindow.crypto.keystore import KeyStore

        try:
            import torch

            torch.set_num_threads(torch_threads)
        except ImportError:  # pragma: no cover - torch is a hard dependency
            pass
        self.agent = agent
        self.registry = ModelRegistry(registry_root, KeyStore.public_ring(keystore_dir))
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


def batched_votes(p: Predictor, tables: list[pa.Table], latest_only: bool) -> list[pa.Table]:
    """VOTES for several requests at the cost of one: the requests are concatenated with
    each (request, symbol) pair as its own series, windows are built and scored once, and
    the votes are split back per request.  Equal to ``p.predict`` on each table alone."""
    if len(tables) == 1:
        return [p.predict(tables[0], latest_only=latest_only)]
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


# ---------------------------------------------------------------------------- gateway

api = FastAPI(
    title="TinyWindow",
    version="1",
    description="Per-agent votes and consensus signals. Every /v1 route needs `Authorization: Bearer <token>`.",
)


class VotesBody(BaseModel):
    """A votes/signal request: FEATURES as columns (nulls for missing values)."""

    model_config = ConfigDict(extra="forbid")
    agent: str | None = Field(default=None, description="one agent, or all when omitted")
    latest_only: bool = Field(default=False, description="vote only on each symbol's newest row")
    features: dict[str, list[Any]] = Field(
        description='columns: "symbol", "ts" (ISO-8601 with offset, or ns since epoch) and every feature'
    )


def _error(status: int, message: str, field: str | None = None, row: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    if row is not None:
        body["row"] = row
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


@api.exception_handler(RequestValidationError)
async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", []) if p != "body"]
    return _error(400, err.get("msg", "invalid request"), ".".join(loc) or "body")


@api.exception_handler(PayloadError)
async def _bad_payload(request: Request, exc: PayloadError) -> JSONResponse:
    return _error(400, exc.reason, exc.field, exc.row)


@api.exception_handler(ModelError)
async def _no_model(request: Request, exc: ModelError) -> JSONResponse:
    return _error(503, str(exc))


class Guard:
    """Pure ASGI middleware for /v1 routes: bearer token first, then a bounded body read (413
    past ``max_request_bytes``, whatever Content-Length claims); the app then reads the
    buffered body.  Cheaper than Starlette's BaseHTTPMiddleware on every request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state  # the app instance Serve runs (a copy of ``api``)
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if not bearer_ok(auth, state.token_digest):
            await _error(401, "missing or invalid bearer token")(scope, receive, send)
            return
        limit = state.max_request_bytes
        declared = headers.get(b"content-length", b"0").decode("latin-1")
        if not declared.isdigit() or int(declared) > limit:
            await _error(413, f"request body over {limit} bytes")(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                await _error(413, f"request body over {limit} bytes")(scope, receive, send)
                return
        body, delivered = b"".join(chunks), False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


api.add_middleware(Guard)


@serve.ingress(api)
class Gateway:
    """HTTP + gRPC ingress in front of the AgentModel deployments."""

    def __init__(
        self,
        models: dict[str, DeploymentHandle],
        token_digest: str,
        max_request_bytes: int,
        consensus: dict[str, Any],
    ) -> None:
        self.models = models
        self.token_digest = token_digest
        self.consensus = ConsensusConfig(**consensus)
        api.state.token_digest = token_digest
        api.state.max_request_bytes = max_request_bytes
        self.max_request_bytes = max_request_bytes

    # ------------------------------------------------------------------ shared
    def _agents(self, agent: str | None) -> list[str]:
        if agent is None or agent == "":
            return sorted(self.models)
        if agent not in self.models:
            raise PayloadError("agent", f"unknown agent {agent!r} (serving: {', '.join(sorted(self.models))})")
        return [agent]

    async def _votes(self, features: pa.Table, agent: str | None, latest_only: bool) -> pa.Table:
        names = self._agents(agent)
        payload = to_ipc(features)
        results = await asyncio.gather(*(self.models[a].predict_ipc.remote(payload, latest_only) for a in names))
        return pa.concat_tables([from_ipc(r) for r in results]) if results else VOTES.empty_table()

    def _signal(self, votes: pa.Table) -> pa.Table:
        from tinywindow.consensus import decide

        if votes.num_rows == 0:
            from tinywindow.schema import SIGNALS

            return SIGNALS.empty_table()
        at_ns = int(votes.column("ts").cast(pa.int64()).to_numpy().max())
        signals, _used = decide(votes, at_ns, sorted(self.models), {}, self.consensus)
        return signals

    async def _models(self) -> list[dict[str, Any]]:
        statuses = await asyncio.gather(*(h.status.remote() for h in self.models.values()))
        return list(statuses)

    # ------------------------------------------------------------------ HTTP
    @api.get("/healthz")
    async def healthz(self) -> dict[str, Any]:
        return {"status": "ok", "agents": sorted(self.models)}

    @api.get("/v1/models")
    async def models_http(self) -> dict[str, Any]:
        return {"models": await self._models()}

    async def _features(self, request: Request) -> tuple[pa.Table, str | None, bool]:
        body = await request.body()
        if request.headers.get("content-type", "").startswith(ARROW_STREAM):
            agent = request.query_params.get("agent")
            latest = request.query_params.get("latest_only", "false").lower() in ("1", "true", "yes")
            return features_from_ipc(body), agent, latest
        try:
            raw = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PayloadError("body", f"not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise PayloadError("body", "must be a JSON object")
        try:
            parsed = VotesBody.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise PayloadError(".".join(str(p) for p in err["loc"]) or "body", err["msg"]) from None
        return features_from_columns(parsed.features), parsed.agent, parsed.latest_only

    @api.post("/v1/votes", openapi_extra={"requestBody": {"content": {"application/json": {"schema": VotesBody.model_json_schema()}}}})
    async def votes_http(self, request: Request) -> dict[str, Any]:
        features, agent, latest = await self._features(request)
        votes = await self._votes(features, agent, latest)
        return {"votes": records(votes)}

    @api.post("/v1/signal", openapi_extra={"requestBody": {"content": {"application/json": {"schema": VotesBody.model_json_schema()}}}})
    async def signal_http(self, request: Request) -> dict[str, Any]:
        features, agent, latest = await self._features(request)
        votes = await self._votes(features, agent, latest)
        return {"votes": records(votes), "signals": records(self._signal(votes))}

    # ------------------------------------------------------------------ gRPC
    def _grpc_denied(self, grpc_context: Any) -> bool:
        md = dict(grpc_context.invocation_metadata())
        if bearer_ok(md.get("authorization"), self.token_digest):
            return False
        grpc_context.set_code(grpc.StatusCode.UNAUTHENTICATED)
        grpc_context.set_details("missing or invalid bearer token")
        return True

    def _grpc_features(self, request: pb.VotesRequest) -> pa.Table:
        if request.ByteSize() > self.max_request_bytes:
            raise PayloadError("features", f"request over {self.max_request_bytes} bytes")
        kind = request.WhichOneof("features")
        if kind == "arrow_ipc":
            return features_from_ipc(request.arrow_ipc)
        if kind == "rows":
            rows = [(r.symbol, r.ts_ns, list(r.values)) for r in request.rows.rows]
            return features_from_rows(list(request.rows.feature_names), rows)
        raise PayloadError("features", "missing: send arrow_ipc or rows")

    @staticmethod
    def _pb_votes(votes: pa.Table) -> list[pb.Vote]:
        return [
            pb.Vote(symbol=r["symbol"], ts_ns=r["ts_ns"], agent=r["agent"], model_version=r["model_version"],
                    action=r["action"], confidence=r["confidence"])
            for r in records(votes)
        ]

    async def _grpc_call(self, request: pb.VotesRequest, grpc_context: Any, with_signal: bool) -> Any:
        reply: Any = pb.SignalReply() if with_signal else pb.VotesReply()
        if self._grpc_denied(grpc_context):
            return reply
        try:
            votes = await self._votes(self._grpc_features(request), request.agent or None, request.latest_only)
        except PayloadError as exc:
            grpc_context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
            grpc_context.set_details(f"{exc.field}: {exc.reason}" + (f" (row {exc.row})" if exc.row is not None else ""))
            return reply
        except ModelError as exc:
            grpc_context.set_code(grpc.StatusCode.UNAVAILABLE)
            grpc_context.set_details(str(exc))
            return reply
        reply.votes.extend(self._pb_votes(votes))
        if with_signal:
            for r in records(self._signal(votes)):
                reply.signals.append(pb.Signal(
                    symbol=r["symbol"], ts_ns=r["ts_ns"], action=r["action"], confidence=r["confidence"],
                    agreement=r["agreement"], votes=r["votes"], reason=r["reason"]))
        return reply

    async def Votes(self, request: pb.VotesRequest, grpc_context: Any) -> pb.VotesReply:
        reply: pb.VotesReply = await self._grpc_call(request, grpc_context, with_signal=False)
        return reply

    async def Signal(self, request: pb.VotesRequest, grpc_context: Any) -> pb.SignalReply:
        reply: pb.SignalReply = await self._grpc_call(request, grpc_context, with_signal=True)
        return reply

    async def Models(self, request: pb.ModelsRequest, grpc_context: Any) -> pb.ModelsReply:
        reply = pb.ModelsReply()
        if self._grpc_denied(grpc_context):
            return reply
        for m in await self._models():
            reply.models.append(pb.Model(agent=m["agent"], version=m["version"] or "", status=m["status"]))
        return reply


# ---------------------------------------------------------------------------- building

GRPC_SERVICER = "tinywindow.serving.votes_pb2_grpc.add_TinyWindowServicer_to_server"


def model_deployment_name(agent: str) -> str:
    return f"model-{agent}"


def build_app(
    cfg: Config,
    agents: list[str],
    token_digest: str,
    versions: dict[str, str | None] | None = None,
) -> Any:
    """The Serve application: one AgentModel deployment per agent plus the Gateway."""
    from tinywindow.agents.registry import registry_root
    from tinywindow.crypto import keystore_dir

    s = cfg.serving
    versions = versions or {}
    autoscaling = {
        "min_replicas": s.min_replicas,
        "max_replicas": max(s.max_replicas, s.min_replicas, 1),
        "initial_replicas": max(s.min_replicas, 1),
        "target_ongoing_requests": max(2, s.max_batch_size // 2),
    }
    def model_args(agent: str) -> tuple[Any, ...]:
        return (agent, str(registry_root(cfg)), str(keystore_dir(cfg)), s.max_batch_size, s.batch_wait_timeout_s)

    deployment: Any = serve.deployment
    models = {
        agent: deployment(AgentModel)
        .options(
            name=model_deployment_name(agent),
            ray_actor_options={"num_cpus": s.replica_cpus},
            autoscaling_config=autoscaling,
            max_ongoing_requests=max(s.max_batch_size * 2, 16),
            logging_config={"enable_access_log": False},  # internal hop: the gateway logs requests
            user_config={"version": versions.get(agent)},
            health_check_period_s=5,
        )
        .bind(*model_args(agent))
        for agent in agents
    }
    gateway_args = (token_digest, s.max_request_bytes, cfg.consensus.model_dump())
    gateway = deployment(Gateway).options(
        name="gateway",
        ray_actor_options={"num_cpus": s.replica_cpus},
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
    digest = args.get("token_digest") or token_digest(serving_token(cfg))
    return build_app(cfg, list(args["agents"]), str(digest))


def deploy_config(
    cfg: Config, agents: list[str], token_digest: str | None, versions: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """The declarative Serve config (``ServeDeploySchema``) of the whole app.

    The same document runs locally (``start``/``swap``), under ``serve deploy`` and in a
    KubeRay RayService (``serveConfigV2``).  Only the token's digest travels in it.  A new
    model version changes nothing but a deployment's ``user_config``, so Serve reconfigures
    the running replicas in place.
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
    cfg: Config, agents: list[str], token_digest: str, versions: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """Start Serve (HTTP on ``serving.host``, gRPC on ``serving.grpc_port``) and deploy."""
    start_proxies(cfg)
    t0 = time.perf_counter()
    config = deploy_config(cfg, agents, token_digest, versions)
    apply(config)
    log.info("serving %s in %.1fs", ", ".join(agents), time.perf_counter() - t0)
    return config


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


def swap(cfg: Config, agents: list[str], token_digest: str, versions: dict[str, str | None]) -> dict[str, Any]:
    """Put new model versions live: only ``user_config`` changes, so replicas reconfigure in
    place and requests keep flowing."""
    config = deploy_config(cfg, agents, token_digest, versions)
    apply(config)
    return config
