"""The agents trained for real on the shared cluster: PPO learns, AgentActor versions and
retrains, the demo entry point publishes all three agents.

Budgets are tiny (a few thousand env steps); the planted-signal table makes learning
checkable in seconds: an untrained policy agrees with the signal ~50-65% of the time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import ray

from actors.agent import remote_agent
from actors.training import TEST_BUDGET, bundled_features, train_demo
from actors.training.ppo import train_ppo
from tests.unit.models.synth import NAMES, planted_features
from tests.unit.models.test_learning import agent_outcomes
from tinywindow.config import Config
from tinywindow.contracts import VOTES, validate
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import DataError
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
            "agents": {"window": WINDOW, "valid_bars": 60, "retrain_bars": 250, "retrain_iterations": 2,
                       "promotion": {"eval_bars": 60, "embargo_bars": WINDOW}},
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


ORIGINAL_CUT = 250  # the first version trains on the planted table's first 250 bars


def _first_bars(table: pa.Table, n: int) -> pa.Table:
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    return table.filter(pa.array(ts < np.unique(ts)[n]))


def _inverted_before(table: pa.Table, bar: int | None = None) -> pa.Table:
    """The planted signal negated (before ``bar`` only, when given): a model trained on it
    trades the true signal backwards."""
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    cut = np.unique(ts)[bar] if bar is not None else ts.max() + 1
    i = table.column_names.index("signal")
    sig = table.column("signal").to_numpy(zero_copy_only=False)
    return table.set_column(i, "signal", pa.array(np.where(ts < cut, -sig, sig).astype(np.float32)))


def _registry(cfg: Config) -> ModelRegistry:
    """Loading needs the unlocked keystore (model files are encrypted)."""
    store = KeyStore.open(Path(cfg.data_dir) / "keys", PASSPHRASE)
    return ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, store, read_only=True)


def test_agent_actor_learns_from_its_outcomes_and_rebuilds_them_at_start_up(cfg: Config, planted: pa.Table) -> None:
    actor_cls = remote_agent(num_cpus=0.25)
    actor = actor_cls.remote("xgboost", cfg, passphrase=PASSPHRASE, overrides=TEST_BUDGET["xgboost"])
    assert ray.get(actor.version.remote()) is None
    first = ray.get(actor.train.remote(ray.put(_first_bars(planted, ORIGINAL_CUT))))
    assert first["version"] == "v0001" and first["validation"]["hit_rate"] > 0.9
    votes = validate(ray.get(actor.predict.remote(ray.put(planted))), VOTES)
    assert set(votes.column("model_version").to_pylist()) == {"v0001"}

    # what v0001 earned on the bars traded after its training cut
    outcomes = agent_outcomes(to_series(planted), ORIGINAL_CUT, 399)
    with pytest.raises(DataError, match="belongs to agent 'lstm'"):
        ray.get(actor.feedback.remote(outcomes.set_column(2, "agent", pa.array(["lstm"] * outcomes.num_rows))))
    fb = ray.get(actor.feedback.remote(ray.put(outcomes)))
    assert fb["new"] == outcomes.num_rows and fb["outcomes"] == outcomes.num_rows

    decided = ray.get(actor.retrain.remote(ray.put(planted)))  # features up to the retrain point
    assert decided["version"] == "v0002" and decided["parent"] == "v0001"
    assert decided["outcomes"]["matched"] > 0 and decided["outcomes"]["first"] >= "2010-09-11"  # after the cut
    assert decided["champion"]["version"] == "v0001" and decided["challenger"]["version"] == "v0002"
    meta = _registry(cfg).metadata("xgboost", "v0002")
    assert meta["train"]["outcomes"]["matched"] == decided["outcomes"]["matched"]
    assert meta["metrics"]["gate"]["challenger"]["sharpe"] == pytest.approx(meta["metrics"]["validation"]["ALL"]["sharpe"], abs=1e-3)
    assert meta["promotion"]["promote"] == decided["promote"]

    # the same retrain without outcomes gives another model: the outcomes changed it
    other = cfg.set("data_dir", str(Path(cfg.data_dir) / "no-outcomes"))
    KeyStore.init(Path(other.data_dir) / "keys", PASSPHRASE, scrypt_log2_n=10)
    plain = actor_cls.remote("xgboost", other, passphrase=PASSPHRASE, overrides=TEST_BUDGET["xgboost"])
    ray.get(plain.train.remote(ray.put(_first_bars(planted, ORIGINAL_CUT))))
    assert ray.get(plain.retrain.remote(ray.put(planted)))["outcomes"]["matched"] == 0
    with_outcomes = _registry(cfg).load("xgboost", "v0002").predict(planted)
    without = _registry(other).load("xgboost", "v0002").predict(planted)
    assert not np.array_equal(with_outcomes.column("confidence").to_numpy(), without.column("confidence").to_numpy())
    ray.kill(plain)

    # a restarted actor rebuilds the same buffer from its journal and serves what it served
    serving = ray.get(actor.version.remote())
    before = ray.get(actor.status.remote())["experience"]
    ray.kill(actor)
    again = actor_cls.remote("xgboost", cfg, passphrase=PASSPHRASE)
    assert ray.get(again.version.remote()) == serving
    assert ray.get(again.status.remote())["experience"] == before
    assert len(ray.get(again.history.remote())) == 1
    ray.kill(again)

    # a tampered version is skipped at start-up
    weights = next((Path(cfg.data_dir) / "models" / "xgboost" / "v0002").glob("booster.ubj*"))
    weights.write_bytes(weights.read_bytes() + b" ")
    third = actor_cls.remote("xgboost", cfg, passphrase=PASSPHRASE)
    assert ray.get(third.version.remote()) == "v0001"
    assert [v["status"][:7] for v in ray.get(third.versions.remote())] == ["ok", "refused"]
    ray.kill(third)


def test_the_gate_rejects_a_worse_challenger_and_promotes_a_better_one(cfg: Config, planted: pa.Table) -> None:
    actor = remote_agent(num_cpus=0.25).remote("xgboost", cfg, passphrase=PASSPHRASE, overrides=TEST_BUDGET["xgboost"])
    ray.get(actor.train.remote(ray.put(planted)))  # v0001 follows the planted signal
    # a challenger trained where the signal ran backwards, scored where it runs forwards
    rejected = ray.get(actor.retrain.remote(ray.put(_inverted_before(planted, 330))))
    assert rejected["version"] == "v0002" and not rejected["promote"]
    assert rejected["challenger"]["sharpe"] < 0 < rejected["champion"]["sharpe"]
    assert ray.get(actor.version.remote()) == "v0001"  # the champion keeps serving
    votes = ray.get(actor.predict.remote(ray.put(planted), latest_only=True))
    assert set(votes.column("model_version").to_pylist()) == {"v0001"}

    ray.get(actor.use.remote("v0002"))  # a bad champion ...
    promoted = ray.get(actor.retrain.remote(ray.put(planted)))  # ... beaten by a good challenger
    assert promoted["version"] == "v0003" and promoted["promote"] and promoted["parent"] == "v0002"
    assert promoted["challenger"]["sharpe"] > promoted["champion"]["sharpe"]
    assert ray.get(actor.version.remote()) == "v0003"
    versions = {v["version"]: v for v in ray.get(actor.versions.remote())}
    assert versions["v0002"]["promotion"]["promote"] is False and versions["v0003"]["promotion"]["promote"] is True
    assert versions["v0002"]["gate"]["champion"]["version"] == "v0001"
    decisions = ray.get(actor.history.remote())  # read back from the agent's signed journal
    ray.kill(actor)

    assert [(d["version"], d["promote"]) for d in decisions] == [("v0002", False), ("v0003", True)]
    for d in decisions:  # both scores journaled
        assert d["champion"]["sharpe"] is not None and d["challenger"]["sharpe"] is not None
    # a restart does not serve the rejected version, nor forget the promoted one
    again = remote_agent(num_cpus=0.25).remote("xgboost", cfg, passphrase=PASSPHRASE)
    assert ray.get(again.version.remote()) == "v0003"
    ray.kill(again)


def test_rl_retrain_fine_tunes_the_serving_weights_on_realized_rewards(cfg: Config, planted: pa.Table) -> None:
    from actors.training.challenger import train_challenger
    from tinywindow.models.retrain import RetrainPolicy

    _torch_one_thread()
    actor = remote_agent(num_cpus=0.25).remote("lstm", cfg, passphrase=PASSPHRASE, overrides=TEST_BUDGET["lstm"])
    first = ray.get(actor.train.remote(ray.put(_first_bars(planted, ORIGINAL_CUT))))
    assert first["train"]["warm_start"] is False
    outcomes = agent_outcomes(to_series(planted), ORIGINAL_CUT, 399)
    outcomes = outcomes.set_column(2, "agent", pa.array(["lstm"] * outcomes.num_rows))
    ray.get(actor.feedback.remote(outcomes))
    second = ray.get(actor.retrain.remote(ray.put(planted)))
    assert second["version"] == "v0002" and second["parent"] == "v0001"
    assert second["train"]["warm_start"] is True and second["train"]["iterations"] == 2
    assert second["outcomes"]["matched"] > 0
    meta = _registry(cfg).metadata("lstm", "v0002")
    assert meta["data"]["train"]["rows"] <= 3 * 250  # the latest bars only
    ray.kill(actor)

    # the same fine-tune with and without the outcomes: the realized rewards change the weights
    registry = _registry(cfg)
    champion = registry.load("lstm", "v0001")
    plan = RetrainPolicy("lstm", cfg.agents).plan(warm=True, serving="v0001")
    runs = [
        train_challenger("lstm", planted, cfg, plan, champion=champion, outcomes=o, overrides=TEST_BUDGET["lstm"])
        for o in (outcomes, None, outcomes)
    ]
    w = [r.result.predictor.weights() for r in runs]  # type: ignore[attr-defined]
    assert any(not np.array_equal(np.asarray(w[0][k]), np.asarray(w[1][k])) for k in w[0])
    assert all(np.array_equal(np.asarray(w[0][k]), np.asarray(w[2][k])) for k in w[0])  # seeded: reproducible


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
