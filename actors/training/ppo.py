"""PPO training (RLlib, new API stack) of the LSTM and Transformer agents.

Training runs in the calling process: ``num_env_runners=0`` (the local EnvRunner samples),
``num_learners=0`` (the local Learner updates), and the runner's env is one
``VectorTradingEnv`` of ``params.num_envs`` sub-envs stepped together in numpy (RLlib's
``gym_env_vectorize_mode="vector_entry_point"``: it calls the env class with
``env_config | {"num_envs": n}``; the env autoresets on the next step, as the runner
expects), per symbol or cross-sectional (``cross_sectional=True``), so a run
needs one CPU and no extra actors (RLlib still needs an initialized Ray; it starts a local
one if there is none).  After training, the learner's weights are copied into a fresh
plain-torch ``WindowPolicy`` and the Algorithm is stopped: the ``RLPredictor`` it returns
serves without RLlib.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from actors.training.rlmodule import MODULES
from tinywindow.errors import ModelError
from tinywindow.models.params import PPOParams
from tinywindow.models.rl.env import env_config
from tinywindow.models.rl.inference import RLPredictor
from tinywindow.models.rl.policy import build_policy
from tinywindow.models.rl.vector_env import VectorTradingEnv
from tinywindow.models.windows import Normalizer, Series

POLICY = "default_policy"  # RLlib's DEFAULT_MODULE_ID


@dataclass
class TrainStats:
    """What a PPO run did: per-iteration mean episode return (reward units) and timings."""

    iterations: int = 0
    env_steps: int = 0
    seconds: float = 0.0
    episode_return_mean: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "env_steps": self.env_steps,
            "seconds": round(self.seconds, 2),
            "steps_per_s": round(self.env_steps / self.seconds, 1) if self.seconds else None,
            "episode_return_mean": [None if not np.isfinite(x) else round(x, 4) for x in self.episode_return_mean],
        }


def ppo_config(
    agent: str, env_cfg: dict[str, Any], params: PPOParams, seed: int, cross_sectional: bool = False
) -> Any:
    """The RLlib ``PPOConfig``: local runner and learner, our RLModule, seeded.

    ``cross_sectional`` trains the policy to rank symbols against each other
    (``VectorTradingEnv``'s cross-sectional mode: ``params.num_envs`` symbols per episode).
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    if agent not in MODULES:
        raise ModelError(f"agent {agent!r} is not trained with PPO")
    minibatch = min(params.minibatch, params.train_batch)
    return (
        PPOConfig()
        .environment(VectorTradingEnv, env_config={**env_cfg, "cross_sectional": cross_sectional})
        .framework("torch")
        .env_runners(
            num_env_runners=0,
            num_envs_per_env_runner=params.num_envs,
            num_cpus_per_env_runner=0,
            gym_env_vectorize_mode="vector_entry_point",
        )
        .learners(num_learners=0)
        .training(
            lr=params.lr,
            gamma=params.gamma,
            lambda_=params.lambda_,
            entropy_coeff=params.entropy_coeff,
            clip_param=params.clip_param,
            vf_loss_coeff=params.vf_loss_coeff,
            train_batch_size_per_learner=params.train_batch,
            minibatch_size=minibatch,
            num_epochs=params.epochs,
        )
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MODULES[agent], model_config=params.model_config_dict()))
        .reporting(metrics_num_episodes_for_smoothing=20)
        .debugging(seed=seed, log_level="ERROR")
    )


IterationHook = Callable[[int, RLPredictor, dict[str, Any]], bool | None]


def train_ppo(
    agent: str,
    series: Sequence[Series],
    normalizer: Normalizer,
    window: int,
    cost: float,
    params: PPOParams,
    seed: int,
    init_weights: dict[str, Any] | None = None,
    on_iteration: IterationHook | None = None,
    weights: Sequence[np.ndarray] | None = None,
    cross_sectional: bool = False,
) -> tuple[RLPredictor, TrainStats]:
    """Train ``agent`` with PPO on ``series`` (already cut to the training window).

    ``init_weights`` warm-starts from an earlier version (retraining); ``on_iteration`` is
    called after every iteration with a predictor snapshot and RLlib's result, and stops
    training early by returning True.  ``weights`` (one array per series) weigh each bar's
    reward (a fine-tune on realized outcomes: ``tinywindow.models.learning``).
    ``cross_sectional`` rewards each symbol's exposure against the mean return of the
    episode's other symbols (``VectorTradingEnv``), so the policy learns to rank symbols.
    """
    env_cfg = env_config(series, normalizer, window, cost, params.episode_len, params.reward_scale, weights)
    algo = ppo_config(agent, env_cfg, params, seed, cross_sectional=cross_sectional).build_algo()
    stats = TrainStats()
    t0 = time.perf_counter()
    try:
        if init_weights is not None:
            algo.learner_group.set_weights({POLICY: init_weights})
            algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)
        for i in range(params.iterations):
            result = algo.train()
            runners = result.get("env_runners", {})
            stats.iterations = i + 1
            stats.env_steps = int(runners.get("num_env_steps_sampled_lifetime", stats.env_steps))
            stats.episode_return_mean.append(float(runners.get("episode_return_mean", np.nan)))
            if on_iteration is not None:
                snapshot = _snapshot(agent, algo, normalizer, window, params, cross_sectional)
                if on_iteration(i + 1, snapshot, result):
                    break
        predictor = _snapshot(agent, algo, normalizer, window, params, cross_sectional)
    finally:
        stats.seconds = time.perf_counter() - t0
        algo.stop()
    return predictor, stats


def _snapshot(
    agent: str, algo: Any, normalizer: Normalizer, window: int, params: PPOParams, cross_sectional: bool = False
) -> RLPredictor:
    """The learner's current weights in a fresh plain-torch policy (independent of the Algorithm)."""
    weights = algo.learner_group.get_weights()[POLICY]
    module = build_policy(agent, window, len(normalizer.names), params.model_config_dict())
    module.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()}, strict=True)
    # a cross-sectional policy votes on features rank-normalised across the bar, as it trained
    config = {**params.model_config_dict(), **({"cross_sectional": True} if cross_sectional else {})}
    return RLPredictor(agent, module, normalizer, window, config)
