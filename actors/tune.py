"""Hyperparameter sweeps with Ray Tune: ASHA on walk-forward validation Sharpe.

Each trial trains one agent in its own Tune actor (one process, ``num_env_runners=0``,
``num_learners=0``, one torch thread) and reports the out-of-sample Sharpe of the equal-weight
book after every PPO iteration (or every few boosting rounds); ASHA stops the weak trials
early.  Trials ask for a fraction of a CPU sized to what the cluster has free, and at most
two run at once, so a sweep fits two cores and nothing waits PENDING forever.

The sweep validates on the fold *before* the hold-out that ``train_agent`` reports on, so
choosing parameters does not peek at the numbers a published version records.  The best
trial's parameters go to ``<registry>/<agent>/tuned.json.twenc`` (encrypted to the keystore and
signed: ``params.write_tuned``), where training picks them up;
Tune's CSV/JSON/TensorBoard logs stay under ``agents.tune_dir`` (under ``data_dir`` unless absolute,
or a ``pyarrow.fs`` URI such as ``s3://bucket/tune``: ``tinywindow.core.storage.tune_storage``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from actors.training.train import embargo, set_threads
from tinywindow.config import Config
from tinywindow.core.storage import is_uri, tune_storage
from tinywindow.crypto import KeyStore, open_keystore
from tinywindow.errors import ConfigError, DataError
from tinywindow.models.config import AgentConfig
from tinywindow.models.evaluation import walkforward as wf
from tinywindow.models.params import RL_AGENTS, build, check_agent, resolve, write_tuned
from tinywindow.models.registry import registry_root
from tinywindow.models.windows import Series, feature_names, fit_normalizer, to_series

METRIC = "val_sharpe"


def _trial_bar(total: int, desc: str) -> Any:
    """A Tune callback that advances a tqdm bar (stderr; quiet when it is not a terminal) as
    trials finish, early-stopped or failed ones included."""
    import os
    import sys

    from ray import tune
    from tqdm import tqdm

    class TrialBar(tune.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.bar = tqdm(total=total, desc=desc, unit="trial", leave=False,
                            disable=not sys.stderr.isatty() or bool(os.environ.get("TW_NO_PROGRESS")))

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.bar.update()

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.bar.update()

        def close(self) -> None:
            self.bar.close()

    return TrialBar()


def search_space(agent: str) -> dict[str, Any]:
    """The swept hyperparameters of ``agent`` (Tune sampling domains)."""
    from ray import tune

    check_agent(agent)
    if agent == "xgboost":
        return {
            "max_depth": tune.randint(2, 7),
            "eta": tune.loguniform(0.01, 0.3),
            "subsample": tune.uniform(0.5, 1.0),
            "colsample_bytree": tune.uniform(0.3, 1.0),
            "min_child_weight": tune.loguniform(1.0, 50.0),
        }
    space = {
        "lr": tune.loguniform(1e-4, 3e-3),
        "hidden": tune.choice([16, 32, 64]),
        "entropy_coeff": tune.loguniform(1e-3, 5e-2),
        "gamma": tune.choice([0.0, 0.5, 0.9]),
        "epochs": tune.choice([2, 4]),
    }
    if agent == "transformer":
        space.update({"heads": tune.choice([2, 4]), "layers": tune.choice([1, 2])})
    return space


def tune_split(series: Sequence[Series], agents: AgentConfig) -> wf.Split:
    """The validation fold just before ``train_agent``'s hold-out (see module docstring)."""
    cal = wf.calendar(series)
    emb = embargo(agents)
    valid = agents.valid_bars
    holdout_train_end = len(cal) - valid - emb
    i1 = holdout_train_end - valid - emb
    if i1 < agents.window * 8:
        raise DataError(f"{len(cal)} bars are too few for a tuning fold and a hold-out")
    return wf.Split(int(cal[i1]), int(cal[i1 + emb]), int(cal[holdout_train_end]))


