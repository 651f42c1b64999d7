"""The agents trained for real on the shared cluster: PPO learns, AgentActor versions and
retrains, the demo entry point publishes all three agents.

Budgets are tiny (a few thousand env steps); the planted-signal table makes learning
checkable in seconds: an untrained policy agrees with the signal ~50-65% of the time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import ray

from actors.agent import remote_agent
from actors.training import TEST_BUDGET, bundled_features, train_demo
from actors.training.ppo import train_ppo
from tests.unit.models.synth import NAMES, planted_features
from tinywindow.config import Config
from tinywindow.contracts import VOTES, validate
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.evaluation import walkforward as wf
from tinywindow.models.params import PPOParams
from tinywindow.models.registry import ModelRegistry
from tinywindow.models.windows import fit_normalizer, to_series

pytestmark = pytest.mark.usefixtures("ray_cluster")

PASSPHRASE = "agent-actor-test"
WINDOW = 8


@pytest.fixture(scope="module")
def planted() -> pa.Table:
    return planted_features(n_symbols=3, n_bars=400, seed=0)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    KeyStore.init(tmp_path / "keys", PASSPHRASE, scrypt_log2_n=10)
    return Config().model_validate(
        {
            "data_dir": str(tmp_path),
            "agents": {"window": WINDOW, "valid_bars": 60, "retrain_every": 40, "retrain_bars": 250},
        }
    )


def _torch_one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.mark.parametrize("agent", ["lstm", "transformer"])
def test_ppo_learns_a_planted_signal(agent: str, planted: pa.Table, seed: int) -> None:
    _torch_one_thread()
    series = to_series(planted)
    cal = wf.calendar(series)
    split = wf.Split(int(cal[300]), int(cal[300 + WINDOW]), int(cal[-1]) + 1)
    train = wf.training_part(series, split)
    norm = fit_normalizer(train, NAMES)
    vset = wf.ValidationSet.build(series, split, WINDOW)
    params = PPOParams(
        iterations=6, train_batch=512, minibatch=128, epochs=4, num_envs=4, episode_len=64,
        hidden=16, heads=2, lr=3e-3, gamma=0.5, entropy_coeff=0.0,
    )
    predictor, stats = train_ppo(agent, train, norm, WINDOW, 0.0005, params, seed=seed)
    assert stats.env_steps >= 6 * 512
    returns = stats.episode_return_mean
    assert returns[-1] > returns[0] + 10  # reward x 100: following the signal earns ~1 per bar
    out = vset.evaluate(predictor, 0.0005)[wf.ALL]
    assert out.hit_rate > 0.95 and out.sharpe > 5
    votes = validate(predictor.predict(planted), VOTES)
    assert np.mean(votes.column("confidence").to_numpy()) > 0.8  # untrained: ~0.34


def _outcomes(features: pa.Table, n: int) -> pa.Table:
    """Outcomes as the portfolio reports them: the symbol's next-bar return per decision."""
    s = to_series(features)[0]
    idx = np.arange(len(s) - n - 1, len(s) - 1)
    return pa.table({
        "symbol": [s.symbol] * n,
        "ts": pa.array(s.ts[idx], pa.timestamp("ns", tz="UTC")),
        "action": pa.array(np.ones(n, np.int8)),
        "realized_return": s.fwd_ret[idx],
    })


