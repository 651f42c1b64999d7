"""The serving gateway: authenticated HTTP (FastAPI) and gRPC ingress in front of the
AgentModel deployments.

HTTP: ``POST /v1/votes``, ``POST /v1/signal`` (votes + consensus), ``GET /v1/models``,
``GET /healthz``, OpenAPI at ``/openapi.json``.

The served signal is the traded signal: ``/v1/signal`` and the gRPC Signal call decide with
the live ConsensusActor's weights and calibration, through the same function its trading
path decides with (``ConsensusActor.preview``; the actor is found by name,
``actors.consensus.live_consensus``).  When no consensus runs, they decide with default
weights (1.0, uncalibrated) and say so: ``"consensus": "default-weights"`` in the HTTP body
and every reason starts with ``DEFAULT_WEIGHTS_NOTE``.  The HTTP body's votes and signals
carry every column of VOTES and SIGNALS, the consensus's combined ``score`` included; the
gRPC messages have no score field.  Each signal that trades (action != 0) carries
``explanations``: the top ``EXPLAIN_TOP_K`` (feature, lag) contributions of every agent that
voted its way (``tinywindow.models.explain``, computed on request for those symbols only;
an empty list for the others), in the HTTP body and in the gRPC ``Signal`` message.  gRPC: the ``TinyWindow`` service of
``tinywindow/serving/votes.proto``.  Both require the bearer token (only its digest is held
here); a bad payload gets 400 / INVALID_ARGUMENT naming the field, one over a limit 413 /
RESOURCE_EXHAUSTED naming the limit (``GatewayLimits``).

Hostile clients: request bodies are read under a deadline (408) by at most
``max_concurrent_uploads`` requests at a time (503 beyond, at once), so stalled uploads
cannot take the replica's request slots; decoding runs in a worker thread, off the event
loop that answers ``/healthz``.  docs/reliability/gateway.md tables the cases.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
# runtime, and Serve's ingress wrapper re-binds them outside this module's globals.

import asyncio
import time
from typing import Any

import grpc
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from tinywindow.consensus.config import ConsensusConfig
from tinywindow.contracts import VOTES
from tinywindow.errors import ModelError
from tinywindow.serving import votes_pb2 as pb
from tinywindow.serving.auth import bearer_ok
from tinywindow.serving.grpc_service import parse_request
from tinywindow.serving.limits import GatewayLimits
from tinywindow.serving.payload import (
    PayloadError,
    PayloadTooLarge,
    features_from_columns,
    features_from_ipc,
    features_from_rows,
    from_ipc,
    parse_json,
    records,
    to_ipc,
)

ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEFAULT_WEIGHTS_NOTE = "[default weights: no live consensus] "
LIVE_RETRY_S = 2.0  # how often a gateway without a live consensus looks for one again
EXPLAIN_TOP_K = 5  # contributions per agent per traded signal


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
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status in (408, 413, 503):  # the body was not read: drop the connection, not keep it alive
        headers["Connection"] = "close"
    if status == 503:
        headers["Retry-After"] = "1"
    return JSONResponse(body, status_code=status, headers=headers or None)


@api.exception_handler(RequestValidationError)
async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", []) if p != "body"]
    return _error(400, err.get("msg", "invalid request"), ".".join(loc) or "body")


@api.exception_handler(PayloadError)
async def _bad_payload(request: Request, exc: PayloadError) -> JSONResponse:
    return _error(exc.status, exc.reason, exc.field, exc.row)


@api.exception_handler(ModelError)
async def _no_model(request: Request, exc: ModelError) -> JSONResponse:
    return _error(503, str(exc))


class Guard:
    """Pure ASGI middleware for /v1 routes: bearer token first, then a bounded body read;
    the app then reads the buffered body.  Cheaper than Starlette's BaseHTTPMiddleware.

    The read is bounded in size (413 past ``max_request_bytes``, whatever Content-Length
    claims), in time (408 past ``body_read_timeout_s`` for the whole body) and in number
    (503 with Retry-After when ``max_concurrent_uploads`` bodies are already being read):
    a stalled client holds one upload slot for the deadline at most, and ``/healthz``,
    which never comes here, keeps answering.
    """

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
            await _error(413, f"request body over {limit} bytes (max_request_bytes)", "body")(scope, receive, send)
            return
        if scope.get("method", "GET") in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        slots: asyncio.Semaphore = state.upload_slots
        if slots.locked():  # checked and taken with no await between: atomic on this loop
            await _error(503, "too many uploads in progress; retry shortly (max_concurrent_uploads)")(
                scope, receive, send
            )
            return
        async with slots:
            body = await _read_body(receive, limit, state.limits.body_read_timeout_s)
        if body is None:  # the client went away
            return
        if isinstance(body, JSONResponse):
            await body(scope, receive, send)
            return
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _read_body(receive: Any, limit: int, timeout_s: float) -> bytes | JSONResponse | None:
    """The whole body within ``timeout_s`` and ``limit`` bytes, the response refusing it,
    or None when the client disconnected."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
        except TimeoutError:
            return _error(408, f"request body not received within {timeout_s:g} s (body_read_timeout_s)", "body")
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        more = message.get("more_body", False)
        if size > limit:
            return _error(413, f"request body over {limit} bytes (max_request_bytes)", "body")
    return b"".join(chunks)


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
        limits: dict[str, Any] | None = None,
    ) -> None:
        self.models = models
        self.token_digest = token_digest
        self.consensus = ConsensusConfig(**consensus)
        self.limits = GatewayLimits(**(limits or {}))
        api.state.token_digest = token_digest
        api.state.max_request_bytes = max_request_bytes
        api.state.limits = self.limits
        api.state.upload_slots = asyncio.Semaphore(self.limits.max_concurrent_uploads)
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

    async def _signal(self, votes: pa.Table) -> tuple[pa.Table, str]:
        """SIGNALS for ``votes`` and where their weights came from (``live`` or
        ``default-weights``, see the module docstring)."""
        from tinywindow.contracts import SIGNALS

        if votes.num_rows == 0:
            return SIGNALS.empty_table(), "live" if self._live() is not None else "default-weights"
        live = self._live()
        if live is not None:
            try:
                signals: pa.Table = await live.preview.remote(votes)
                return signals, "live"
            except Exception:  # the actor died or is restarting: decide without it, and say so
                self._live_handle = None
                self._live_looked_at = time.monotonic()
        return await asyncio.to_thread(self._default_signal, votes), "default-weights"

    async def _explanations(self, features: pa.Table, votes: pa.Table, signals: pa.Table) -> dict[tuple[str, int], list[dict[str, Any]]]:
        """Per traded signal (action != 0), keyed (symbol, ts_ns): the explanations of each
        agent whose vote had the signal's action; only those decisions are explained."""
        from tinywindow.models.explain import explanation_records

        trades = {(r["symbol"], r["ts_ns"]): r["action"] for r in records(signals) if r["action"] != 0}
        if not trades:
            return {}
        wanted: dict[str, list[tuple[str, int]]] = {}
        for v in records(votes):
            key = (v["symbol"], v["ts_ns"])
            if trades.get(key) == v["action"]:
                wanted.setdefault(v["agent"], []).append(key)
        payload = to_ipc(features)
        agents = sorted(wanted)
        results = await asyncio.gather(*(self.models[a].explain_ipc.remote(payload, wanted[a], EXPLAIN_TOP_K) for a in agents))
        tables = [from_ipc(r) for r in results]
        return explanation_records(pa.concat_tables(tables)) if tables else {}

    def _live(self) -> Any:
        """The live consensus's handle (looked up again at most every ``LIVE_RETRY_S``)."""
        if getattr(self, "_live_handle", None) is None:
            now = time.monotonic()
            if now - getattr(self, "_live_looked_at", -LIVE_RETRY_S) >= LIVE_RETRY_S:
                from actors.consensus import live_consensus

                self._live_looked_at = now
                self._live_handle = live_consensus()
        return self._live_handle

    def _default_signal(self, votes: pa.Table) -> pa.Table:
        from tinywindow.consensus.state import ConsensusBook

        signals = ConsensusBook(self.consensus, sorted(self.models)).preview(votes)
        reasons = pa.array([DEFAULT_WEIGHTS_NOTE + r for r in signals.column("reason").to_pylist()], pa.string())
        return signals.set_column(signals.schema.get_field_index("reason"), signals.schema.field("reason"), reasons)

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
            return await asyncio.to_thread(features_from_ipc, body, limits=self.limits), agent, latest
        return await asyncio.to_thread(self._json_features, body)

    def _json_features(self, body: bytes) -> tuple[pa.Table, str | None, bool]:
        """Parse and validate a JSON body (in a worker thread: it may be megabytes)."""
        raw = parse_json(body, self.limits)
        if not isinstance(raw, dict):
            raise PayloadError("body", "must be a JSON object")
        try:
            parsed = VotesBody.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise PayloadError(".".join(str(p) for p in err["loc"])[:200] or "body", err["msg"]) from None
        return features_from_columns(parsed.features, limits=self.limits), parsed.agent, parsed.latest_only

    @api.post("/v1/votes", openapi_extra={"requestBody": {"content": {"application/json": {"schema": VotesBody.model_json_schema()}}}})
    async def votes_http(self, request: Request) -> dict[str, Any]:
        features, agent, latest = await self._features(request)
        votes = await self._votes(features, agent, latest)
        return {"votes": records(votes)}

    @api.post("/v1/signal", openapi_extra={"requestBody": {"content": {"application/json": {"schema": VotesBody.model_json_schema()}}}})
    async def signal_http(self, request: Request) -> dict[str, Any]:
        features, agent, latest = await self._features(request)
        votes = await self._votes(features, agent, latest)
        signals, source = await self._signal(votes)
        explained = await self._explanations(features, votes, signals)
        out = records(signals)
        for r in out:
            r["explanations"] = explained.get((r["symbol"], r["ts_ns"]), [])
        return {"votes": records(votes), "signals": out, "consensus": source}

    # ------------------------------------------------------------------ gRPC
    def _grpc_denied(self, grpc_context: Any) -> bool:
        md = dict(grpc_context.invocation_metadata())
        if bearer_ok(md.get("authorization"), self.token_digest):
            return False
        grpc_context.set_code(grpc.StatusCode.UNAUTHENTICATED)
        grpc_context.set_details("missing or invalid bearer token")
        return True

    def _grpc_features(self, raw: pb.VotesRequest | bytes) -> tuple[pa.Table, pb.VotesRequest]:
        """Parse and validate a request (in a worker thread): bytes from the proxy, see
        ``tinywindow.serving.grpc_service``."""
        size = len(raw) if isinstance(raw, bytes) else raw.ByteSize()
        if size > self.max_request_bytes:
            raise PayloadTooLarge("features", f"request over {self.max_request_bytes} bytes (max_request_bytes)")
        request = parse_request(pb.VotesRequest, raw)
        kind = request.WhichOneof("features")
        if kind == "arrow_ipc":
            return features_from_ipc(request.arrow_ipc, limits=self.limits), request
        if kind == "rows":
            rows = [(r.symbol, r.ts_ns, list(r.values)) for r in request.rows.rows]
            return features_from_rows(list(request.rows.feature_names), rows, limits=self.limits), request
        raise PayloadError("features", "missing: send arrow_ipc or rows")

    @staticmethod
    def _pb_votes(votes: pa.Table) -> list[pb.Vote]:
        return [
            pb.Vote(symbol=r["symbol"], ts_ns=r["ts_ns"], agent=r["agent"], model_version=r["model_version"],
                    action=r["action"], confidence=r["confidence"])
            for r in records(votes)
        ]

    async def _grpc_call(self, raw: pb.VotesRequest | bytes, grpc_context: Any, with_signal: bool) -> Any:
        reply: Any = pb.SignalReply() if with_signal else pb.VotesReply()
        if self._grpc_denied(grpc_context):
            return reply
        try:
            features, request = await asyncio.to_thread(self._grpc_features, raw)
            votes = await self._votes(features, request.agent or None, request.latest_only)
        except PayloadError as exc:
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if isinstance(exc, PayloadTooLarge) else grpc.StatusCode.INVALID_ARGUMENT
            grpc_context.set_code(code)
            grpc_context.set_details(f"{exc.field}: {exc.reason}" + (f" (row {exc.row})" if exc.row is not None else ""))
            return reply
        except ModelError as exc:
            grpc_context.set_code(grpc.StatusCode.UNAVAILABLE)
            grpc_context.set_details(str(exc))
            return reply
        reply.votes.extend(self._pb_votes(votes))
        if with_signal:
            signals, _source = await self._signal(votes)
            explained = await self._explanations(features, votes, signals)
            for r in records(signals):
                reply.signals.append(pb.Signal(
                    symbol=r["symbol"], ts_ns=r["ts_ns"], action=r["action"], confidence=r["confidence"],
                    agreement=r["agreement"], votes=r["votes"], reason=r["reason"],
                    decided=bool(r["decided"]),
                    explanations=[pb.Explanation(**e) for e in explained.get((r["symbol"], r["ts_ns"]), [])]))
        return reply

    async def Votes(self, request: pb.VotesRequest | bytes, grpc_context: Any) -> pb.VotesReply:
        reply: pb.VotesReply = await self._grpc_call(request, grpc_context, with_signal=False)
        return reply

    async def Signal(self, request: pb.VotesRequest | bytes, grpc_context: Any) -> pb.SignalReply:
        reply: pb.SignalReply = await self._grpc_call(request, grpc_context, with_signal=True)
        return reply

    async def Models(self, request: pb.ModelsRequest | bytes, grpc_context: Any) -> pb.ModelsReply:
        reply = pb.ModelsReply()
        if self._grpc_denied(grpc_context):
            return reply
        try:
            parse_request(pb.ModelsRequest, request)
        except PayloadError as exc:
            grpc_context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
            grpc_context.set_details(f"{exc.field}: {exc.reason}")
            return reply
        for m in await self._models():
            reply.models.append(pb.Model(agent=m["agent"], version=m["version"] or "", status=m["status"]))
        return reply
