"""Tune sweeps on two CPUs: ASHA on validation Sharpe, best parameters stored and used."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import ray

from actors.tune import METRIC, search_space, sweep, trial_resources
from tests.unit.models.synth import planted_features
from tinywindow.config import Config
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.params import read_tuned, read_tuned_file, resolve
from tinywindow.models.registry import registry_root

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture(scope="module")
def planted() -> pa.Table:
    return planted_features(n_symbols=3, n_bars=400, seed=0)


def _cfg(tmp_path: Path) -> Config:
    return Config().model_validate({"data_dir": str(tmp_path), "agents": {"window": 8, "valid_bars": 60}})


def test_trials_fit_the_free_cpus() -> None:
    free = ray.available_resources().get("CPU", 0.0)
    concurrent, cpus = trial_resources(samples=8)
    assert 1 <= concurrent <= 2 and concurrent * cpus <= free + 1e-9


def test_xgboost_sweep_stores_the_best_parameters_for_training(tmp_path: Path, planted: pa.Table) -> None:
    cfg = _cfg(tmp_path)
    keys = KeyStore.init(tmp_path / "keys", "tune test passphrase", scrypt_log2_n=10)
    result = sweep("xgboost", planted, cfg, samples=3, budget={"rounds": 16}, seed=1, keystore=keys)
    assert result.trials == 3
    assert set(result.best_params) == set(search_space("xgboost"))
    assert result.best_sharpe > 1.0  # the planted signal is learnable: validation Sharpe is high
    stored = read_tuned_file(registry_root(cfg.agents, cfg.data_dir), "xgboost", keys)  # sealed: encrypted, signed
    assert stored["params"] == read_tuned(registry_root(cfg.agents, cfg.data_dir), "xgboost", keys) == result.best_params
    assert result.tuned_file.read_bytes()[:4] == b"TWEV"
    assert stored["val_sharpe"] == pytest.approx(result.best_sharpe)
    params = resolve("xgboost", cfg.agents, registry_root(cfg.agents, cfg.data_dir), keys=keys)
    assert params.model_dump()["max_depth"] == result.best_params["max_depth"]  # training picks it up
    # Tune's logs, TensorBoard event files included, stay under agents.tune_dir
    assert result.experiment_dir.is_relative_to(Path(tmp_path, "tune").resolve())
    assert list(result.experiment_dir.rglob("events.out.tfevents.*"))
    progress = list(result.experiment_dir.rglob("progress.csv"))
    assert progress and METRIC in progress[0].read_text().splitlines()[0]


def test_lstm_sweep_with_asha_reports_every_iteration(tmp_path: Path, planted: pa.Table) -> None:
    cfg = _cfg(tmp_path)
    budget = {"iterations": 2, "train_batch": 256, "minibatch": 64, "num_envs": 4, "episode_len": 64}
    keys = KeyStore.init(tmp_path / "keys", "tune test passphrase", scrypt_log2_n=10)
    result = sweep("lstm", planted, cfg, samples=2, budget=budget, seed=0, keystore=keys)
    assert result.trials == 2 and set(result.best_params) == set(search_space("lstm"))
    rows = [p.read_text().splitlines() for p in result.experiment_dir.rglob("progress.csv")]
    assert len(rows) == 2 and all(1 <= len(r) - 1 <= 2 for r in rows)  # one row per iteration reported
    assert resolve("lstm", cfg.agents, registry_root(cfg.agents, cfg.data_dir), keys=keys).model_dump()["hidden"] == result.best_params["hidden"]
