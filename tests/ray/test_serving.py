"""The serving app on loopback: real HTTP client, generated gRPC stub, hot swaps, load."""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyarrow as pa
import pytest
import ray

from actors import serving
from actors.training.train import train_agent
from tests.serving_app import AUTH, TOKEN, Served, ipc_bytes, served_fixture
from tinywindow.crypto.keystore import KeyStore
from tinywindow.data import features as F
from tinywindow.errors import IntegrityError
from tinywindow.serving import votes_pb2 as pb

pytestmark = pytest.mark.usefixtures("ray_cluster")

served = served_fixture(["lstm", "xgboost"])  # one Serve app for this module (tests/serving_app.py)
_ipc = ipc_bytes


# ---------------------------------------------------------------------------- HTTP


def test_token_required_everywhere_but_health(served: Served) -> None:
    body = {"features": served.columns()}
    for method, path in (("POST", "/v1/votes"), ("POST", "/v1/signal"), ("GET", "/v1/models")):
        assert served.http.request(method, path, json=body).status_code == 401
        bad = {"Authorization": "Bearer not-the-token"}
        r = served.http.request(method, path, json=body, headers=bad)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert served.http.get("/healthz").json()["status"] == "ok"
    spec = served.http.get("/openapi.json").json()
    assert {"/v1/votes", "/v1/signal", "/v1/models", "/healthz"} <= set(spec["paths"])


def test_votes_from_every_agent_with_versions(served: Served) -> None:
    r = served.http.post("/v1/votes", json={"features": served.columns(), "latest_only": True}, headers=AUTH)
    assert r.status_code == 200, r.text
    votes = r.json()["votes"]
    assert {v["agent"] for v in votes} == {"lstm", "xgboost"}
    assert len(votes) == 2 * 4  # one vote per symbol and agent
    by_agent = {v["agent"]: v["model_version"] for v in votes}
    assert by_agent == {"lstm": served.versions["lstm"][0], "xgboost": served.versions["xgboost"][0]}
    assert all(v["action"] in (-1, 0, 1) and 0 <= v["confidence"] <= 1 for v in votes)
    one = served.http.post("/v1/votes", json={"features": served.columns(), "agent": "xgboost"}, headers=AUTH)
    assert {v["agent"] for v in one.json()["votes"]} == {"xgboost"}
    arrow = served.http.post(
        "/v1/votes?latest_only=true&agent=lstm", content=_ipc(served.window()),
        headers={**AUTH, "Content-Type": serving.ARROW_STREAM},
    )
    assert arrow.status_code == 200 and len(arrow.json()["votes"]) == 4


def test_signal_has_consensus_with_reasons(served: Served) -> None:
    r = served.http.post("/v1/signal", json={"features": served.columns(), "latest_only": True}, headers=AUTH)
    assert r.status_code == 200, r.text
    signals = r.json()["signals"]
    assert len(signals) == 4
    assert all(s["reason"] and s["votes"] >= 1 and s["action"] in (-1, 0, 1) for s in signals)


def _exact_votes(served: Served) -> pa.Table:
    """The votes the gateway got for ``served.window()``, unrounded (JSON rounds to 6 places):
    asked of the same model deployments directly."""
    from ray import serve

    handles = [serve.get_deployment_handle(serving.model_deployment_name(a), app_name=serving.APP_NAME)
               for a in served.agents]
    return pa.concat_tables([h.predict.remote(served.window(), True).result() for h in handles])


