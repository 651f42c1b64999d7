"""RL training throughput, RLlib PPO vs stable-baselines3 PPO, env speed, and agent inference.

Training: RLlib and SB3 updates run alternately in one process (so load from other work on
a shared machine hits both alike) on the same vectorised env, ``VectorTradingEnv`` with 8
sub-envs stepped together in numpy (bundled S&P 500 / NASDAQ / GOOG features, window 32,
per-symbol mode): RLlib through ``gym_env_vectorize_mode="vector_entry_point"`` (next-step
autoreset, as its EnvRunner expects), SB3 through ``SB3VectorEnv`` below (SB3's same-step
autoreset: the finished sub-envs are reset with ``reset_mask`` and their last observation
goes in ``infos[i]["terminal_observation"]``).  The same network (the LSTM agent's encoder, hidden 32, with 32-unit tanh policy and value
heads on a shared encoder) and the same PPO hyperparameters (8 sub-envs x 256 steps
= 2048 steps per update, minibatch 256, 4 epochs, lr 3e-4, gamma 0.5, GAE lambda 0.95,
clip 0.2, entropy 0.01, vf coeff 0.5) on one torch thread each.  Environment steps per
second of whole updates (sampling + learning, after set-up and one warm-up update); the
ratio is of the median update rates.

Env steps/s: random actions on ``VectorTradingEnv`` with N sub-envs vs today's path, a
gymnasium ``SyncVectorEnv`` of N ``TradingEnv`` (what RLlib built before), same N.

Inference: each agent's predictor on a 500-symbol FEATURES batch (synthetic bars, the last
100 bars of each symbol: 50,000 windows), votes per second on one thread, with the
RLModule's ``forward_inference`` and the booster called directly.

    python bench/rl.py [--iterations 6] [--symbols 500] [--env-steps 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from tinywindow.cli._tables import table

WINDOW = 32
HIDDEN = 32


def hyper(train_batch: int, iterations: int, num_envs: int = 8) -> Any:
    from tinywindow.models.params import PPOParams

    return PPOParams(
        hidden=HIDDEN, lr=3e-4, gamma=0.5, lambda_=0.95, entropy_coeff=0.01, clip_param=0.2, vf_loss_coeff=0.5,
        iterations=iterations, train_batch=train_batch, minibatch=256, epochs=4, num_envs=num_envs, episode_len=256,
    )


class RLlibPPO:
    """RLlib PPO with the LSTM agent's config (local env runner and learner)."""

    def __init__(self, env_cfg: dict[str, Any], params: Any) -> None:
        from actors.training.ppo import ppo_config

        self.algo = ppo_config("lstm", env_cfg, params, seed=0).build_algo()
        self.steps = 0

    def update(self) -> tuple[int, float, float]:
        """One PPO update: (env steps, sampling seconds, total seconds)."""
        t0 = time.perf_counter()
        result = self.algo.train()
        total = time.perf_counter() - t0
        lifetime = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        steps, self.steps = lifetime - self.steps, lifetime
        # RLlib's own timer of this iteration's sampling (a moving average over iterations)
        return steps, float(result["timers"]["env_runner_sampling_timer"]), total

    def stop(self) -> None:
        self.algo.stop()


def sb3_vector_env(env: Any) -> Any:
    """``env`` (a ``VectorTradingEnv``) behind stable-baselines3's ``VecEnv`` API."""
    from stable_baselines3.common.vec_env import VecEnv

    class SB3VectorEnv(VecEnv):
        """SB3's auto-reset convention over the next-step-autoreset ``VectorTradingEnv``: a
        finished sub-env is reset in the same step (``reset_mask``), its last observation goes
        in ``infos[i]["terminal_observation"]`` and ``TimeLimit.truncated`` says the episode
        was cut (SB3 then bootstraps its value, as RLlib does)."""

        def __init__(self) -> None:
            super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
            self._actions: np.ndarray | None = None

        def reset(self) -> np.ndarray:
            obs, _ = env.reset(seed=self._seeds[0])
            self._reset_seeds()
            self._reset_options()
            return np.asarray(obs)

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
            obs, rewards, terminated, truncated, _ = env.step(self._actions)
            done = terminated | truncated
            infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
            if done.any():
                for i in np.flatnonzero(done):
                    infos[i]["terminal_observation"] = obs[i]
                    infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                obs, _ = env.reset(options={"reset_mask": done})
            return obs, rewards.astype(np.float32), done, infos

        def close(self) -> None:
            env.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(env, attr_name)] * self.num_envs

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            raise NotImplementedError("SB3VectorEnv has no per-sub-env attributes")

        def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
            raise NotImplementedError("SB3VectorEnv has no per-sub-env methods")

        def env_is_wrapped(self, wrapper_class: Any, indices: Any = None) -> list[bool]:
            return [False] * self.num_envs

    return SB3VectorEnv()


