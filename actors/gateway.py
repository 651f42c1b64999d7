"""The serving gateway: authenticated HTTP (FastAPI) and gRPC ingress in front of the
AgentModel deployments.

HTTP: ``POST /v1/votes``, ``POST /v1/signal`` (votes + consensus), ``GET /v1/models``,
``GET /healthz``, OpenAPI at ``/openapi.json``.  gRPC: the ``TinyWindow`` service of
``tinywindow/serving/votes.proto``.  Both require the bearer token (only its digest is held
here); bodies are size-limited; a bad payload gets 400 / INVALID_ARGUMENT naming the field.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
# runtime, and Serve's ingress wrapper re-binds them outside this module's globals.

import asyncio
import json
from typing import Any

import grpc
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from tinywindow.config import ConsensusConfig
from tinywindow.errors import ModelError
from tinywindow.schema import VOTES
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

ARROW_STREAM = "application/vnd.apache.arrow.stream"


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