def _teach(consensus: Any, agents: list[str], before_ns: int) -> None:
    """Votes and outcomes on a symbol of its own, before ``before_ns``: agents[0] says 0.6 and
    is right 70% of the time, agents[1] says 0.9 and is right 55% (over-confident)."""
    day = 86_400 * 10**9
    outcomes = []
    for d in range(80):
        ts = before_ns - (100 - d) * day
        rows = [(agents[0], 1 if d % 10 < 7 else -1, 0.6), (agents[1], 1, 0.9)]
        votes = pa.table({
            "symbol": ["TEACH"] * 2, "ts": pa.array([ts] * 2, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "agent": [r[0] for r in rows], "model_version": ["t1"] * 2,
            "action": pa.array([r[1] for r in rows], pa.int8()), "confidence": pa.array([r[2] for r in rows], pa.float32()),
        })
        ray.get(consensus.on_votes.remote(votes))
        outcomes.append((ts, 0.01 if d % 20 < 11 else -0.01))
    table = pa.table({
        "symbol": ["TEACH"] * len(outcomes),
        "ts": pa.array([t for t, _ in outcomes], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "action": pa.array([0] * len(outcomes), pa.int8()), "realized_return": [r for _, r in outcomes],
    })
    assert ray.get(consensus.learn.remote(table)).num_rows == 2 * len(outcomes)


def test_the_served_signal_is_the_traded_signal_after_learning(served: Served) -> None:
    """/v1/signal and gRPC Signal decide with the live consensus's learned weights and
    calibration, through the function its trading path decides with; without one they say
    they use default weights."""
    from actors.consensus import live_consensus, remote_consensus
    from actors.gateway import DEFAULT_WEIGHTS_NOTE, LIVE_RETRY_S
    from tests.serving_app import PASSPHRASE

    body = {"features": served.columns(), "latest_only": True}
    deadline = time.monotonic() + 30
    while live_consensus() is not None:  # an earlier test's consensus is going away
        assert time.monotonic() < deadline, "a live consensus from another test is still registered"
        time.sleep(0.2)
    time.sleep(LIVE_RETRY_S)
    r = served.http.post("/v1/signal", json=body, headers=AUTH).json()
    assert r["consensus"] == "default-weights" and all(s["reason"].startswith(DEFAULT_WEIGHTS_NOTE) for s in r["signals"])

    cfg = served.cfg.set("consensus.calibrate_every", 20).set("consensus.calibration_min", 40)
    consensus = remote_consensus(num_cpus=0).remote(cfg, served.agents, "consensus-served", passphrase=PASSPHRASE)
    try:
        assert live_consensus() is not None
        request_ts = max(v["ts_ns"] for v in r["votes"])
        _teach(consensus, served.agents, request_ts)
        weights = ray.get(consensus.weights.remote())
        assert ray.get(consensus.calibration.remote()) and weights != dict.fromkeys(served.agents, 1.0)
        deadline = time.monotonic() + 30
        while (r := served.http.post("/v1/signal", json=body, headers=AUTH).json())["consensus"] != "live":
            assert time.monotonic() < deadline, "the gateway never found the live consensus"
            time.sleep(0.5)
        served_signals = sorted(r["signals"], key=lambda s: s["symbol"])
        traded = ray.get(consensus.on_votes.remote(_exact_votes(served))).to_pylist()
        traded = sorted((t for t in traded if t["symbol"] != "TEACH"), key=lambda t: t["symbol"])
        assert len(served_signals) == len(traded) == 4
        for s, t in zip(served_signals, traded, strict=True):
            assert (s["symbol"], s["ts_ns"], s["action"], s["decided"], s["votes"], s["reason"]) == (
                t["symbol"], t["ts"].value, t["action"], t["decided"], t["votes"], t["reason"])
            assert s["confidence"] == pytest.approx(t["confidence"], abs=1e-6)
            assert f"w={weights[served.agents[1]]:.3f}" in s["reason"]  # the learned weight, not 1.000
        grpc_reply = served.grpc_stub.Signal(pb.VotesRequest(arrow_ipc=_ipc(served.window()), latest_only=True),
                                             metadata=META)
        assert sorted((g.symbol, g.action, g.reason) for g in grpc_reply.signals) == [
            (t["symbol"], t["action"], t["reason"]) for t in traded]
    finally:
        ray.kill(consensus, no_restart=True)


def _bad_bodies(served: Served) -> list[tuple[Any, str]]:
    cols = served.columns()
    short = dict(cols, rsi_14=cols["rsi_14"][:-1])
    text = dict(cols, macd=["high"] * len(cols["macd"]))
    naive = dict(cols, ts=["2020-01-01T00:00:00"] * len(cols["ts"]))
    unknown = dict(cols, rsi14=cols["rsi_14"])
    missing = {k: v for k, v in cols.items() if k != "atr_14"}
    backwards = dict(cols, ts=list(reversed(cols["ts"])))
    inf = dict(cols, ret_1=[math.inf] * len(cols["ret_1"]))  # sent as the token Infinity
    return [
        (b"{not json", "body"),
        (json.dumps([1, 2]).encode(), "body"),
        ({"featurez": cols}, "features"),
        ({"features": cols, "extra": 1}, "extra"),
        ({"features": cols, "agent": "gpt"}, "agent"),
        ({"features": cols, "latest_only": "maybe"}, "latest_only"),
        ({"features": short}, "rsi_14"),
        ({"features": text}, "macd"),
        ({"features": naive}, "ts"),
        ({"features": unknown}, "rsi14"),
        ({"features": missing}, "atr_14"),
        ({"features": backwards}, "ts"),
        ({"features": inf}, "ret_1"),
        ({"features": {"symbol": [], "ts": [], **{n: [] for n in F.FEATURE_NAMES}}}, "symbol"),
    ]


def test_bad_payloads_get_400_naming_the_field_never_500(served: Served) -> None:
    for body, field in _bad_bodies(served):
        for path in ("/v1/votes", "/v1/signal"):
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            r = served.http.post(path, content=raw, headers={**AUTH, "Content-Type": "application/json"})
            assert r.status_code == 400, (field, r.status_code, r.text)
            assert r.json()["field"].split(".")[-1] == field, (field, r.text)
    r = served.http.post("/v1/votes", content=b"\x00garbage", headers={**AUTH, "Content-Type": serving.ARROW_STREAM})
    assert r.status_code == 400 and r.json()["field"] == "arrow_ipc"


def test_request_size_limit(served: Served) -> None:
    big = b"x" * (served.cfg.serving.max_request_bytes + 1)
    r = served.http.post("/v1/votes", content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413


# ---------------------------------------------------------------------------- gRPC

META = [("authorization", f"Bearer {TOKEN}")]


def test_grpc_auth_votes_signal_models(served: Served) -> None:
    req = pb.VotesRequest(arrow_ipc=_ipc(served.window()), latest_only=True)
    with pytest.raises(grpc.RpcError) as exc:
        served.grpc_stub.Votes(req)
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as exc:
        served.grpc_stub.Models(pb.ModelsRequest(), metadata=[("authorization", "Bearer nope")])
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reply = served.grpc_stub.Votes(req, metadata=META)
    assert len(reply.votes) == 8 and {v.agent for v in reply.votes} == {"lstm", "xgboost"}
    signal = served.grpc_stub.Signal(req, metadata=META)
    assert len(signal.signals) == 4 and all(s.reason for s in signal.signals)
    models = served.grpc_stub.Models(pb.ModelsRequest(), metadata=META)
    assert {m.agent for m in models.models} == {"lstm", "xgboost"}
    t = served.window()
    rows = pb.FeatureRows(
        feature_names=list(F.FEATURE_NAMES),
        rows=[
            pb.FeatureRow(symbol=str(s), ts_ns=ts, values=[t.column(n)[i].as_py() for n in F.FEATURE_NAMES])
            for i, (s, ts) in enumerate(zip(t.column("symbol").to_pylist(), t.column("ts").cast(pa.int64()).to_pylist(), strict=True))
        ],
    )
    by_rows = served.grpc_stub.Votes(pb.VotesRequest(rows=rows, latest_only=True, agent="xgboost"), metadata=META)
    assert len(by_rows.votes) == 4


@pytest.mark.parametrize(
    "request_,field",
    [
        (pb.VotesRequest(arrow_ipc=b"junk"), "arrow_ipc"),
        (pb.VotesRequest(), "features"),
        (pb.VotesRequest(rows=pb.FeatureRows(feature_names=["ret_1"], rows=[pb.FeatureRow(symbol="A", ts_ns=1, values=[0.1])])), "ret_5"),
        (pb.VotesRequest(rows=pb.FeatureRows(feature_names=["ret_1"], rows=[pb.FeatureRow(symbol="A", ts_ns=1, values=[0.1, 2])])), "values"),
    ],
)
def test_grpc_invalid_argument_names_the_field(served: Served, request_: pb.VotesRequest, field: str) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        served.grpc_stub.Votes(request_, metadata=META)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith(field)
    with pytest.raises(grpc.RpcError) as exc:
        served.grpc_stub.Votes(pb.VotesRequest(arrow_ipc=_ipc(served.window()), agent="nobody"), metadata=META)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "agent" in exc.value.details()


# ---------------------------------------------------------------------------- swaps


class Traffic:
    """Clients posting continuously; every response is recorded."""

    def __init__(self, served: Served, clients: int = 4) -> None:
        self.body = {"features": served.columns(), "latest_only": True, "agent": "xgboost"}
        self.base = str(served.http.base_url)
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.versions: list[str] = []
        self.latencies_ms: list[float] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as c:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/votes", json=self.body, headers=AUTH)
                    ok = r.status_code == 200
                    seen = {v["model_version"] for v in r.json()["votes"]} if ok else set()
                except (httpx.HTTPError, ValueError) as exc:
                    ok, seen, r = False, set(), None
                    self.failures.append(repr(exc))
                dt = (time.perf_counter() - t0) * 1000
                with self.lock:
                    self.latencies_ms.append(dt)
                    self.versions.extend(sorted(seen))
                    if not ok and r is not None:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def wait_requests(self, n: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        start = len(self.latencies_ms)
        while len(self.latencies_ms) < start + n and time.monotonic() < deadline:
            time.sleep(0.05)


def _live_version(served: Served, agent: str) -> str:
    models = served.http.get("/v1/models", headers=AUTH).json()["models"]
    return next(m["version"] for m in models if m["agent"] == agent)


def test_hot_swap_under_continuous_traffic_has_zero_failures(served: Served) -> None:
    v1, v2 = served.versions["xgboost"]
    with Traffic(served) as traffic:
        traffic.wait_requests(20)
        for target in (v2, v1, v2):
            served.swap({"xgboost": target})
            assert _live_version(served, "xgboost") == target
            traffic.wait_requests(20)
    assert traffic.failures == []
    assert {v1, v2} <= set(traffic.versions)
    after = served.http.post("/v1/votes", json=traffic.body, headers=AUTH).json()["votes"]
    assert {v["model_version"] for v in after} == {v2}


def test_tampered_version_is_refused_and_old_one_keeps_serving(served: Served) -> None:
    v3 = str(train_agent("xgboost", served.features, served.cfg, registry=served.registry, seed=9).version)
    booster = next(p for p in (Path(served.registry.root) / "xgboost" / v3).iterdir() if p.name.startswith("booster.ubj"))
    data = bytearray(booster.read_bytes())
    data[len(data) // 2] ^= 0xFF
    booster.write_bytes(bytes(data))
    before = _live_version(served, "xgboost")
    with Traffic(served, clients=2) as traffic:
        traffic.wait_requests(10)
        with pytest.raises(IntegrityError, match="refused"):  # the driver checks before deploying
            served.swap({"xgboost": v3})
        served.push_unverified({"xgboost": v3})  # past that check, the replicas refuse it too
        traffic.wait_requests(10)
    assert traffic.failures == []
    models = {m["agent"]: m for m in served.http.get("/v1/models", headers=AUTH).json()["models"]}
    assert models["xgboost"]["version"] == before and models["xgboost"]["status"] == "refused"
    assert "IntegrityError" in models["xgboost"]["swap_error"]
    assert v3 not in traffic.versions


# ---------------------------------------------------------------------------- agents


def test_agent_actor_predicts_through_its_deployment_and_promotes_new_versions(served: Served) -> None:
    import ray

    from actors.agent import remote_agent
    from tinywindow.crypto.journal import Journal

    # a gate that promotes any challenger: this test is about putting a promoted version live
    # on Serve (the gate's own decisions are tested in tests/ray/test_agent_actor.py)
    doc = served.cfg.set("agents.promotion.margin", -100.0).set("agents.promotion.max_drawdown_worsening", 1.0)
    actor = remote_agent(num_cpus=0).remote("xgboost", doc.model_dump(mode="json"),
                                            passphrase="serving test passphrase")
    live = ray.get(actor.attach_serving.remote(serving.APP_NAME))
    assert live == _live_version(served, "xgboost")
    window = served.window()
    via_serve = ray.get(actor.predict.remote(window, True))
    direct = served.registry.load("xgboost", live).predict(window, latest_only=True)
    assert via_serve.column("action").equals(direct.column("action"))
    assert set(via_serve.column("model_version").to_pylist()) == {live}
    big = ray.get(actor.predict.remote(served.features))  # a large table goes as a Table
    assert big.num_rows == served.registry.load("xgboost", live).predict(served.features).num_rows
    result = ray.get(actor.retrain.remote(served.features))
    assert result["promote"], result["reason"]
    assert _live_version(served, "xgboost") == result["version"] != live  # promoted, live
    votes = served.http.post("/v1/votes", json={"features": served.columns(), "agent": "xgboost",
                                                "latest_only": True}, headers=AUTH).json()["votes"]
    assert {v["model_version"] for v in votes} == {result["version"]}
    ray.kill(actor)
    keys = KeyStore.open(served.cfg.path("keys"), "serving test passphrase")
    from tinywindow.errors import TransientError

    deadline = time.monotonic() + 30
    while True:  # the killed actor's process lets go of the journal lock shortly after
        try:
            journal = Journal.from_config(served.cfg.crypto, served.cfg.data_dir, "agent-xgboost", keys)
            break
        except TransientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with journal:
        promotions = [r.payload for r in journal.records() if r.kind == "model_promotion"]
    assert promotions[-1] == {"agent": "xgboost", "version": result["version"], "reason": "gate", "served": True}


# ---------------------------------------------------------------------------- load


def test_load_concurrent_clients_zero_errors(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """N concurrent clients for TW_LOAD_TEST_S seconds (20 by default): no errors."""
    served.swap({"xgboost": served.versions["xgboost"][0]})
    duration = float(os.environ.get("TW_LOAD_TEST_S", "20"))
    clients = int(os.environ.get("TW_LOAD_TEST_CLIENTS", "8"))
    with Traffic(served, clients=clients) as traffic:
        time.sleep(duration)  # the load test's length is the point here, not a wait for state
    lat = sorted(traffic.latencies_ms)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    with capsys.disabled():
        print(f"\nload test: {clients} clients x {duration:.0f}s: {len(lat)} requests, "
              f"{len(lat) / duration:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {len(traffic.failures)}")
    assert traffic.failures == []
    assert len(lat) > clients