class SB3PPO:
    """stable-baselines3 PPO with the same env, network and hyperparameters."""

    def __init__(self, env_cfg: dict[str, Any], params: Any) -> None:
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

        from tinywindow.models.rl.lstm import LSTMEncoder
        from tinywindow.models.rl.vector_env import VectorTradingEnv

        class Encoder(BaseFeaturesExtractor):  # the LSTM agent's encoder, unchanged
            def __init__(self, space: Any) -> None:
                super().__init__(space, HIDDEN)
                self.lstm = LSTMEncoder(space.shape[1], HIDDEN, 1)

            def forward(self, obs: torch.Tensor) -> torch.Tensor:
                out: torch.Tensor = self.lstm(obs)
                return out

        class RolloutTimer(BaseCallback):
            def __init__(self) -> None:
                super().__init__()
                self.t0, self.last = 0.0, 0.0

            def _on_rollout_start(self) -> None:
                self.t0 = time.perf_counter()

            def _on_rollout_end(self) -> None:
                self.last = time.perf_counter() - self.t0

            def _on_step(self) -> bool:
                return True

        n_envs = params.num_envs
        venv = sb3_vector_env(VectorTradingEnv({**env_cfg, "num_envs": n_envs}))
        venv.seed(0)
        self.batch = params.train_batch
        self.timer = RolloutTimer()
        self.model = PPO(
            "MlpPolicy", venv, learning_rate=params.lr, n_steps=params.train_batch // n_envs,
            batch_size=params.minibatch, n_epochs=params.epochs, gamma=params.gamma, gae_lambda=params.lambda_,
            clip_range=params.clip_param, ent_coef=params.entropy_coeff, vf_coef=params.vf_loss_coeff, seed=0,
            device="cpu", verbose=0,
            policy_kwargs={"features_extractor_class": Encoder, "net_arch": {"pi": [HIDDEN], "vf": [HIDDEN]},
                           "activation_fn": torch.nn.Tanh},
        )

    def update(self) -> tuple[int, float, float]:
        before = int(self.model.num_timesteps)
        t0 = time.perf_counter()
        self.model.learn(total_timesteps=self.batch, reset_num_timesteps=False, callback=self.timer)
        total = time.perf_counter() - t0
        return int(self.model.num_timesteps) - before, self.timer.last, total


def env_speed(env_cfg: dict[str, Any], n_envs: int, steps: int) -> dict[str, float]:
    """Env steps/s (sub-env steps) on random actions: ``VectorTradingEnv`` vs a gymnasium
    ``SyncVectorEnv`` of ``TradingEnv`` (today's path), best of 3 runs of ``steps`` vector steps."""
    import gymnasium as gym

    from tinywindow.models.rl.env import TradingEnv
    from tinywindow.models.rl.vector_env import VectorTradingEnv

    actions = np.random.default_rng(0).integers(0, 3, size=(steps, n_envs))
    envs = {
        "vector": VectorTradingEnv({**env_cfg, "num_envs": n_envs}),
        "sync": gym.vector.SyncVectorEnv([lambda: TradingEnv(env_cfg) for _ in range(n_envs)]),
    }
    out = {}
    for name, env in envs.items():
        best = float("inf")
        for rep in range(3):
            env.reset(seed=rep)
            t0 = time.perf_counter()
            for a in actions:
                env.step(a)
            best = min(best, time.perf_counter() - t0)
        out[name] = steps * n_envs / best
        env.close()
    return out


def interleaved(env_cfg: dict[str, Any], params: Any) -> dict[str, dict[str, float]]:
    """Alternate one RLlib update and one SB3 update, so load on a shared box hits both."""
    runs: dict[str, Any] = {"rllib": RLlibPPO(env_cfg, params), "sb3": SB3PPO(env_cfg, params)}
    for r in runs.values():
        r.update()  # warm-up update (first-call allocations), not counted
    rows: dict[str, list[tuple[int, float, float]]] = {k: [] for k in runs}
    for _ in range(params.iterations):
        for name, r in runs.items():
            rows[name].append(r.update())
    runs["rllib"].stop()
    out = {}
    for name, rs in rows.items():
        steps = np.array([r[0] for r in rs], dtype=float)
        total = np.array([r[2] for r in rs])
        sample = np.array([r[1] for r in rs])
        out[name] = {
            "steps": float(steps.sum()),
            "seconds": float(total.sum()),
            "steps_per_s": float(steps.sum() / total.sum()),
            "median_steps_per_s": float(np.median(steps / total)),
            "sample_s": float(np.median(sample)),
            "update_s": float(np.median(total - sample)),
        }
    return out


