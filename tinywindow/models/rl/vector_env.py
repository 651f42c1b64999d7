"""``VectorTradingEnv``: N trading sub-envs stepped at once in numpy (a gymnasium ``VectorEnv``).

It takes the same config dict as ``TradingEnv`` (``env.env_config``) plus ``num_envs`` (RLlib
passes it through ``vector_entry_point``) and ``cross_sectional`` (default False).  At init
every symbol's standardized features, forward returns and weights are padded and stacked
into [symbols, bars, ...] arrays, so a step is a handful of array operations over all
sub-envs and the observations are one fancy index (no Python loop over sub-envs).

**Per-symbol mode** (``cross_sectional=False``): sub-env k is exactly a ``TradingEnv``: same
observation (the last ``window`` feature rows, a zero frame when they are not all finite),
same actions (``ACTIONS``), reward, cost, ``reward_scale``, ``weight``, truncation rules and
``episode_len``.  Each sub-env draws its (symbol, start bar) like ``TradingEnv.reset`` does
(symbol in proportion to its tradable bars, then a tradable bar uniformly), from the vector
env's own seeded RNG.

**Cross-sectional mode** (``cross_sectional=True``): the series are aligned on their
timestamps (the config's ``ts``, which ``env_config`` fills in); a symbol's window is the
``window`` calendar bars ending at t, and a bar is tradable when that window is complete
and finite and the symbol also has the next calendar bar (its forward return).  An episode
draws one start bar t0 common to all sub-envs (among bars where at least ``num_envs``
symbols are tradable) and gives sub-env k a symbol drawn without replacement among those
tradable at t0.  All sub-envs then step through the same bars, and

    reward_k = (a_k * (r_k - mean_j r_j) - cost * |a_k - a_k_prev|) * reward_scale * weight_k

where the mean is over the sub-envs at that bar: the policy (one set of weights scoring
every symbol) is paid for ranking symbols against each other, a market-neutral allocation,
not for the market's direction.  When one sub-env's symbol stops being tradable (or after
``episode_len`` bars) that sub-env truncates, and so do all the others: the cross-section
is only defined while every slot has a symbol, so the next episode draws a fresh start and
symbols.

**Autoreset**: ``AutoresetMode.NEXT_STEP`` (gymnasium 1.x's default, what RLlib 2.60's
``SingleAgentEnvRunner`` expects: after a sub-env returns truncated, its next ``step``
ignores its action and returns the reset observation with reward 0, and RLlib records that
as the new episode's ``add_env_reset``).  Episodes never terminate (the market goes on).

No look-ahead: the observation of bar t gathers feature rows t-window+1 .. t only, and the
forward return of bar t is read only when the action at t is rewarded.  ``infos`` is empty
(RLlib converts infos per sub-env per step); ``symbol_index``, ``bar`` and ``position``
expose the state.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from tinywindow.models.rl.env import ACTIONS
from tinywindow.models.windows import CLIP, full_window_mask

_EXPOSURE = ACTIONS.astype(np.float64)


class VectorTradingEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """N trading sub-envs in numpy, per-symbol or cross-sectional (see the module docstring)."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        cfg = dict(config or {})
        self.num_envs = int(cfg.get("num_envs", 1))
        self.cross_sectional = bool(cfg.get("cross_sectional", False))
        self.window = w = int(cfg["window"])
        self.cost = float(cfg["cost"])
        self.episode_len = int(cfg.get("episode_len", 256))
        self.reward_scale = float(cfg.get("reward_scale", 100.0))
        obs = [np.asarray(o, dtype=np.float32) for o in cfg["obs"]]
        fwd = [np.asarray(r, dtype=np.float64) for r in cfg["fwd_ret"]]
        weight = [np.asarray(x, dtype=np.float64) for x in cfg.get("weight", [np.ones(len(r)) for r in fwd])]
        if not obs or len(obs) != len(fwd) or len(weight) != len(fwd):
            raise ValueError("VectorTradingEnv needs one observation, return (and weight) array per symbol")
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {self.num_envs}")
        self.symbols: list[str] = list(cfg.get("symbols", [str(i) for i in range(len(obs))]))
        n_features = obs[0].shape[1]
        if self.cross_sectional:
            if "ts" not in cfg:
                raise ValueError("cross-sectional mode needs each series' timestamps (the config's \"ts\", from env_config)")
            obs, fwd, weight = _align(obs, fwd, weight, [np.asarray(t, dtype=np.int64) for t in cfg["ts"]])
            if self.num_envs > len(obs):
                raise ValueError(
                    f"cross-sectional mode draws num_envs={self.num_envs} distinct symbols per episode, "
                    f"but there are only {len(obs)} symbols"
                )
        self._stack(obs, fwd, weight, w, n_features)

        self.single_observation_space = gym.spaces.Box(-CLIP, CLIP, shape=(w, n_features), dtype=np.float32)
        self.single_action_space = gym.spaces.Discrete(len(ACTIONS))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._offsets = np.arange(w)[None, :]
        self._rng = np.random.default_rng(cfg.get("seed"))
        n = self.num_envs
        self.symbol_index = np.zeros(n, dtype=np.int64)
        self.bar = np.zeros(n, dtype=np.int64)
        self.position = np.zeros(n, dtype=np.float64)
        self._steps = np.zeros(n, dtype=np.int64)
        self._autoreset = np.ones(n, dtype=bool)  # every sub-env must be reset first

    def _stack(self, obs: list[np.ndarray], fwd: list[np.ndarray], weight: list[np.ndarray], w: int, f: int) -> None:
        """Pad and stack the per-symbol arrays (``window - 1`` leading zero rows for the gather)."""
        n_sym = len(obs)
        self._len = np.array([len(o) for o in obs], dtype=np.int64)
        t_max = int(self._len.max())
        self._x = np.zeros((n_sym, w - 1 + t_max, f), dtype=np.float32)
        self._fwd = np.full((n_sym, t_max + 1), np.nan)
        self._weight = np.ones((n_sym, t_max + 1))
        self._window_ok = np.zeros((n_sym, t_max + 1), dtype=bool)  # rows t-w+1..t all finite
        self._tradable = np.zeros((n_sym, t_max + 1), dtype=bool)  # ... and fwd_ret[t] known
        for s, (o, r, wt) in enumerate(zip(obs, fwd, weight, strict=True)):
            n = len(o)
            if len(r) != n or len(wt) != n:
                raise ValueError(f"symbol {s}: {n} feature rows but {len(r)} returns and {len(wt)} weights")
            self._x[s, w - 1 : w - 1 + n] = o
            self._fwd[s, :n] = r
            self._weight[s, :n] = wt
            self._window_ok[s, :n] = full_window_mask(o, np.arange(n), w)
            self._tradable[s, :n] = self._window_ok[s, :n] & np.isfinite(r)
        counts = self._tradable.sum(axis=1)
        if counts.sum() == 0:
            raise ValueError(f"no bar has a full window of {w} finite feature rows")
        self._symbol_p = counts / counts.sum()
        # tradable bars of each symbol, padded: a start is one integer draw per sub-env
        self._starts = np.zeros((n_sym, max(int(counts.max()), 1)), dtype=np.int64)
        for s in range(n_sym):
            idx = np.flatnonzero(self._tradable[s])
            self._starts[s, : len(idx)] = idx
        self._n_starts = counts
        if self.cross_sectional:
            self._xs_starts = np.flatnonzero(self._tradable.sum(axis=0) >= self.num_envs)
            if len(self._xs_starts) == 0:
                raise ValueError(f"no bar has {self.num_envs} tradable symbols (num_envs) at once")

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env, or those in ``options["reset_mask"]`` (gymnasium's partial reset,
        for same-step autoreset callers); ``options`` may choose starts:
        ``{"symbol": [...], "t": ...}``."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        all_envs = np.ones(self.num_envs, dtype=bool)
        opts = options or {}
        if "reset_mask" in opts:
            mask = np.asarray(opts["reset_mask"], dtype=bool).reshape(self.num_envs)
            if self.cross_sectional and mask.any() and not mask.all():
                raise ValueError("cross-sectional sub-envs reset together: reset_mask must be all or none")
            if mask.any():
                self._draw(mask)
            self._autoreset = self._autoreset & ~mask
            return self._observe(), {}
        if "symbol" in opts and "t" in opts:  # chosen starts (tests, replays)
            sym = np.broadcast_to(np.asarray(opts["symbol"], dtype=np.int64), (self.num_envs,)).copy()
            t = np.broadcast_to(np.asarray(opts["t"], dtype=np.int64), (self.num_envs,)).copy()
            if not self._tradable[sym, t].all():
                raise ValueError(f"chosen starts {list(zip(sym, t, strict=True))} are not all tradable bars")
            if self.cross_sectional and (len(np.unique(t)) != 1 or len(np.unique(sym)) != self.num_envs):
                raise ValueError("cross-sectional starts need one common bar and distinct symbols")
            self._start(all_envs, sym, t)
        else:
            self._draw(all_envs)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        return self._observe(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        a = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        if a.min() < 0 or a.max() >= len(ACTIONS):
            raise ValueError(f"actions must be in 0..{len(ACTIONS) - 1}, got {a}")
        resetting = self._autoreset
        acting = ~resetting
        rewards = np.zeros(self.num_envs)
        truncated = np.zeros(self.num_envs, dtype=bool)
        if acting.any():
            i, t = self.symbol_index, self.bar
            exposure = _EXPOSURE[a]
            ret = self._fwd[i, t]  # return of bar t -> t+1: known after acting
            if self.cross_sectional:
                ret = ret - ret[acting].mean()
            pnl = exposure * ret - self.cost * np.abs(exposure - self.position)
            rewards = np.where(acting, pnl * self.reward_scale * self._weight[i, t], 0.0)
            self.position = np.where(acting, exposure, self.position)
            self._steps += acting
            self.bar = t = t + acting
            truncated = acting & ((self._steps >= self.episode_len) | ~self._tradable[i, t])
            if self.cross_sectional and truncated.any():
                truncated = acting.copy()  # the cross-section ends together
            past_end = truncated & (t >= self._len[i])
            self.bar = t - past_end  # the last observation repeats the final window
        if resetting.any():
            self._draw(resetting)
        self._autoreset = truncated
        return self._observe(), rewards, np.zeros(self.num_envs, dtype=bool), truncated, {}

    def close(self, **kwargs: Any) -> None:
        self.closed = True

    # ------------------------------------------------------------------ internals
    def _draw(self, envs: np.ndarray) -> None:
        """New random starts for the sub-envs in ``envs`` (a mask)."""
        m = int(envs.sum())
        if self.cross_sectional:  # always all sub-envs at once
            t0 = int(self._xs_starts[self._rng.integers(len(self._xs_starts))])
            sym = self._rng.choice(np.flatnonzero(self._tradable[:, t0]), size=m, replace=False)
            self._start(envs, sym, np.full(m, t0))
            return
        sym = self._rng.choice(len(self._symbol_p), size=m, p=self._symbol_p)
        t = self._starts[sym, self._rng.integers(0, self._n_starts[sym])]
        self._start(envs, sym, t)

    def _start(self, envs: np.ndarray, sym: np.ndarray, t: np.ndarray) -> None:
        self.symbol_index[envs] = sym
        self.bar[envs] = t
        self.position[envs] = 0.0
        self._steps[envs] = 0

    def _observe(self) -> np.ndarray:
        """Feature rows t-window+1 .. t of every sub-env's symbol (one gather; never a row after t)."""
        i, t = self.symbol_index, self.bar
        obs = self._x[i[:, None], t[:, None] + self._offsets]
        ok = self._window_ok[i, t]
        if not ok.all():  # only at truncation on a bar that ends no full window: a neutral frame
            obs[~ok] = 0.0
        return obs


def _align(
    obs: list[np.ndarray], fwd: list[np.ndarray], weight: list[np.ndarray], ts: list[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Each series on the common calendar of all timestamps (NaN rows where a symbol has no bar).

    A forward return is kept only when the symbol's next row is the next calendar bar, so every
    reward of a cross-section spans the same bar.
    """
    if len(ts) != len(obs):
        raise ValueError(f"{len(obs)} series but {len(ts)} timestamp arrays")
    calendar = np.unique(np.concatenate(ts))
    n, f = len(calendar), obs[0].shape[1]
    out_obs, out_fwd, out_w = [], [], []
    for o, r, wt, t in zip(obs, fwd, weight, ts, strict=True):
        if len(t) != len(o) or (len(t) > 1 and not (np.diff(t) > 0).all()):
            raise ValueError("each series needs one increasing timestamp per feature row")
        pos = np.searchsorted(calendar, t)
        x = np.full((n, f), np.nan, dtype=np.float32)
        x[pos] = o
        rr = np.full(n, np.nan)
        consecutive = np.r_[np.diff(pos) == 1, True]  # the last row's return is NaN or past the calendar
        rr[pos] = np.where(consecutive, r, np.nan)
        ww = np.ones(n)
        ww[pos] = wt
        out_obs.append(x)
        out_fwd.append(rr)
        out_w.append(ww)
    return out_obs, out_fwd, out_w
