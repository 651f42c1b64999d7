"""``VectorTradingEnv``: step-for-step equal to ``TradingEnv`` per symbol, the cross-sectional
reward, no look-ahead, seeded reproducibility, and RLlib's autoreset convention."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from tinywindow.models.rl.env import ACTIONS, TradingEnv
from tinywindow.models.rl.vector_env import VectorTradingEnv

pytestmark = pytest.mark.unit

WINDOW = 4
DAY = np.int64(86_400 * 10**9)


def _panel(n_sym: int = 3, n: int = 60, f: int = 3, seed: int = 0) -> dict:
    """Per-symbol arrays of different lengths, warm-up NaNs, a NaN gap and weights."""
    rng = np.random.default_rng(seed)
    obs, fwd, weight, ts = [], [], [], []
    for k in range(n_sym):
        m = n - 7 * k
        o = rng.standard_normal((m, f)).astype(np.float32)
        o[: 2 + k] = np.nan  # warm-up
        if k == 1:
            o[30] = np.nan  # a gap: windows through bar 30 are not full
        r = rng.normal(0, 0.01, m)
        if k != 2:
            r[-1] = np.nan  # symbol 2 trades its last bar: the episode runs past the data's end
        obs.append(o)
        fwd.append(r)
        weight.append(rng.uniform(0.5, 2.0, m))
        ts.append(DAY * np.arange(m, dtype=np.int64))
    return {"obs": obs, "fwd_ret": fwd, "weight": weight, "ts": ts, "symbols": [f"S{k}" for k in range(n_sym)],
            "window": WINDOW, "cost": 0.001, "episode_len": 12, "reward_scale": 100.0}


def test_each_sub_env_steps_exactly_like_trading_env() -> None:
    """Chosen starts that truncate by episode length, by a gap and by the end of the data."""
    cfg = _panel()
    starts = [(0, 10), (1, 22), (2, 36), (0, 50), (1, 6)]
    venv = VectorTradingEnv({**cfg, "num_envs": len(starts)})
    obs, _ = venv.reset(seed=0, options={"symbol": [s for s, _ in starts], "t": [t for _, t in starts]})
    singles = [TradingEnv(cfg) for _ in starts]
    for k, (env, (s, t)) in enumerate(zip(singles, starts, strict=True)):
        np.testing.assert_array_equal(obs[k], env.reset(seed=0, options={"symbol": s, "t": t})[0])
    actions = np.random.default_rng(1).integers(0, len(ACTIONS), size=(12, len(starts)))
    live = np.ones(len(starts), dtype=bool)
    seen_truncation = np.zeros(len(starts), dtype=bool)
    for step_actions in actions:
        obs, rewards, terminated, truncated, _ = venv.step(step_actions)
        assert not terminated.any()
        for k in np.flatnonzero(live):
            o, r, term, trunc, _ = singles[k].step(step_actions[k])
            np.testing.assert_array_equal(obs[k], o)  # float32, bit for bit
            assert rewards[k] == pytest.approx(r, rel=1e-12, abs=1e-12)
            assert truncated[k] == trunc and not term
            if trunc:
                live[k], seen_truncation[k] = False, True
    assert seen_truncation.all()  # episode_len, a NaN gap (1 at 30), no next return (0 at 59), past the end (2)


def test_truncated_sub_env_resets_on_the_next_step_with_zero_reward() -> None:
    cfg = _panel()
    venv = VectorTradingEnv({**cfg, "num_envs": 2, "episode_len": 3})
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    venv.reset(seed=0, options={"symbol": [0, 2], "t": [10, 20]})
    for _ in range(2):
        _, _, _, truncated, _ = venv.step(np.array([2, 2]))
        assert not truncated.any()
    _, _, _, truncated, _ = venv.step(np.array([2, 2]))
    assert truncated.all()
    obs, rewards, _, truncated, _ = venv.step(np.array([2, 2]))  # the autoreset step
    assert (rewards == 0).all() and not truncated.any()
    assert (venv.position == 0).all() and venv._tradable[venv.symbol_index, venv.bar].all()
    assert obs.shape == (2, WINDOW, 3) and np.isfinite(obs).all()


def test_random_starts_are_seeded_and_follow_trading_env_distribution() -> None:
    cfg = _panel()
    a, b = VectorTradingEnv({**cfg, "num_envs": 8}), VectorTradingEnv({**cfg, "num_envs": 8})
    oa, _ = a.reset(seed=7)
    ob, _ = b.reset(seed=7)
    np.testing.assert_array_equal(oa, ob)
    acts = np.random.default_rng(0).integers(0, 3, size=(60, 8))
    for act in acts:
        ra, rb = a.step(act), b.step(act)
        for x, y in zip(ra[:4], rb[:4], strict=True):
            np.testing.assert_array_equal(x, y)
    assert a._tradable[a.symbol_index, a.bar].any()
    # symbols are drawn in proportion to their tradable bars, starts only on tradable bars
    big = VectorTradingEnv({**cfg, "num_envs": 64})
    draws = []
    for seed in range(40):
        big.reset(seed=seed)
        assert big._tradable[big.symbol_index, big.bar].all()
        draws.append(big.symbol_index.copy())
    freq = np.bincount(np.concatenate(draws), minlength=3) / (40 * 64)
    np.testing.assert_allclose(freq, big._symbol_p, atol=0.03)


def test_observation_never_reads_past_the_current_bar() -> None:
    """Poison every row after bar T: observations up to T are unchanged."""
    cfg = {**_panel(), "episode_len": 100}
    poisoned = {**cfg, "obs": [o.copy() for o in cfg["obs"]]}
    cut = 25
    for o in poisoned["obs"]:
        o[cut + 1 :] = np.where(np.arange(len(o) - cut - 1)[:, None] % 2, np.nan, 1e9)
    for cross_sectional in (False, True):
        starts = {"symbol": [0, 1, 2], "t": [8, 12, 15]} if not cross_sectional else {"symbol": [0, 1, 2], "t": 12}
        envs = [VectorTradingEnv({**c, "num_envs": 3, "cross_sectional": cross_sectional}) for c in (cfg, poisoned)]
        obs = [e.reset(options=starts)[0] for e in envs]
        np.testing.assert_array_equal(obs[0], obs[1])
        while envs[0].bar.max() < cut:
            steps = [e.step(np.array([2, 0, 1])) for e in envs]
            np.testing.assert_array_equal(steps[0][0], steps[1][0])
            np.testing.assert_array_equal(steps[0][1], steps[1][1])
            assert not steps[0][3].any()
        assert envs[0].bar.max() == cut


def _xs_panel(n_sym: int = 6, n: int = 80, seed: int = 0) -> tuple[dict, np.ndarray]:
    """A panel whose forward returns are known; one symbol starts late (not tradable early)."""
    rng = np.random.default_rng(seed)
    fwd = rng.normal(0, 0.01, (n_sym, n))
    fwd[:, -1] = np.nan
    obs = [rng.standard_normal((n, 2)).astype(np.float32) for _ in range(n_sym)]
    ts = [DAY * np.arange(n, dtype=np.int64) for _ in range(n_sym)]
    late = 20
    obs[-1], fwd_last, ts[-1] = obs[-1][late:], fwd[-1, late:], ts[-1][late:]
    cfg = {"obs": obs, "fwd_ret": [*fwd[:-1], fwd_last], "ts": ts, "window": WINDOW, "cost": 0.0,
           "episode_len": 40, "reward_scale": 1.0, "cross_sectional": True}
    return cfg, fwd


def test_cross_sectional_reward_is_market_neutral_and_pays_for_ranking() -> None:
    cfg, fwd = _xs_panel()
    n_envs = 4
    env = VectorTradingEnv({**cfg, "num_envs": n_envs})
    rng = np.random.default_rng(0)
    ranked, random_, same = 0.0, 0.0, []
    env.reset(seed=3)
    for _ in range(400):
        t0, syms = env.bar.copy(), env.symbol_index.copy()
        assert (t0 == t0[0]).all() and len(np.unique(syms)) == n_envs  # one bar, distinct symbols
        r = fwd[syms, t0]
        best = np.where(r == r.max(), 2, np.where(r == r.min(), 0, 1))  # long the best, short the worst
        _, rewards, _, truncated, _ = env.step(best)
        if (rewards != 0).any():
            ranked += rewards.sum()
            np.testing.assert_allclose(rewards, ACTIONS[best] * (r - r.mean()), rtol=1e-12)
        if truncated.any():
            assert truncated.all()  # the cross-section ends together
            env.step(best)  # autoreset
    env.reset(seed=3)
    for _ in range(400):
        syms, t0 = env.symbol_index.copy(), env.bar.copy()
        _, rewards, _, truncated, _ = env.step(rng.integers(0, 3, n_envs))
        random_ += rewards.sum()
        if truncated.any():
            env.step(np.ones(n_envs, dtype=np.int64))
    env.reset(seed=5)
    for a in (0, 2, 2, 1, 0):
        _, rewards, _, _, _ = env.step(np.full(n_envs, a))
        same.append(rewards.sum())
    assert ranked > 0.5 and ranked > random_ + 0.5  # ~0.01 per bar from ranking vs ~0 at random
    np.testing.assert_allclose(same, 0.0, atol=1e-12)  # everyone long (or short): zero net


def test_cross_sectional_truncates_all_when_a_symbol_stops_being_tradable() -> None:
    cfg, _ = _xs_panel()
    cfg["fwd_ret"][2] = cfg["fwd_ret"][2].copy()
    cfg["fwd_ret"][2][30] = np.nan  # symbol 2 has no return at bar 30
    env = VectorTradingEnv({**cfg, "num_envs": 3})
    env.reset(options={"symbol": [0, 2, 4], "t": 27})
    truncs = [env.step(np.array([2, 0, 1]))[3] for _ in range(3)]
    assert not truncs[0].any() and not truncs[1].any() and truncs[2].all()
    with pytest.raises(ValueError, match="only 6 symbols"):
        VectorTradingEnv({**cfg, "num_envs": 7})
    with pytest.raises(ValueError, match="timestamps"):
        VectorTradingEnv({k: v for k, v in cfg.items() if k != "ts"} | {"num_envs": 2})


def test_cross_sectional_aligns_series_on_timestamps() -> None:
    """The late symbol's row j is calendar bar j + 20: its features and returns line up."""
    cfg, fwd = _xs_panel()
    env = VectorTradingEnv({**cfg, "num_envs": 2, "cost": 0.0})
    obs, _ = env.reset(options={"symbol": [5, 0], "t": 40})
    np.testing.assert_array_equal(obs[0], cfg["obs"][5][40 - 20 - WINDOW + 1 : 40 - 20 + 1])
    _, rewards, _, _, _ = env.step(np.array([2, 1]))
    assert rewards[0] == pytest.approx(fwd[5, 40] - (fwd[5, 40] + fwd[0, 40]) / 2)
    assert not env._tradable[5, : 20 + WINDOW - 1].any()  # no full window before it starts


def test_reset_mask_resets_only_the_masked_sub_envs() -> None:
    cfg = _panel()
    env = VectorTradingEnv({**cfg, "num_envs": 3, "episode_len": 2})
    env.reset(seed=0, options={"symbol": [0, 1, 2], "t": [10, 10, 10]})
    env.step(np.array([2, 2, 2]))
    _, _, _, truncated, _ = env.step(np.array([2, 2, 2]))
    assert truncated.all()
    env.reset(options={"reset_mask": np.array([True, False, True])})
    _, rewards, _, _, _ = env.step(np.array([2, 2, 2]))
    assert rewards[0] != 0 and rewards[1] == 0 and rewards[2] != 0  # sub-env 1 autoresets now