def inference(symbols: int, bars: int, params: Any, trained_xgb: Any) -> tuple[list[list[Any]], dict[str, float]]:
    from tinywindow.data import features
    from tinywindow.data.sources.synthetic import generate
    from tinywindow.models.rl import RLPredictor
    from tinywindow.models.rl import build_policy as build_module  # the plain-torch policy serves
    from tinywindow.models.windows import Normalizer, feature_names

    feats = features.compute(generate(symbols, bars + WINDOW + 120, seed=3))
    # the newest ``bars`` rows per symbol after warm-up (what features_window(bars) returns)
    ts = feats.column("ts").cast("int64").to_numpy()
    cut = np.sort(np.unique(ts))[-(bars + WINDOW - 1)]
    batch = feats.filter(ts >= cut)
    names = feature_names(batch)
    norm = Normalizer(tuple(names), np.zeros(len(names), np.float32), np.ones(len(names), np.float32))
    cfg = params.model_config_dict()
    predictors = {
        "lstm": RLPredictor("lstm", build_module("lstm", WINDOW, len(names), cfg), norm, WINDOW, cfg),
        "transformer": RLPredictor("transformer", build_module("transformer", WINDOW, len(names), cfg), norm, WINDOW, cfg),
        "xgboost": trained_xgb,
    }
    rows, out = [], {}
    for name, p in predictors.items():
        p.predict(batch.slice(0, 2000))  # warm-up
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            votes = p.predict(batch)
            best = min(best, time.perf_counter() - t0)
        one_symbol = batch.slice(0, bars + WINDOW - 1)
        t0 = time.perf_counter()
        for _ in range(20):
            p.predict(one_symbol, latest_only=True)
        single_ms = (time.perf_counter() - t0) / 20 * 1e3
        out[name] = votes.num_rows / best
        rows.append([name, symbols, votes.num_rows, round(best, 3), round(out[name]), round(single_ms, 2)])
    return rows, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=6, help="timed PPO updates of 2048 steps each")
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--num-envs", type=int, default=8, help="sub-envs of the vectorised env (both libraries)")
    ap.add_argument("--env-steps", type=int, default=4000, help="vector steps per env-speed run")
    args = ap.parse_args()

    import ray
    import torch

    torch.set_num_threads(1)
    ray.init("local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)

    from actors.training.train import bundled_features
    from tinywindow.models.params import XGBParams
    from tinywindow.models.rl.env import env_config
    from tinywindow.models.windows import data_range, feature_names, fit_normalizer, to_series
    from tinywindow.models.xgb import train_xgb

    feats = bundled_features()
    series = [s.between(None, "2011-01-01") for s in to_series(feats)]
    norm = fit_normalizer(series, feature_names(feats))
    params = hyper(2048, args.iterations, args.num_envs)
    env_cfg = env_config(series, norm, WINDOW, 0.0005, params.episode_len, params.reward_scale)
    print(f"env: {data_range(series)['rows']} training bars of {', '.join(s.symbol for s in series)}, window {WINDOW}")

    res = interleaved(env_cfg, params)
    rl, sb3 = res["rllib"], res["sb3"]
    ratio = rl["median_steps_per_s"] / sb3["median_steps_per_s"]
    print(f"\nPPO training throughput, LSTM policy, {params.iterations} updates of 2048 env steps each after one"
          " warm-up update, RLlib and SB3 updates interleaved, 1 torch thread; per-update figures are medians")
    print(table(
        [["RLlib 2.60 PPO (new API stack)", int(rl["steps"]), round(rl["seconds"], 2), round(rl["steps_per_s"]),
          round(rl["median_steps_per_s"]), round(rl["sample_s"], 3), round(rl["update_s"], 3)],
         ["stable-baselines3 2.9 PPO", int(sb3["steps"]), round(sb3["seconds"], 2), round(sb3["steps_per_s"]),
          round(sb3["median_steps_per_s"]), round(sb3["sample_s"], 3), round(sb3["update_s"], 3)]],
        ["implementation", "env steps", "seconds", "steps/s", "median steps/s", "sample s", "learn s"],
    ))
    print(f"RLlib / SB3 steps per second: {ratio:.2f}x")

    speed_rows, speedup = [], 0.0
    for n in sorted({params.num_envs, 64}):
        sp = env_speed(env_cfg, n, args.env_steps if n == params.num_envs else max(args.env_steps // 8, 100))
        speed_rows.append([n, round(sp["sync"]), round(sp["vector"]), round(sp["vector"] / sp["sync"], 2)])
        if n == params.num_envs:
            speedup = sp["vector"] / sp["sync"]
    print("\nEnv steps/s (sub-env steps), random actions, best of 3; today's path = gymnasium SyncVectorEnv of"
          " N TradingEnv")
    print(table(speed_rows, ["N sub-envs", "SyncVectorEnv x TradingEnv", "VectorTradingEnv", "speedup"]))

    xgb_model, _ = train_xgb(series, norm, WINDOW, XGBParams(), seed=0)
    rows, rates = inference(args.symbols, 100, params, xgb_model)
    print(f"\nInference, {args.symbols}-symbol FEATURES batch (last 100 bars each), 1 thread, best of 3")
    print(table(rows, ["agent", "symbols", "votes", "seconds", "rows/s", "1-symbol latest ms"]))
    print(json.dumps({
        "rllib_vs_sb3_steps_ratio": round(ratio, 3),
        "vector_env_speedup": round(speedup, 2),
        "lstm_rows_s": round(rates["lstm"]),
        "transformer_rows_s": round(rates["transformer"]),
        "xgboost_rows_s": round(rates["xgboost"]),
    }))
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
