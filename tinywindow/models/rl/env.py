"""The trading environment the RL agents learn in: one symbol, one exposure, daily bars.

An episode picks a random symbol and a random start bar inside the training window (both
from the env's seeded RNG) and runs for ``episode_len`` bars or until the data ends.

* observation at bar t: the last ``window`` standardized feature rows, t-window+1 .. t;
* action: target exposure, index 0 / 1 / 2 for -1 / 0 / +1 (``ACTIONS``);
* reward: exposure x return(t -> t+1) - cost x |exposure - previous exposure|, times
  ``reward_scale`` (percent by default, which PPO's value function learns more easily),
  times the bar's ``weight`` (1 unless a fine-tune passes the agent's realized outcomes:
  ``tinywindow.models.learning`` puts the realized return in the bar's return and weighs
  the bar by the agent's own realized reward).

The env never reads a feature row after the current bar: ``_observation`` slices rows up to
t only, and the forward return of bar t is read after the action is taken (it is the
reward).  Episodes end by truncation (the market goes on), so PPO bootstraps the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from tinywindow.models.windows import CLIP, Normalizer, Series, full_window_mask

ACTIONS = np.array([-1, 0, 1], dtype=np.int8)  # action index -> exposure


def env_config(
    series: Sequence[Series],
    normalizer: Normalizer,
    window: int,
    cost: float,
    episode_len: int = 256,
    reward_scale: float = 100.0,
    weights: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """The ``env_config`` dict for ``TradingEnv`` and ``VectorTradingEnv`` (plain arrays: cheap
    to copy and pickle).  ``ts`` (each series' int64 timestamps) aligns the series in
    ``VectorTradingEnv``'s cross-sectional mode; ``TradingEnv`` ignores it."""
    out: dict[str, Any] = {
        "obs": [normalizer.apply(s.x) for s in series],
        "ts": [np.asarray(s.ts, dtype=np.int64) for s in series],
        "fwd_ret": [np.asarray(s.fwd_ret, dtype=np.float64) for s in series],
        "symbols": [s.symbol for s in series],
        "window": int(window),
        "cost": float(cost),
        "episode_len": int(episode_len),
        "reward_scale": float(reward_scale),
    }
    if weights is not None:
        out["weight"] = [np.asarray(w, dtype=np.float64) for w in weights]
    return out


class TradingEnv(gym.Env[np.ndarray, np.int64]):
    """A ``gymnasium.Env`` over standardized FEATURES arrays (see the module docstring)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        cfg = dict(config or {})
        self.window = int(cfg["window"])
        self.cost = float(cfg["cost"])
        self.episode_len = int(cfg.get("episode_len", 256))
        self.reward_scale = float(cfg.get("reward_scale", 100.0))
        self._obs: list[np.ndarray] = [np.asarray(o, dtype=np.float32) for o in cfg["obs"]]
        self._fwd: list[np.ndarray] = [np.asarray(r, dtype=np.float64) for r in cfg["fwd_ret"]]
        self.symbols: list[str] = list(cfg.get("symbols", [str(i) for i in range(len(self._obs))]))
        self._weight: list[np.ndarray] = [
            np.asarray(w, dtype=np.float64) for w in cfg.get("weight", [np.ones(len(r)) for r in self._fwd])
        ]
        if not self._obs or len(self._obs) != len(self._fwd):
            raise ValueError("TradingEnv needs one observation array and one return array per symbol")
        n_features = self._obs[0].shape[1]
        # A bar can be traded when a full finite window ends there and its next return is known.
        self._tradable = [
            full_window_mask(o, np.arange(len(o)), self.window) & np.isfinite(r)
            for o, r in zip(self._obs, self._fwd, strict=True)
        ]
        counts = np.array([m.sum() for m in self._tradable], dtype=np.float64)
        if counts.sum() == 0:
            raise ValueError(f"no bar has a full window of {self.window} finite feature rows")
        self._symbol_p = counts / counts.sum()
        self.observation_space = gym.spaces.Box(
            -CLIP, CLIP, shape=(self.window, n_features), dtype=np.float32
        )
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self._i = 0
        self._t = 0
        self._steps = 0
        self._position = 0.0

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        opts = options or {}
        if "symbol" in opts and "t" in opts:  # a chosen start (tests, replays)
            self._i, self._t = int(opts["symbol"]), int(opts["t"])
            if not self._tradable[self._i][self._t]:
                raise ValueError(f"bar {self._t} of symbol {self._i} has no full window")
        else:
            self._i = int(self.np_random.choice(len(self._obs), p=self._symbol_p))
            self._t = int(self.np_random.choice(np.flatnonzero(self._tradable[self._i])))
        self._steps = 0
        self._position = 0.0
        return self._observation(), self._info()

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not 0 <= a < len(ACTIONS):
            raise ValueError(f"action must be in 0..{len(ACTIONS) - 1}, got {a}")
        exposure = float(ACTIONS[a])
        t = self._t
        ret = float(self._fwd[self._i][t])  # return of bar t -> t+1: known after acting
        pnl = exposure * ret - self.cost * abs(exposure - self._position)
        self._position = exposure
        self._steps += 1
        self._t += 1
        tradable = self._tradable[self._i]
        truncated = self._steps >= self.episode_len or self._t >= len(tradable) or not tradable[self._t]
        if truncated and self._t >= len(tradable):
            self._t -= 1  # the last observation repeats the final window; the episode is over
        obs = self._observation()
        info = {**self._info(), "pnl": pnl}
        return obs, pnl * self.reward_scale * float(self._weight[self._i][t]), False, bool(truncated), info

    # ------------------------------------------------------------------ internals
    def _observation(self) -> np.ndarray:
        """Feature rows t-window+1 .. t of the current symbol (never a row after t)."""
        lo = self._t - self.window + 1
        obs = self._obs[self._i][lo : self._t + 1]
        if lo < 0 or not np.isfinite(obs).all():
            # Only reachable at truncation on a bar that ends no full window: a neutral frame.
            return np.zeros((self.window, self._obs[self._i].shape[1]), dtype=np.float32)
        return np.array(obs, dtype=np.float32)

    def _info(self) -> dict[str, Any]:
        return {"symbol": self.symbols[self._i], "t": self._t, "position": self._position}
