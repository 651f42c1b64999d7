"""ConsensusActor and PortfolioActor on the shared local cluster: the prediction -> trading ->
learning loop, and crashes in the middle of it that restart through checkpoint + journal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import ray

from actors.consensus import ConsensusActor, remote_consensus
from actors.portfolio import PortfolioActor, remote_portfolio
from tinywindow.config import Config, ConsensusConfig, CryptoConfig, PortfolioConfig, RiskConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.data.sources.synthetic import generate

pytestmark = pytest.mark.usefixtures("ray_cluster")

PASSPHRASE = "passphrase for the layer 3 ray tests"
AGENTS = ["oracle", "noise", "contrarian"]
N_BARS, CRASH_AT = 50, 25


def make_cfg(root: Path) -> Config:
    KeyStore.init(root / "keys", PASSPHRASE, scrypt_log2_n=10)
    return Config(
        data_dir=str(root),
        crypto=CryptoConfig(journal_fsync=False),
        consensus=ConsensusConfig(threshold=0.4, quorum=2, max_disagreement=0.5, learning_rate=0.5,
                                  checkpoint_every=10_000),
        risk=RiskConfig(max_position=0.3, max_gross=1.0, max_net=1.0, collar=0.1, confidence_floor=0.3,
                        max_weight=0.3, target_vol=0.5, vol_model="ewma", min_vol_obs=5),
        portfolio=PortfolioConfig(initial_cash_usd=1_000_000, commission_bps=5, slippage_bps=5, checkpoint_every=10_000),
    )


def market() -> tuple[pa.Table, list[int]]:
    bars = generate(3, N_BARS + 1, seed=4)
    times = sorted(set(bars.column("ts").cast(pa.int64()).to_pylist()))
    return bars, times


def bars_at(bars: pa.Table, ts: int) -> pa.Table:
    return bars.filter(pc.equal(bars.column("ts").cast(pa.int64()), ts))


def votes_at(bars: pa.Table, times: list[int], i: int) -> pa.Table:
    """The oracle knows the next close, noise is a seeded coin, the contrarian is always wrong."""
    now, nxt = bars_at(bars, times[i]), bars_at(bars, times[i + 1])
    symbols = now.column("symbol").cast(pa.string()).to_pylist()
    up = np.sign(nxt.column("close").to_numpy() / now.column("close").to_numpy() - 1).astype(int)
    rng = np.random.default_rng(i)
    rows: dict[str, list[Any]] = {k: [] for k in ("symbol", "agent", "action", "confidence")}
    for j, s in enumerate(symbols):
        for agent, action, conf in (("oracle", up[j], 0.8), ("noise", rng.choice([-1, 1]), 0.6),
                                    ("contrarian", -up[j], 0.7)):
            rows["symbol"].append(s)
            rows["agent"].append(agent)
            rows["action"].append(int(action))
            rows["confidence"].append(conf)
    n = len(rows["symbol"])
    return pa.table({
        "symbol": rows["symbol"], "ts": pa.array([times[i]] * n, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "agent": rows["agent"], "model_version": ["v1"] * n,
        "action": pa.array(rows["action"], pa.int8()), "confidence": pa.array(rows["confidence"], pa.float32()),
    })


class Local:
    """The same calls as an actor handle, in-process (the reference run never crashes)."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.obj, method)(*args)


class Remote:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def call(self, method: str, *args: Any) -> Any:
        return ray.get(getattr(self.handle, method).remote(*args), timeout=60)


def step(consensus: Any, portfolio: Any, bars: pa.Table, times: list[int], i: int, seq: int) -> tuple[pa.Table, int]:
    """One bar of the loop: votes -> consensus -> signals -> portfolio -> outcomes -> learning."""
    signals = consensus.call("on_votes", votes_at(bars, times, i))
    orders = portfolio.call("apply_signals", signals, bars_at(bars, times[i]))
    outcomes, nxt = portfolio.call("outcomes_since", seq)
    if outcomes.num_rows:
        consensus.call("learn", outcomes)
    return orders, nxt