def _wait_for(actor: Any, predicate: Any, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status: dict[str, Any] = ray.get(actor.wait_idle.remote(timeout_s=5.0))
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last status {status}")


def test_agent_actor_trains_serves_and_retrains_from_feedback(cfg: Config, planted: pa.Table) -> None:
    actor_cls = remote_agent(num_cpus=0.25)
    ref = ray.put(planted)
    actor = actor_cls.remote("xgboost", cfg, passphrase=PASSPHRASE, overrides=TEST_BUDGET["xgboost"])
    assert ray.get(actor.version.remote()) is None
    first = ray.get(actor.train.remote(ref))
    assert first["version"] == "v0001" and first["validation"]["hit_rate"] > 0.9
    votes = validate(ray.get(actor.predict.remote(ref)), VOTES)
    assert set(votes.column("model_version").to_pylist()) == {"v0001"}

    fb = ray.get(actor.feedback.remote(ray.put(_outcomes(planted, 50))))
    assert fb["new"] == 50 and fb["retrain_started"]
    status = _wait_for(actor, lambda s: not s["retraining"])
    assert status["version"] == "v0002" and status["last_error"] is None
    assert status["experience"]["pending"] == 0
    versions = ray.get(actor.versions.remote())
    assert [(v["version"], v["status"], v["serving"]) for v in versions] == [("v0001", "ok", False), ("v0002", "ok", True)]
    assert versions[1]["parent"] == "v0001"
    meta = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, read_only=True).metadata("xgboost", "v0002")
    assert meta["train"]["outcomes_matched"] > 0 and meta["feedback"]["used_as"] == "sample weights"

    # a restarted actor comes back serving the newest version that verifies
    ray.kill(actor)
    weights = Path(cfg.data_dir) / "models" / "xgboost" / "v0002" / "booster.ubj"
    weights.write_bytes(weights.read_bytes() + b" ")
    again = actor_cls.remote("xgboost", cfg, passphrase=PASSPHRASE)
    assert ray.get(again.version.remote()) == "v0001"  # v0002 was tampered with: skipped
    assert [v["status"][:7] for v in ray.get(again.versions.remote())] == ["ok", "refused"]
    ray.kill(again)


def test_rl_agent_actor_warm_starts_its_retrain(cfg: Config, planted: pa.Table) -> None:
    actor = remote_agent(num_cpus=0.25).remote(
        "lstm", cfg, passphrase=PASSPHRASE, overrides=TEST_BUDGET["lstm"], auto_retrain=False
    )
    ref = ray.put(planted)
    first = ray.get(actor.train.remote(ref))
    assert first["train"]["warm_start"] is False
    fb = ray.get(actor.feedback.remote(ray.put(_outcomes(planted, 45))))
    assert not fb["retrain_started"]  # auto_retrain off: the caller decides
    second = ray.get(actor.retrain.remote(ref))
    assert second["version"] == "v0002" and second["parent"] == "v0001"
    assert second["train"]["warm_start"] is True
    assert second["data"]["train"]["rows"] < first["data"]["train"]["rows"]  # the latest bars only
    votes = validate(ray.get(actor.predict.remote(ref, latest_only=True)), VOTES)
    assert votes.num_rows == 3 and set(votes.column("model_version").to_pylist()) == {"v0002"}
    ray.kill(actor)


def test_demo_training_publishes_all_three_agents(cfg: Config) -> None:
    _torch_one_thread()
    cfg = cfg.set("agents.window", 16).set("agents.valid_bars", 120)
    store = KeyStore.open(Path(cfg.data_dir) / "keys", PASSPHRASE)
    registry = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, store)
    features = bundled_features(["sp500", "goog"])
    result = train_demo(cfg, registry, features=features, budget=TEST_BUDGET, first_train_end="2012-01-01", threads=1)
    assert result.versions == {"lstm": "v0001", "transformer": "v0001", "xgboost": "v0001"}
    agents = {r["agent"] for r in result.report.rows}
    assert agents == {"lstm", "transformer", "xgboost", wf.BUY_AND_HOLD}
    assert {r["symbol"] for r in result.report.rows} == {"SP500", "GOOG", wf.ALL}
    for agent, version in result.versions.items():
        meta = registry.metadata(agent, version)
        assert meta["data"]["train"]["end"] < "2012-01-01"
        assert meta["data"]["validation"]["valid_start"] >= "2012-01-01"
        assert "ALL" in meta["metrics"]["validation"]
        votes = registry.load(agent, version).predict(features, latest_only=True)
        assert validate(votes, VOTES).num_rows == 2