def trial(
    config: dict[str, Any],
    *,
    agent: str,
    series: list[Series],
    names: list[str],
    split: wf.Split,
    base: dict[str, Any],
    window: int,
    cost: float,
    seed: int,
) -> None:
    """One Tune trial (runs inside a Tune actor): train, report validation Sharpe as it goes."""
    from ray import tune

    from tinywindow.models.predictor import Predictor

    set_threads(1)
    params = build(agent, {**base, **config})
    train = wf.training_part(series, split)
    normalizer = fit_normalizer(train, names)
    vset = wf.ValidationSet.build(series, split, window)

    def report(predictor: Predictor, extra: dict[str, Any]) -> None:
        sc = vset.evaluate(predictor, cost)[wf.ALL]
        hit = sc.hit_rate if math.isfinite(sc.hit_rate) else 0.0
        tune.report({METRIC: sc.sharpe, "hit_rate": hit, "turnover": sc.turnover, **extra})

    if agent in RL_AGENTS:
        from actors.training.ppo import train_ppo
        from tinywindow.models.params import PPOParams

        assert isinstance(params, PPOParams)

        def on_iteration(i: int, predictor: Predictor, result: dict[str, Any]) -> None:
            ret = result.get("env_runners", {}).get("episode_return_mean", float("nan"))
            report(predictor, {"episode_return_mean": float(ret) if ret == ret else 0.0})

        train_ppo(agent, train, normalizer, window, cost, params, seed, on_iteration=on_iteration)
    else:
        from tinywindow.models.params import XGBParams
        from tinywindow.models.xgb.train import train_xgb

        assert isinstance(params, XGBParams)
        every = max(1, params.rounds // 8)
        train_xgb(train, normalizer, window, params, seed, on_round=lambda r, p: report(p, {"rounds": r}), report_every=every)


@dataclass(frozen=True)
class SweepResult:
    agent: str
    best_params: dict[str, Any]
    best_sharpe: float
    trials: int
    experiment_dir: Path | str  # a local folder, or a URI when agents.tune_dir is one
    tuned_file: Path
    split: dict[str, Any]
    seconds: float


def trial_resources(samples: int, max_concurrent: int = 2, agents: AgentConfig | None = None) -> tuple[int, float]:
    """(concurrent trials, CPUs per trial) that fit what the cluster has free right now.

    With ``agents.resources`` set, a trial is placed like an AgentActor: on a node offering
    those resources, with the agent's CPU share; such nodes may not exist yet (an autoscaler
    adds them for the trials' demand), so what is free now does not bound the sweep."""
    import ray

    if agents is not None and agents.resources:
        return max(1, min(max_concurrent, samples)), agents.num_cpus
    free = float(ray.available_resources().get("CPU", 0.0))
    if free < 0.1:
        raise ConfigError("no free CPU in the Ray cluster for tuning trials", key="ray.num_cpus")
    concurrent = max(1, min(max_concurrent, samples, math.floor(free / 0.5) or 1))
    per_trial = min(1.0, math.floor(free / concurrent * 100) / 100)
    return concurrent, per_trial


def sweep(
    agent: str,
    features: pa.Table,
    cfg: Config,
    samples: int,
    *,
    budget: dict[str, Any] | None = None,
    seed: int | None = None,
    max_concurrent: int = 2,
    name: str | None = None,
    verbose: int = 0,
    keystore: KeyStore | None = None,
) -> SweepResult:
    """Run an ASHA sweep for ``agent`` and store the best parameters (Ray must be up), sealed
    with ``keystore`` (opened from ``crypto`` with the passphrase env var when None, before
    any trial runs, so a missing passphrase fails at once)."""
    from ray import tune
    from ray.tune.logger import TBXLoggerCallback
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    check_agent(agent)
    if samples < 1:
        raise ConfigError("--samples must be at least 1", key="samples")
    seed = cfg.agents.seed if seed is None else seed
    keystore = keystore if keystore is not None else open_keystore(cfg.crypto, cfg.data_dir)
    t0 = time.perf_counter()
    series = to_series(features)
    split = tune_split(series, cfg.agents)
    base = resolve(agent, cfg.agents, registry_root(cfg.agents, cfg.data_dir), budget, use_tuned=False).model_dump()
    space = search_space(agent)
    max_t = base["iterations"] if agent in RL_AGENTS else math.ceil(base["rounds"] / max(1, base["rounds"] // 8))
    concurrent, cpus = trial_resources(samples, max_concurrent, cfg.agents)
    storage = tune_storage(cfg.agents.tune_dir, cfg.data_dir)  # absolute, or a pyarrow.fs URI
    run_name = name or f"{agent}-{time.strftime('%Y%m%d-%H%M%S')}"
    bar = _trial_bar(samples, f"tune {agent}")
    trainable = tune.with_resources(
        tune.with_parameters(
            trial,
            agent=agent,
            series=series,
            names=feature_names(features),
            split=split,
            base=base,
            window=cfg.agents.window,
            cost=cfg.agents.cost,
            seed=seed,
        ),
        {"cpu": cpus, **cfg.agents.resources},  # a trial trains an agent: it goes where agents go
    )
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            num_samples=samples,
            max_concurrent_trials=concurrent,
            scheduler=ASHAScheduler(time_attr="training_iteration", max_t=max(1, max_t), grace_period=max(1, max_t // 4), reduction_factor=2),
            search_alg=BasicVariantGenerator(random_state=seed),
        ),
        run_config=tune.RunConfig(
            name=run_name, storage_path=storage, callbacks=[TBXLoggerCallback(), bar], verbose=verbose
        ),
    )
    try:
        results = tuner.fit()
    finally:
        bar.close()
    errors = [results[i].error for i in range(len(results)) if results[i].error is not None]
    if len(errors) == len(results):
        raise ConfigError(f"every tuning trial failed; first error: {errors[0]}")
    best = results.get_best_result(metric=METRIC, mode="max", scope="last")
    best_params = {k: (best.config or {})[k] for k in space}
    sharpe = float(best.metrics.get(METRIC, float("nan"))) if best.metrics else float("nan")
    experiment: Path | str = f"{storage.rstrip('/')}/{run_name}" if is_uri(storage) else Path(storage, run_name)
    info = {"val_sharpe": sharpe, "split": split.to_json(), "samples": samples, "experiment": str(experiment), "seed": seed}
    path = write_tuned(registry_root(cfg.agents, cfg.data_dir), agent, best_params, info, keystore)
    return SweepResult(agent, best_params, sharpe, len(results), experiment, path, split.to_json(), time.perf_counter() - t0)
