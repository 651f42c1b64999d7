"""The engine's metrics (``actors/metrics.py``) reach Ray's Prometheus endpoint: a short paper
flow through the actor graph (one scripted agent, the consensus, the portfolio; its first
bars have no volatility estimate, so risk denies them) and one xgboost retrain, then every
metric is scraped over HTTP from each node's metrics agent with its tags and a value > 0."""

from __future__ import annotations

import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from actors.agent import remote_agent
from actors.consensus import remote_consensus
from actors.graph import remote_graph
from actors.metrics import METRICS
from actors.portfolio import remote_portfolio
from tests.unit.models.synth import planted_features
from tinywindow.config import Config
from tinywindow.contracts import VOTES, validate
from tinywindow.crypto.keystore import KeyStore
from tinywindow.data.sources.synthetic import generate
from tinywindow.models.params import TEST_BUDGET

pytestmark = pytest.mark.usefixtures("ray_cluster")

PASSPHRASE = "metrics test passphrase"
N_BARS = 20  # the first min_vol_obs (5) bars have no volatility estimate: risk denies them
EXPORT_DEADLINE_S = 90.0  # the agent exports every few seconds; a cold 2-core machine is slower
NAMESPACE = "tinywindow-metrics-test"


class ScriptedAgent:
    """Votes the direction of each symbol's bar (close against open), sure enough to trade."""

    def predict(self, features: pa.Table, latest_only: bool = False) -> pa.Table:
        ts = features.column("ts").cast(pa.int64())
        at = features.filter(pc.equal(ts, pc.max(ts)))
        n = at.num_rows
        up = pc.greater_equal(at.column("close"), at.column("open")).to_pylist()
        return validate(pa.table({
            "symbol": at.column("symbol").cast(pa.string()), "ts": at.column("ts"),
            "agent": ["scripted"] * n, "model_version": ["v1"] * n,
            "action": pa.array([1 if u else -1 for u in up], pa.int8()),
            "confidence": pa.array([0.8] * n, pa.float32()),
        }), VOTES)

    def feedback_own(self, agent_outcomes: pa.Table) -> int:
        return agent_outcomes.num_rows

    def explain_and_record(self, features: pa.Table, keys: pa.Table, top_k: int = 5) -> int:
        return 0  # a scripted agent has no model to explain (the graph asks after each bar's orders)


def _cfg(root: Path, run: str) -> Config:
    KeyStore.init(root / "keys", PASSPHRASE, scrypt_log2_n=10)
    return Config().model_validate({
        "data_dir": str(root),
        "crypto": {"journal_fsync": False},
        "run": {"name": run},
        "consensus": {"threshold": 0.0, "quorum": 1, "max_disagreement": 1.0},
        "risk": {"max_position": 0.3, "max_gross": 1.0, "max_net": 1.0, "collar": 0.1, "confidence_floor": 0.3,
                 "max_weight": 0.3, "target_vol": 0.5, "vol_model": "ewma", "min_vol_obs": 5},
        "portfolio": {"initial_cash_usd": 1_000_000, "commission_bps": 5, "slippage_bps": 5},
        "agents": {"window": 8, "valid_bars": 60, "retrain_bars": 250, "retrain_iterations": 2,
                   "promotion": {"eval_bars": 60, "embargo_bars": 8}},
    })


def scrape() -> list[Sample]:
    """Every sample on every live node's Prometheus endpoint (``ray.nodes()``' MetricsExportPort
    on the node's address: the metrics agent Ray starts beside each raylet)."""
    samples: list[Sample] = []
    for node in ray.nodes():
        port = node.get("MetricsExportPort")
        if not node.get("Alive") or not port:
            continue
        url = f"http://{node['NodeManagerAddress']}:{port}/metrics"
        try:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            continue  # not up yet: the poll asks again
        for family in text_string_to_metric_families(text):
            samples.extend(family.samples)
    return samples