def wait_back(handle: Any, deadline_s: float = 45.0) -> dict[str, int]:
    """Poll until the *restarted* actor answers (with a deadline, never a blind sleep).

    ``ray.kill`` returns before the old process is gone, so the first calls may still reach
    it (its own start-up replayed nothing: the journal was empty then); the new instance is
    the one whose start-up replayed the journal.
    """
    end = time.monotonic() + deadline_s
    while True:
        try:
            rec: dict[str, int] = ray.get(handle.recovery.remote(), timeout=5)
            if rec["replayed"] > 0 or rec["checkpoint_seq"] > 0:
                return rec
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass
        if time.monotonic() > end:
            raise TimeoutError("actor did not come back through its start-up path")
        time.sleep(0.2)


def test_learning_loop_survives_crashes_without_double_trading(tmp_path: Path) -> None:
    bars, times = market()
    env = {"runtime_env": {"env_vars": {"TW_PASSPHRASE": PASSPHRASE}}}

    # reference: the same loop with plain classes in this process, no crash
    ref_cfg = make_cfg(tmp_path / "ref")
    ref_c = Local(ConsensusActor(ref_cfg, AGENTS, passphrase=PASSPHRASE))
    ref_p = Local(PortfolioActor(ref_cfg, passphrase=PASSPHRASE))
    seq = 0
    for i in range(N_BARS):
        _, seq = step(ref_c, ref_p, bars, times, i, seq)

    cfg = make_cfg(tmp_path / "live")
    c_handle = remote_consensus(max_restarts=3, **env).remote(cfg, AGENTS)
    p_handle = remote_portfolio(max_restarts=3, **env).remote(cfg)
    cons, port = Remote(c_handle), Remote(p_handle)
    seq, n_orders = 0, 0
    for i in range(CRASH_AT):
        orders, seq = step(cons, port, bars, times, i, seq)
        n_orders += orders.num_rows
        if i == CRASH_AT - 6:  # a checkpoint, then five more bars only in the journal
            assert port.call("checkpoint") > 0 and cons.call("checkpoint") > 0
    assert n_orders > 3
    before = port.call("snapshot")
    weights_before = cons.call("weights")

    ray.kill(p_handle, no_restart=False)
    ray.kill(c_handle, no_restart=False)
    rec_p, rec_c = wait_back(p_handle), wait_back(c_handle)
    assert rec_p["replayed"] > 0 and rec_c["replayed"] > 0
    assert rec_p["checkpoint_seq"] >= 0 and rec_c["checkpoint_seq"] >= 0  # both halves of start-up
    assert port.call("snapshot") == before and cons.call("weights") == weights_before

    # at-least-once delivery: the last bar's signals arrive again after the restart
    signals = cons.call("decide", times[CRASH_AT - 1])
    assert port.call("apply_signals", signals, bars_at(bars, times[CRASH_AT - 1])).num_rows == 0
    assert port.call("snapshot") == before

    for i in range(CRASH_AT, N_BARS):
        _, seq = step(cons, port, bars, times, i, seq)

    final, expected = port.call("snapshot"), ref_p.call("snapshot")
    assert final == expected  # same cash, positions, trades: nothing traded twice, nothing lost
    assert final["closed_trades"] > 0
    w = cons.call("weights")
    assert w == ref_c.call("weights")
    assert w["oracle"] > w["noise"] > w["contrarian"]  # realized outcomes reached the weights
    per_agent = cons.call("agent_outcomes")  # each agent's own outcome and reward, rebuilt after the crash
    assert per_agent.num_rows > 0 and per_agent.to_pylist() == ref_c.call("agent_outcomes").to_pylist()
    rewards = {a: sum(r["reward"] for r in per_agent.to_pylist() if r["agent"] == a) for a in AGENTS}
    assert rewards["oracle"] > rewards["contrarian"]
    assert port.call("verify_journal")["ok"]
    ref_c.obj.close()
    ref_p.obj.close()


