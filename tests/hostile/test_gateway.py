"""Hostile input to the serving gateway: compression bombs, out-of-range numbers and times,
bad symbols, deep JSON, wrong types, bad tokens, oversize and stalled uploads, corrupt gRPC
messages, and swaps to tampered versions.  Every case asserts its status (never 500) or gRPC
code, and that a good request right after it still succeeds.  docs/reliability/gateway.md
tables the cases.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pyarrow as pa
import pytest
from ray import serve

from actors import serving
from tests.serving_app import AUTH, TOKEN, Served, ipc_bytes, served_fixture
from tinywindow.data import features as F
from tinywindow.errors import IntegrityError, ModelError
from tinywindow.serving import votes_pb2 as pb
from tinywindow.serving.limits import GatewayLimits

pytestmark = pytest.mark.usefixtures("ray_cluster")

LIMITS = GatewayLimits(
    max_rows=2000, max_decoded_bytes=8 * 1024**2, body_read_timeout_s=3.0, max_concurrent_uploads=8
)
MAX_REQUEST_BYTES = 256 * 1024
served = served_fixture(["xgboost"], limits=LIMITS, max_request_bytes=MAX_REQUEST_BYTES)
JSON_CT = {**AUTH, "Content-Type": "application/json"}
ARROW_CT = {**AUTH, "Content-Type": serving.ARROW_STREAM}
META = [("authorization", f"Bearer {TOKEN}")]


def assert_still_serving(s: Served) -> None:
    """A good request right after a hostile one succeeds."""
    r = s.http.post("/v1/votes", json={"features": s.columns(), "latest_only": True}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert len(r.json()["votes"]) == 4


# ---------------------------------------------------------------------------- payload builders


def _json(cols: dict[str, Any], **top: Any) -> bytes:
    return json.dumps({"features": cols, **top}).encode()


def _with(s: Served, **changes: Any) -> bytes:
    cols = s.columns()
    n = len(cols["symbol"])
    for key, value in changes.items():
        cols[key] = value(n) if callable(value) else value
    return _json(cols)


def _raw_number(s: Served, literal: str) -> bytes:
    """A body whose ret_1 column holds ``literal`` verbatim (json.dumps cannot write 1e400)."""
    cols = s.columns()
    cols["ret_1"][0] = "@"
    return _json(cols).replace(b'"@"', literal.encode(), 1)


@cache
def _bomb_rows(compression: str) -> bytes:
    """Two million float32 zeros: 8 MB of rows, a few KB compressed."""
    return ipc_bytes(pa.table({"ret_1": np.zeros(2_000_000, dtype=np.float32)}), compression)


@cache
def _bomb_bytes(compression: str) -> bytes:
    """One row whose symbol is 32 MB of 'A': over max_decoded_bytes, tiny compressed."""
    return ipc_bytes(pa.table({"symbol": pa.array(["A" * 32 * 1024**2])}), compression)


def _many_rows(s: Served, compression: str | None) -> bytes:
    t = s.window()
    return ipc_bytes(pa.concat_tables([t] * (LIMITS.max_rows // t.num_rows + 1)), compression)


def _many_batches(s: Served) -> bytes:
    t = s.window()  # batches of 100 rows, each under the limit: the rows add up across batches
    return ipc_bytes(pa.concat_tables([t] * (LIMITS.max_rows // t.num_rows + 1)), "zstd", max_chunksize=100)


def _bad_utf8_symbol(s: Served) -> bytes:
    t = s.window()
    n = t.num_rows
    offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int32).tobytes())
    strings = pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(b"\xff" * n)])
    return ipc_bytes(t.set_column(0, "symbol", strings))


def _ts_column(s: Served, values: pa.Array) -> bytes:
    return ipc_bytes(s.window().set_column(1, "ts", values))


def _corrupt_prefix(s: Served) -> bytes:
    good = ipc_bytes(s.window())
    return b"\xff\xff\xff\xff\xff\xff\xff\x7f" + good[8:]  # metadata length 2 GiB


def _nested(depth: int) -> bytes:
    return b'{"features": ' + b"[" * depth + b"]" * depth + b"}"


@dataclass(frozen=True)
class Case:
    body: Callable[[Served], bytes]
    status: int
    field: str | None = None  # the field the 400 names (last dotted part)
    names: str | None = None  # text the error must contain (the limit, for a 413)
    arrow: bool = False


CASES: dict[str, Case] = {
    # Arrow IPC: bombs and limits, all checked before anything is decompressed
    "ipc-zstd-bomb-2M-rows": Case(lambda s: _bomb_rows("zstd"), 413, "arrow_ipc", "max_rows", arrow=True),
    "ipc-lz4-bomb-2M-rows": Case(lambda s: _bomb_rows("lz4"), 413, "arrow_ipc", "max_rows", arrow=True),
    "ipc-zstd-bomb-32MB-string": Case(lambda s: _bomb_bytes("zstd"), 413, "arrow_ipc", "max_decoded_bytes", arrow=True),
    "ipc-lz4-bomb-32MB-string": Case(lambda s: _bomb_bytes("lz4"), 413, "arrow_ipc", "max_decoded_bytes", arrow=True),
    "ipc-too-many-rows-plain": Case(lambda s: _many_rows(s, None), 413, "arrow_ipc", "max_rows", arrow=True),
    "ipc-too-many-rows-zstd": Case(lambda s: _many_rows(s, "zstd"), 413, "arrow_ipc", "max_rows", arrow=True),
    "ipc-too-many-rows-small-batches": Case(_many_batches, 413, "arrow_ipc", "max_rows", arrow=True),
    "ipc-truncated": Case(lambda s: ipc_bytes(s.window())[:700], 400, "arrow_ipc", arrow=True),
    "ipc-truncated-zstd-body": Case(lambda s: ipc_bytes(s.window(), "zstd")[:-40], 400, "arrow_ipc", arrow=True),
    "ipc-corrupt-length-prefix": Case(_corrupt_prefix, 400, "arrow_ipc", arrow=True),
    "ipc-random-bytes": Case(lambda s: np.random.default_rng(1).bytes(4096), 400, "arrow_ipc", arrow=True),
    "ipc-schema-only-no-rows": Case(lambda s: ipc_bytes(s.window().slice(0, 0)), 400, "symbol", arrow=True),
    "ipc-wrong-schema": Case(lambda s: ipc_bytes(pa.table({"x": [1, 2]})), 400, "x", arrow=True),
    "ipc-wrong-type": Case(
        lambda s: ipc_bytes(s.window().set_column(2, F.FEATURE_NAMES[0], pa.array(["a"] * s.window().num_rows))),
        400, F.FEATURE_NAMES[0], arrow=True),
    "ipc-duplicate-column": Case(
        lambda s: ipc_bytes(s.window().append_column("ret_1", s.window().column("ret_1"))), 400, "ret_1", arrow=True),
    "ipc-invalid-utf8-symbol": Case(_bad_utf8_symbol, 400, "arrow_ipc", arrow=True),
    "ipc-control-char-symbol": Case(
        lambda s: ipc_bytes(s.window().set_column(0, "symbol", pa.array(["A\n"] * s.window().num_rows))),
        400, "symbol", arrow=True),
    "ipc-negative-ts": Case(
        lambda s: _ts_column(s, pa.array(-np.arange(s.window().num_rows, 0, -1), pa.timestamp("ns", tz="UTC"))),
        400, "ts", arrow=True),
    "ipc-ts-seconds-overflow": Case(
        lambda s: _ts_column(s, pa.array(10**15 + np.arange(s.window().num_rows), pa.timestamp("s", tz="UTC"))),
        400, "features", arrow=True),
    # JSON numbers, times, symbols, nesting and types
    "json-float-1e400": Case(lambda s: _raw_number(s, "1e400"), 400, "ret_1"),
    "json-int-10**400": Case(lambda s: _raw_number(s, str(10**400)), 400, "ret_1"),
    "json-int-5000-digits": Case(lambda s: _raw_number(s, "7" * 5000), 400, "body"),
    "json-float32-overflow-1e300": Case(lambda s: _raw_number(s, "1e300"), 400, "ret_1"),
    "json-bool-for-number": Case(lambda s: _raw_number(s, "true"), 400, "ret_1"),
    "json-string-for-number": Case(lambda s: _with(s, ret_1=lambda n: ["0.1"] * n), 400, "ret_1"),
    "json-list-for-number": Case(lambda s: _with(s, ret_1=lambda n: [[0.1]] * n), 400, "ret_1"),
    "json-object-for-list": Case(lambda s: _with(s, ret_1={"a": 1}), 400, "ret_1"),
    "json-list-for-features": Case(lambda s: b'{"features": [1, 2, 3]}', 400, "features"),
    "json-top-level-array": Case(lambda s: b"[1, 2]", 400, "body"),
    "json-mismatched-lengths": Case(lambda s: _with(s, ret_5=lambda n: [0.1] * (n - 1)), 400, "ret_5"),
    "json-ts-10**30": Case(lambda s: _with(s, ts=lambda n: [10**30 + i for i in range(n)]), 400, "ts"),
    "json-ts-negative": Case(lambda s: _with(s, ts=lambda n: [-(n - i) for i in range(n)]), 400, "ts"),
    "json-ts-year-9999": Case(lambda s: _with(s, ts=lambda n: ["9999-01-01T00:00:00Z"] * n), 400, "ts"),
    "json-ts-year-1": Case(lambda s: _with(s, ts=lambda n: ["0001-01-01T00:00:00+00:00"] * n), 400, "ts"),
    "json-ts-null": Case(lambda s: _with(s, ts=lambda n: [None] * n), 400, "ts"),
    "json-symbol-lone-surrogate": Case(lambda s: _with(s, symbol=lambda n: ["\ud800"] * n), 400, "symbol"),
    "json-symbol-nul-char": Case(lambda s: _with(s, symbol=lambda n: ["BTC\x00"] * n), 400, "symbol"),
    "json-symbol-newline": Case(lambda s: _with(s, symbol=lambda n: ["BTC\nUSD"] * n), 400, "symbol"),
    "json-symbol-empty": Case(lambda s: _with(s, symbol=lambda n: [""] * n), 400, "symbol"),
    "json-symbol-100k-chars": Case(lambda s: _with(s, symbol=lambda n: ["A" * 100_000] + ["B"] * (n - 1)), 400, "symbol"),
    "json-symbol-number": Case(lambda s: _with(s, symbol=lambda n: [7] * n), 400, "symbol"),
    "json-nested-1000-deep": Case(lambda s: _nested(1000), 400, "body", "max_json_depth"),
    "json-nested-100000-deep": Case(lambda s: _nested(100_000), 400, "body", "max_json_depth"),
    "json-invalid-utf8": Case(lambda s: b'{"features": {"symbol": ["\xff"]}}', 400, "body"),
    "json-too-many-rows": Case(
        lambda s: _json({"symbol": ["A"] * (LIMITS.max_rows + 1), "ts": list(range(LIMITS.max_rows + 1)),
                         **{n: [0] * (LIMITS.max_rows + 1) for n in F.FEATURE_NAMES}}),
        413, "symbol", "max_rows"),
    "oversize-body": Case(lambda s: b"x" * (MAX_REQUEST_BYTES + 1), 413, "body", "max_request_bytes"),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_hostile_body_is_refused_and_gateway_keeps_serving(served: Served, case_id: str) -> None:
    case = CASES[case_id]
    body = case.body(served)
    if case_id != "oversize-body":
        assert len(body) <= MAX_REQUEST_BYTES, len(body)  # bombs stay small on the wire
    r = served.http.post("/v1/votes", content=body, headers=ARROW_CT if case.arrow else JSON_CT)
    assert r.status_code == case.status, (r.status_code, r.text[:300])
    error = r.json()
    if case.field is not None:
        assert error["field"].split(".")[-1] == case.field, error
    if case.names is not None:
        assert case.names in error["error"], error
    assert_still_serving(served)


def test_oversize_chunked_body_without_content_length(served: Served) -> None:
    def chunks() -> Any:
        for _ in range(MAX_REQUEST_BYTES // 16384 + 2):
            yield b" " * 16384

    r = served.http.post("/v1/votes", content=chunks(), headers=JSON_CT)
    assert r.status_code == 413 and "max_request_bytes" in r.json()["error"]
    assert_still_serving(served)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing-token"),
        pytest.param({"Authorization": "Bearer wrong-token-" + "y" * 20}, id="wrong-token"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="token-in-basic-scheme"),
        pytest.param({"Authorization": TOKEN}, id="token-without-scheme"),
        pytest.param({"Authorization": "Bearer"}, id="bearer-without-token"),
        pytest.param({"X-Api-Key": TOKEN}, id="token-in-other-header"),
    ],
)
def test_bad_token_gets_401(served: Served, headers: dict[str, str]) -> None:
    r = served.http.post("/v1/votes", json={"features": served.columns()}, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert_still_serving(served)


# ---------------------------------------------------------------------------- slow clients


def _read_until_closed(socks: list[socket.socket], deadline: float) -> dict[socket.socket, bytes]:
    got = {s: b"" for s in socks}
    open_ = set(socks)
    while open_ and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_), [], [], 0.5)
        for s in ready:
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                got[s] += chunk
            else:
                open_.discard(s)
    assert not open_, f"{len(open_)} stalled connections still open after the read timeout"
    return got


def test_stalled_uploads_do_not_starve_health_and_are_closed(served: Served) -> None:
    """300 clients send headers and part of a body, then stall (slowloris): /healthz answers
    within 2 s while they hang, and the server answers and closes every one of them."""
    port = served.cfg.serving.http_port
    head = (
        f"POST /v1/votes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"features\": "
    ).encode()
    socks: list[socket.socket] = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(head)
            socks.append(s)
        opened = time.monotonic()
        with httpx.Client(base_url=str(served.http.base_url), timeout=2) as fresh:
            for _ in range(3):
                t0 = time.monotonic()
                assert fresh.get("/healthz").status_code == 200
                assert time.monotonic() - t0 < 2.0
        got = _read_until_closed(socks, opened + LIMITS.body_read_timeout_s + 12)
    finally:
        for s in socks:
            s.close()
    statuses = [int(b.split(b" ", 2)[1]) for b in got.values() if b.startswith(b"HTTP/1.1 ")]
    assert len(statuses) == len(socks), f"{len(socks) - len(statuses)} closed without a response"
    assert set(statuses) <= {408, 503}, sorted(set(statuses))
    assert statuses.count(408) <= LIMITS.max_concurrent_uploads * 2  # the rest were turned away at once
    assert_still_serving(served)


# ---------------------------------------------------------------------------- gRPC


def _raw(served: Served, method: str) -> Any:
    """A call that sends bytes as they are (identity serializers)."""
    return served.channel.unary_unary(f"/tinywindow.serving.v1.TinyWindow/{method}",
                                      request_serializer=None, response_deserializer=None)


def _rows(values: list[float] | None = None, symbol: str = "A", ts_ns: int = 1_700_000_000_000_000_000) -> pb.VotesRequest:
    vals = values if values is not None else [0.1] * len(F.FEATURE_NAMES)
    return pb.VotesRequest(rows=pb.FeatureRows(
        feature_names=list(F.FEATURE_NAMES), rows=[pb.FeatureRow(symbol=symbol, ts_ns=ts_ns, values=vals)]))


GRPC_CASES: dict[str, tuple[str, Callable[[Served], bytes], list[tuple[str, str]] | None, grpc.StatusCode]] = {
    "grpc-garbage-bytes": ("Votes", lambda s: b"\xff\xfe\xfd garbage \x00\x01", META, grpc.StatusCode.INVALID_ARGUMENT),
    "grpc-truncated-message": ("Votes", lambda s: pb.VotesRequest(arrow_ipc=b"x" * 100).SerializeToString()[:50],
                               META, grpc.StatusCode.INVALID_ARGUMENT),
    "grpc-invalid-utf8-string": ("Votes", lambda s: b"\x0a\x02\xff\xfe", META, grpc.StatusCode.INVALID_ARGUMENT),
    "grpc-signal-garbage": ("Signal", lambda s: b"\x0a\xff\xff\xff\xff\x0f", META, grpc.StatusCode.INVALID_ARGUMENT),
    "grpc-models-garbage": ("Models", lambda s: b"\xff\xff\xff", META, grpc.StatusCode.INVALID_ARGUMENT),
    "grpc-no-token": ("Votes", lambda s: pb.VotesRequest(arrow_ipc=ipc_bytes(s.window())).SerializeToString(),
                      None, grpc.StatusCode.UNAUTHENTICATED),
    "grpc-wrong-token": ("Models", lambda s: b"", [("authorization", "Bearer nope-" + "z" * 20)],
                         grpc.StatusCode.UNAUTHENTICATED),
    "grpc-garbage-without-token": ("Votes", lambda s: b"\xff\xff", None, grpc.StatusCode.UNAUTHENTICATED),
    "grpc-ipc-zstd-bomb": ("Votes", lambda s: pb.VotesRequest(arrow_ipc=_bomb_rows("zstd")).SerializeToString(),
                           META, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "grpc-oversize-message": ("Votes", lambda s: pb.VotesRequest(arrow_ipc=b"\0" * (MAX_REQUEST_BYTES + 1)).SerializeToString(),
                              META, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "grpc-rows-negative-ts": ("Votes", lambda s: _rows(ts_ns=-1).SerializeToString(), META, grpc.StatusCode.INVALID_ARGUMENT),
    "grpc-rows-inf-value": ("Votes", lambda s: _rows([float("inf")] * len(F.FEATURE_NAMES)).SerializeToString(),
                            META, grpc.StatusCode.INVALID_ARGUMENT),
    "grpc-rows-control-symbol": ("Votes", lambda s: _rows(symbol="A\x07").SerializeToString(), META,
                                 grpc.StatusCode.INVALID_ARGUMENT),
}


@pytest.mark.parametrize("case_id", list(GRPC_CASES))
def test_hostile_grpc_gets_a_typed_code(served: Served, case_id: str) -> None:
    method, body, metadata, code = GRPC_CASES[case_id]
    with pytest.raises(grpc.RpcError) as exc:
        _raw(served, method)(body(served), metadata=metadata, timeout=30)
    assert exc.value.code() == code, (exc.value.code(), exc.value.details())
    good = pb.VotesRequest(arrow_ipc=ipc_bytes(served.window()), latest_only=True)
    assert len(served.grpc_stub.Votes(good, metadata=META, timeout=30).votes) == 4
    assert_still_serving(served)


# ---------------------------------------------------------------------------- swaps


def _tamper(served: Served, version: str) -> None:
    weights = next(p for p in (Path(served.registry.root) / "xgboost" / version).iterdir() if p.name.startswith("booster.ubj"))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))


def _served_versions(served: Served) -> set[str]:
    r = served.http.post("/v1/votes", json={"features": served.columns(), "latest_only": True}, headers=AUTH)
    assert r.status_code == 200, r.text
    return {v["model_version"] for v in r.json()["votes"]}


def _app_running() -> bool:
    status = serve.status().applications[serving.APP_NAME].status
    return str(status).endswith("RUNNING")


@pytest.fixture(scope="module")
def tampered(served: Served) -> str:
    v2 = served.versions["xgboost"][1]
    _tamper(served, v2)
    return v2


def test_swap_to_tampered_version_is_refused_and_old_version_keeps_serving(served: Served, tampered: str) -> None:
    old = served.versions["xgboost"][0]
    with pytest.raises(IntegrityError, match="swap refused, the running app is unchanged"):
        served.swap({"xgboost": tampered})
    assert _app_running()
    assert _served_versions(served) == {old}
    models = served.http.get("/v1/models", headers=AUTH).json()["models"]
    assert [(m["version"], m["status"]) for m in models] == [(old, "ok")]


def test_swap_to_missing_version_is_refused(served: Served) -> None:
    with pytest.raises(ModelError, match="swap refused"):
        served.swap({"xgboost": "v9999"})
    assert _app_running() and _served_versions(served) == {served.versions["xgboost"][0]}


def test_cli_swap_to_tampered_version_exits_nonzero_saying_refused(
    served: Served, tampered: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tinywindow.cli import main
    from tinywindow.cli.serve import SWAP_REFUSED

    monkeypatch.setenv("TW_SERVING__TOKEN", TOKEN)
    code = main(["--set", f"data_dir={served.cfg.data_dir}", "serve", "swap", "--agents", "xgboost",
                 f"xgboost={tampered}"])
    out = capsys.readouterr()
    assert code == SWAP_REFUSED != 0
    assert "refused" in out.err and "IntegrityError" in out.err and "live:" not in out.out
    assert _app_running() and _served_versions(served) == {served.versions["xgboost"][0]}