# each metric: the series to find (as exported: ``ray_`` prefix, counters ``_total``) and the
# tag values it must carry beyond ``run``
EXPECTED: dict[str, list[tuple[str, dict[str, str]]]] = {
    "tinywindow_decisions": [("ray_tinywindow_decisions_total", {"mode": "paper", "outcome": "long"}),
                             ("ray_tinywindow_decisions_total", {"mode": "paper", "outcome": "short"})],
    "tinywindow_decision_latency_ms": [("ray_tinywindow_decision_latency_ms_count", {"mode": "paper"}),
                                       ("ray_tinywindow_decision_latency_ms_bucket", {"mode": "paper", "le": "+Inf"})],
    "tinywindow_equity_usd": [("ray_tinywindow_equity_usd", {"mode": "paper"})],
    "tinywindow_drawdown_ratio": [("ray_tinywindow_drawdown_ratio", {"mode": "paper"})],
    "tinywindow_orders": [("ray_tinywindow_orders_total", {"mode": "paper", "side": "buy"}),
                          ("ray_tinywindow_orders_total", {"mode": "paper", "side": "sell"})],
    "tinywindow_risk_denials": [("ray_tinywindow_risk_denials_total",
                                 {"mode": "paper", "reason": "NO_VOLATILITY", "action": "denied"})],
    "tinywindow_retrains": [("ray_tinywindow_retrains_total", {"agent": "xgboost"})],
    "tinywindow_promotions": [("ray_tinywindow_promotions_total", {"agent": "xgboost"})],
}


def _missing(samples: list[Sample], run: str) -> list[str]:
    """The expected series not (yet) exported with a value > 0, each with why."""
    tag_keys = {m.name: set(m.tag_keys) for m in METRICS}
    missing = []
    for metric, wanted in EXPECTED.items():
        for name, tags in wanted:
            found = [s for s in samples if s.name == name and s.labels.get("run") == run
                     and all(s.labels.get(k) == v for k, v in tags.items())]
            if not any(s.value > 0 and tag_keys[metric] <= set(s.labels) for s in found):
                missing.append(f"{name}{tags}: {[(s.labels, s.value) for s in found] or 'no series'}")
    return missing


def test_every_engine_metric_reaches_the_prometheus_endpoint(tmp_path: Path) -> None:
    assert set(EXPECTED) == {m.name for m in METRICS}  # a new metric needs its check here
    run = f"metrics{uuid.uuid4().hex[:8]}"  # this test's series, whatever else the cluster ran
    cfg = _cfg(tmp_path, run)
    bars = generate(3, N_BARS, seed=4)
    times = sorted(set(bars.column("ts").cast(pa.int64()).to_pylist()))
    made: list[Any] = []
    try:
        agent = ray.remote(ScriptedAgent).options(num_cpus=0).remote()
        consensus = remote_consensus(num_cpus=0, live=False).remote(
            cfg, ["scripted"], cfg.run.actor_name("paper", "consensus"), passphrase=PASSPHRASE)
        portfolio = remote_portfolio(num_cpus=0).remote(cfg, cfg.run.actor_name("paper", "portfolio"),
                                                        passphrase=PASSPHRASE)
        graph = remote_graph(cfg.run.actor_name("paper", "graph"), NAMESPACE).remote(
            cfg.run.actor_name("paper", "graph"), ["syn"], {"scripted": agent}, consensus, portfolio)
        made += [agent, consensus, portfolio, graph]
        for ts in times:
            at = bars.filter(pc.equal(bars.column("ts").cast(pa.int64()), ts))
            assert ray.get(graph.on_bar.remote("syn", ts, at, at), timeout=120)
        assert ray.get(graph.finish.remote("syn"), timeout=120) == "finished"
        status = ray.get(graph.status.remote())
        assert status["bars"] == N_BARS and status["orders"] > 0

        xgb = remote_agent(num_cpus=0.25).remote("xgboost", cfg, passphrase=PASSPHRASE,
                                                 overrides=TEST_BUDGET["xgboost"])
        made.append(xgb)
        planted = ray.put(planted_features(n_symbols=3, n_bars=400, seed=0))
        ray.get(xgb.train.remote(planted), timeout=300)
        decided = ray.get(xgb.retrain.remote(planted), timeout=300)  # started, gated, decided
        assert decided["version"] == "v0002"

        # gauges are exported while their actor lives: scrape before anything is killed
        deadline = time.monotonic() + EXPORT_DEADLINE_S
        while missing := _missing(scrape(), run):
            if time.monotonic() > deadline:
                raise AssertionError(f"not exported within {EXPORT_DEADLINE_S:.0f}s:\n" + "\n".join(missing))
            time.sleep(1.0)
    finally:
        for actor in made:
            ray.kill(actor, no_restart=True)