def _teach_and_votes(consensus: Remote) -> tuple[pa.Table, int]:
    """Teach the consensus (oracle right, contrarian over-confident and wrong half the time)
    on symbol TEACH, then the votes of a later time on two other symbols."""
    day = 86_400 * 10**9

    def votes(ts: int, symbol: str, rows: list[tuple[str, int, float]]) -> pa.Table:
        return pa.table({
            "symbol": [symbol] * len(rows), "ts": pa.array([ts] * len(rows), pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "agent": [r[0] for r in rows], "model_version": ["v1"] * len(rows),
            "action": pa.array([r[1] for r in rows], pa.int8()), "confidence": pa.array([r[2] for r in rows], pa.float32()),
        })

    outcomes = []
    for d in range(1, 81):
        consensus.call("on_votes", votes(d * day, "TEACH", [("oracle", 1, 0.7), ("noise", -1, 0.6), ("contrarian", 1, 0.95)]))
        outcomes.append((d * day, 0.01 if d % 20 < 11 else -0.01))
    learned = consensus.call("learn", pa.table({
        "symbol": ["TEACH"] * len(outcomes), "ts": pa.array([t for t, _ in outcomes], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "action": pa.array([0] * len(outcomes), pa.int8()), "realized_return": [r for _, r in outcomes],
    }))
    assert learned.num_rows == 3 * len(outcomes)
    at = 200 * day
    return pa.concat_tables([votes(at, "AAA", [("oracle", 1, 0.7), ("noise", -1, 0.6), ("contrarian", -1, 0.95)]),
                             votes(at, "BBB", [("oracle", 0, 0.8), ("noise", 1, 0.6), ("contrarian", 1, 0.9)])]), at


def test_the_gateway_signal_is_the_live_consensus_signal(tmp_path: Path) -> None:
    """The gateway's signal path (``Gateway._signal``) finds the live ConsensusActor by name
    and answers what that consensus trades for the same votes, with the weights and
    calibration it learned; without a live consensus it says it used default weights."""
    import asyncio

    from actors.consensus import live_consensus
    from actors.gateway import DEFAULT_WEIGHTS_NOTE, Gateway

    deadline = time.monotonic() + 30
    while live_consensus() is not None:  # an earlier test's consensus is going away
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cfg = make_cfg(tmp_path).set("consensus.calibrate_every", 20).set("consensus.calibration_min", 40)
    class SignalPath:  # the Gateway's signal path only, without Serve
        _signal, _live, _default_signal = Gateway._signal, Gateway._live, Gateway._default_signal

    gateway: Any = SignalPath()
    gateway.models, gateway.consensus = dict.fromkeys(AGENTS), cfg.consensus
    handle = remote_consensus(num_cpus=0, runtime_env={"env_vars": {"TW_PASSPHRASE": PASSPHRASE}}).remote(cfg, AGENTS)
    try:
        consensus = Remote(handle)
        assert ray.get(live_consensus().weights.remote()) == consensus.call("weights")  # it is the live one
        votes, _ = _teach_and_votes(consensus)
        assert consensus.call("calibration") and consensus.call("weights")["contrarian"] < 1.0
        served, source = asyncio.run(gateway._signal(votes))
        traded = [r for r in consensus.call("on_votes", votes).to_pylist() if r["symbol"] != "TEACH"]
        assert source == "live" and served.to_pylist() == traded
        assert "(raw 0.95)" in served.to_pylist()[0]["reason"]  # the contrarian's calibrated confidence
        second = remote_consensus(num_cpus=0, runtime_env={"env_vars": {"TW_PASSPHRASE": PASSPHRASE}}).remote(
            cfg, AGENTS, "consensus-2")  # a second consensus runs unregistered: the first stays the live one
        assert ray.get(second.weights.remote()) != ray.get(live_consensus().weights.remote()) == consensus.call("weights")
        ray.kill(second, no_restart=True)
    finally:
        ray.kill(handle, no_restart=True)
    deadline = time.monotonic() + 30
    while live_consensus() is not None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    gateway._live_handle = None
    gateway._live_looked_at = -1e9
    default, source = asyncio.run(gateway._signal(votes))
    assert source == "default-weights"
    assert all(r.startswith(DEFAULT_WEIGHTS_NOTE) for r in default.column("reason").to_pylist())
    assert default.column("confidence").to_pylist() != served.column("confidence").to_pylist()  # learned != default
