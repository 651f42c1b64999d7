"""The trading environment: gymnasium's checker, reward arithmetic, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from tinywindow.models.rl.env import ACTIONS, TradingEnv
from tinywindow.models.windows import Normalizer

WINDOW = 4


def _config(obs: np.ndarray, fwd: np.ndarray, cost: float = 0.001, episode_len: int = 50) -> dict:
    return {"obs": [obs], "fwd_ret": [fwd], "symbols": ["X"], "window": WINDOW, "cost": cost,
            "episode_len": episode_len, "reward_scale": 1.0}


def _arrays(n: int = 40, f: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, f)).astype(np.float32)
    obs[:2] = np.nan  # warm-up rows
    fwd = rng.normal(0, 0.01, n)
    fwd[-1] = np.nan  # the last bar has no next close
    return obs, fwd


def test_passes_gymnasium_env_checker() -> None:
    obs, fwd = _arrays()
    check_env(TradingEnv(_config(obs, fwd)), skip_render_check=True)


def test_reward_is_exposure_times_next_return_minus_cost() -> None:
    obs, fwd = _arrays()
    env = TradingEnv(_config(obs, fwd, cost=0.001))
    first = 2 + WINDOW - 1  # first bar with a full finite window
    env.reset(seed=0, options={"symbol": 0, "t": first})
    expected_prev = 0.0
    for k, a in enumerate([2, 2, 0, 1, 0]):
        _, reward, terminated, truncated, info = env.step(a)
        t = first + k
        exposure = float(ACTIONS[a])
        assert reward == pytest.approx(exposure * fwd[t] - 0.001 * abs(exposure - expected_prev))
        assert info["position"] == exposure and not terminated and not truncated
        expected_prev = exposure


def test_observation_never_reads_past_the_current_bar() -> None:
    """Two envs whose data differ only after bar T give identical observations up to T."""
    obs, fwd = _arrays(n=60)
    cut = 30
    future = obs.copy()
    future[cut + 1 :] = 1e3 * np.random.default_rng(1).standard_normal(future[cut + 1 :].shape)
    a = TradingEnv(_config(obs, fwd))
    b = TradingEnv(_config(future, fwd))
    start = 2 + WINDOW - 1
    oa, _ = a.reset(seed=3, options={"symbol": 0, "t": start})
    ob, _ = b.reset(seed=3, options={"symbol": 0, "t": start})
    np.testing.assert_array_equal(oa, ob)
    for t in range(start + 1, cut + 1):
        oa, ra, *_ = a.step(2)
        ob, rb, *_ = b.step(2)
        assert ra == rb
        np.testing.assert_array_equal(oa, ob)  # observation at bar t: rows <= t only
        np.testing.assert_array_equal(oa[-1], obs[t])  # ... ending exactly at t
    oa, *_ = a.step(2)
    ob, *_ = b.step(2)
    assert not np.array_equal(oa, ob)  # bar cut + 1 is now the current bar: it shows


def test_random_starts_are_seeded_and_episodes_truncate() -> None:
    obs, fwd = _arrays(n=80)
    env = TradingEnv(_config(obs, fwd, episode_len=10))
    twin = TradingEnv(_config(obs, fwd, episode_len=10))
    assert env.reset(seed=7)[1]["t"] == twin.reset(seed=7)[1]["t"]
    env.reset(seed=11)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _info = env.step(env.action_space.sample())
        assert not terminated
        steps += 1
    assert steps <= 10


def test_episode_ends_at_the_last_bar_with_a_known_return() -> None:
    obs, fwd = _arrays(n=20)
    env = TradingEnv(_config(obs, fwd, episode_len=100))
    env.reset(seed=0, options={"symbol": 0, "t": 17})
    _, _, _, truncated, _ = env.step(1)
    assert not truncated
    _, _, _, truncated, _ = env.step(1)  # bar 19 has no forward return: the episode is over
    assert truncated


def test_rejects_data_without_any_full_window() -> None:
    obs = np.full((5, 2), np.nan, np.float32)
    with pytest.raises(ValueError, match="full window"):
        TradingEnv(_config(obs, np.zeros(5)))


def test_normalizer_clips_and_keeps_nan() -> None:
    rows = np.array([[0.0, 1.0], [2.0, 3.0], [np.nan, 1.0]], np.float32)
    n = Normalizer.fit(["a", "b"], rows)
    z = n.apply(np.array([[1.0, 2.0], [1e9, np.nan]], np.float32))
    np.testing.assert_allclose(z[0], [0.0, 0.0])
    assert z[1, 0] == 10.0 and np.isnan(z[1, 1])
