from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinywindow.config import ConsensusConfig
from tinywindow.consensus.voting import Code, combine, decide, update_weights
from tinywindow.contracts import SIGNALS
from tinywindow.errors import DataError

CFG = ConsensusConfig(threshold=0.55, quorum=2, max_disagreement=0.3, stale_after_s=300)
W3 = np.ones(3)


def one(actions: list[int], confs: list[float], valid: list[bool] | None = None, w: np.ndarray = W3,
        cfg: ConsensusConfig = CFG) -> tuple[int, float, float, int, Code]:
    v = np.array([valid or [True] * len(actions)])
    r = combine(np.array([actions]), np.array([confs]), v, w, cfg)
    return int(r.action[0]), float(r.confidence[0]), float(r.agreement[0]), int(r.votes[0]), Code(int(r.code[0]))


def test_unanimous_and_confidence_weighted_majority() -> None:
    assert one([1, 1, 1], [0.9, 0.8, 0.7]) == (1, pytest.approx(0.8), 1.0, 3, Code.DECIDED)
    a, conf, agree, _n, code = one([-1, -1, 0], [0.9, 0.9, 0.9])
    assert (a, code) == (-1, Code.DECIDED) and conf == pytest.approx(0.6) and agree == pytest.approx(2 / 3)


def test_no_decision_fallbacks_in_order() -> None:
    assert one([1, 1, 1], [0.4, 0.5, 0.5])[4] == Code.LOW_CONFIDENCE
    # one of three opposing: disagreement 1/3 beyond 0.3 -> no decision, within 0.5 -> decided
    assert one([1, -1, 1], [0.95, 0.95, 0.95])[::4] == (0, Code.DISAGREEMENT)
    lenient = CFG.model_copy(update={"max_disagreement": 0.5})
    a, conf, *_, code = one([1, -1, 1], [0.95, 0.95, 0.95], cfg=lenient)
    assert (a, code) == (1, Code.DECIDED) and conf == pytest.approx(0.95 * 2 / 3)
    assert one([1, -1, 0], [0.8, 0.8, 0.1])[4] == Code.TIE
    assert one([1, 1, 1], [0.9, 0.9, 0.9], valid=[True, False, False])[4] == Code.NO_QUORUM
    # no confidence at all is no decision, whatever the threshold
    assert one([1, 1, 1], [0.0, 0.0, 0.0], cfg=CFG.model_copy(update={"threshold": 0.0}))[4] == Code.LOW_CONFIDENCE
    r = combine(np.array([[1, 1, 1], [1, 1, 1], [1, -1, 0]]), np.full((3, 3), 0.9),
                np.array([[True] * 3, [True, False, False], [True] * 3]), W3, CFG)
    assert r.decided.tolist() == [True, False, False] and r.action.tolist() == [1, 0, 0]


def test_a_flat_majority_is_a_decision_not_a_fallback() -> None:
    """One meaning per action: 0 is a target exposure (flat), decided like +1 or -1."""
    assert one([0, 0, 1], [0.9, 0.9, 0.9]) == (0, pytest.approx(0.6), pytest.approx(2 / 3), 3, Code.FLAT)
    r = combine(np.array([[0, 0, 1], [0, 0, 1]]), np.array([[0.9, 0.9, 0.9], [0.5, 0.5, 0.9]]),
                np.ones((2, 3), bool), W3, CFG)
    assert r.decided.tolist() == [True, False]  # a weak flat majority is no decision (low confidence)
    assert [Code(int(c)) for c in r.code] == [Code.FLAT, Code.LOW_CONFIDENCE]
    assert Code.FLAT.is_decision and Code.DECIDED.is_decision and not Code.TIE.is_decision


def test_missing_or_stale_agent_leaves_n_minus_one_deciding() -> None:
    a, conf, _agree, n, code = one([1, 1, -1], [0.8, 0.8, 0.99], valid=[True, True, False])
    assert (a, n, code) == (1, 2, Code.DECIDED) and conf == pytest.approx(0.8)


def test_weights_change_the_decision() -> None:
    votes, confs = [1, -1, -1], [0.9, 0.6, 0.6]
    open_cfg = CFG.model_copy(update={"max_disagreement": 1.0, "threshold": 0.0})
    assert one(votes, confs, cfg=open_cfg)[0] == -1
    heavy = np.array([5.0, 1.0, 1.0])
    a, conf, *_ = one(votes, confs, w=heavy, cfg=open_cfg)
    assert a == 1 and conf == pytest.approx(4.5 / 7)


def votes_table(rows: list[tuple[str, str, str, int, float]]) -> pa.Table:
    df = pd.DataFrame(rows, columns=["symbol", "ts", "agent", "action", "confidence"])
    return pa.table(
        {
            "symbol": df["symbol"],
            "ts": pa.array(pd.to_datetime(df["ts"], utc=True)),
            "agent": df["agent"],
            "model_version": ["v1"] * len(df),
            "action": pa.array(df["action"], pa.int8()),
            "confidence": pa.array(df["confidence"], pa.float32()),
        }
    )


def test_decide_on_a_votes_table_explains_itself() -> None:
    t0 = "2024-01-02T21:00:00Z"
    old = "2024-01-02T20:00:00Z"  # an hour before: stale at 300 s
    votes = votes_table(
        [
            ("AAA", t0, "lstm", 1, 0.8),
            ("AAA", t0, "xgb", 1, 0.7),
            ("AAA", old, "tfm", -1, 0.9),
            ("BBB", t0, "lstm", -1, 0.9),
            ("BBB", t0, "xgb", 1, 0.9),
            ("BBB", t0, "tfm", -1, 0.9),
            ("CCC", t0, "lstm", 1, 0.9),
            ("CCC", t0, "rogue", 1, 1.0),  # not an expected agent: ignored
        ]
    )
    at = pd.Timestamp(t0).value
    signals, used = decide(votes, at, ["lstm", "xgb", "tfm"], {"lstm": 1.0, "xgb": 1.0, "tfm": 1.0}, CFG)
    assert signals.schema.equals(SIGNALS, check_metadata=False)
    rows = {r["symbol"]: r for r in signals.to_pylist()}
    assert rows["AAA"]["action"] == 1 and rows["AAA"]["votes"] == 2
    assert "tfm stale 3600s" in rows["AAA"]["reason"] and rows["AAA"]["reason"].startswith("LONG")
    assert rows["AAA"]["decided"] and not rows["BBB"]["decided"] and not rows["CCC"]["decided"]
    assert rows["BBB"]["action"] == 0 and rows["BBB"]["reason"].startswith("NO DECISION (disagreement")
    assert rows["CCC"]["action"] == 0 and "no quorum" in rows["CCC"]["reason"]
    assert "xgb missing" in rows["CCC"]["reason"]
    assert set(used["agent"]) == {"lstm", "xgb", "tfm"} and len(used) == 6  # fresh votes only
    assert set(used["model_version"]) == {"v1"}
    # as of an earlier time only the old vote exists
    signals, _ = decide(votes, pd.Timestamp(old).value, ["lstm", "xgb", "tfm"], {}, CFG)
    assert signals.num_rows == 1 and signals.column("action")[0].as_py() == 0


def test_brier_weights_reward_calibrated_accuracy_and_stay_bounded() -> None:
    cfg = ConsensusConfig(learning_rate=0.5, min_weight=0.2, max_weight=5.0)
    rng = np.random.default_rng(0)
    m = 400
    truth = rng.choice([-1.0, 1.0], m) * rng.uniform(0.001, 0.02, m)
    direction = np.sign(truth).astype(int)
    good = np.where(rng.random(m) < 0.7, direction, -direction)  # 70% right, says 0.7
    overconfident = np.where(rng.random(m) < 0.55, direction, -direction)  # 55% right, says 0.95
    bad = np.where(rng.random(m) < 0.3, direction, -direction)  # 30% right
    actions = np.stack([good, overconfident, bad], axis=1)
    confs = np.tile([0.7, 0.95, 0.6], (m, 1))
    w, hits, scored = update_weights(np.ones(3), actions, confs, np.ones((m, 3), bool), truth, cfg)
    assert w[0] > 1.0 > w[2] and w[0] > w[1]
    assert w.min() >= 0.2 and w.max() <= 5.0
    assert scored.tolist() == [m, m, m] and hits[0] / m == pytest.approx(0.7, abs=0.06)
    # holds and zero returns are not scored
    w2, _, scored2 = update_weights(np.ones(2), np.array([[0, 1]]), np.array([[0.9, 0.9]]),
                                    np.ones((1, 2), bool), np.array([0.0]), cfg)
    assert w2.tolist() == [1.0, 1.0] and scored2.tolist() == [0, 0]


def test_learning_improves_consensus_accuracy() -> None:
    """With adaptive weights the consensus follows the agent that is actually right."""
    cfg = ConsensusConfig(threshold=0.0, quorum=1, max_disagreement=1.0, learning_rate=0.3,
                          min_weight=0.05, max_weight=20.0)
    rng = np.random.default_rng(7)
    m = 600
    truth = rng.choice([-1.0, 1.0], m)
    skilled = np.where(rng.random(m) < 0.75, truth, -truth)
    noise = rng.choice([-1.0, 1.0], (m, 2))
    actions = np.column_stack([skilled, noise]).astype(int)
    confs = np.full((m, 3), 0.8)
    valid = np.ones((m, 3), bool)
    w = np.ones(3)
    correct_adaptive = 0
    for t in range(m):
        r = combine(actions[t : t + 1], confs[t : t + 1], valid[t : t + 1], w, cfg)
        correct_adaptive += int(r.action[0] == truth[t])
        w, _, _ = update_weights(w, actions[t : t + 1], confs[t : t + 1], valid[t : t + 1], truth[t : t + 1], cfg)
    fixed = combine(actions, confs, valid, np.ones(3), cfg)
    correct_fixed = int((fixed.action == truth).sum())
    assert correct_adaptive > correct_fixed + 0.08 * m
    assert w[0] > w[1] and w[0] > w[2]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda a: st.tuples(
            st.lists(st.lists(st.sampled_from([-1, 0, 1]), min_size=a, max_size=a), min_size=1, max_size=20),
            st.lists(st.lists(st.floats(0, 1), min_size=a, max_size=a), min_size=20, max_size=20),
            st.lists(st.floats(-0.1, 0.1), min_size=20, max_size=20),
        )
    )
)
def test_consensus_outputs_are_well_formed(data: tuple) -> None:
    acts, confs, rets = data
    g, a = len(acts), len(acts[0])
    action = np.array(acts)
    conf = np.array(confs[:g])
    valid = conf > 0.2
    r = combine(action, conf, valid, np.ones(a), CFG)
    assert set(np.unique(r.action)) <= {-1, 0, 1}
    assert np.all((r.confidence >= 0) & (r.confidence <= 1 + 1e-12))
    assert np.all((r.agreement >= 0) & (r.agreement <= 1 + 1e-12))
    assert np.all(r.action[r.votes < CFG.quorum] == 0)
    assert np.all(r.action[r.confidence < CFG.threshold] == 0)
    w, _, _ = update_weights(np.ones(a), action, conf, valid, np.array(rets[:g]), CFG)
    assert np.all((w >= CFG.min_weight) & (w <= CFG.max_weight))


# --------------------------------------------------------------------------- the actor, in-process

PASS = "consensus tests passphrase"
AGENTS = ["lstm", "xgb", "tfm"]


def outcomes(rows: list[tuple[str, str, int, float]]) -> pa.Table:
    return pa.table({
        "symbol": [r[0] for r in rows],
        "ts": pa.array(pd.to_datetime([r[1] for r in rows], utc=True)),
        "action": pa.array([r[2] for r in rows], pa.int8()),
        "realized_return": [r[3] for r in rows],
    })


def test_consensus_actor_decides_learns_and_restarts(tmp_path: Path) -> None:
    from actors.consensus import ConsensusActor
    from tinywindow.config import Config, CryptoConfig
    from tinywindow.crypto.keystore import KeyStore

    KeyStore.init(tmp_path / "keys", PASS, scrypt_log2_n=10)
    cfg = Config(data_dir=str(tmp_path), crypto=CryptoConfig(journal_fsync=False),
                 consensus=ConsensusConfig(threshold=0.5, quorum=2, max_disagreement=0.5, checkpoint_every=3,
                                           learning_rate=1.0))
    a = ConsensusActor(cfg, AGENTS, passphrase=PASS)
    days = [f"2024-01-0{d}T21:00:00Z" for d in range(2, 8)]
    decided = []
    for d in days:  # lstm is always right (up days), tfm always wrong, xgb says hold
        a.submit_votes(votes_table([("AAA", d, "lstm", 1, 0.8), ("AAA", d, "xgb", 0, 0.6), ("AAA", d, "tfm", -1, 0.8)]))
        decided.append(a.decide(d))
    assert [t.column("action")[0].as_py() for t in decided] == [0] * 6  # a tie: no decision
    assert not any(t.column("decided")[0].as_py() for t in decided)
    assert a.decide(days[-1]).equals(decided[-1])  # asked again: the same decision
    rows = a.learn(outcomes([("AAA", d, 0, 0.01) for d in days]))
    assert rows.num_rows == 3 * 6  # every voting agent's own outcome
    w = a.weights()
    assert w["lstm"] > 1.0 > w["tfm"] and w["xgb"] == 1.0
    again = a.learn(outcomes([("AAA", d, 0, 0.01) for d in days]))  # a retry: learned once only,
    assert again.equals(rows)  # but answered again with the first attempt's AGENT_OUTCOMES
    assert a.weights() == w
    stats = a.agent_stats()
    assert stats["lstm"]["hits"] == 6 and stats["tfm"]["hit_rate"] == 0.0
    a.close()

    b = ConsensusActor(cfg, AGENTS, passphrase=PASS)
    assert b.recovery()["checkpoint_seq"] >= 0 and b.weights() == w
    assert b.decide(days[-1]).equals(decided[-1])
    d8 = "2024-01-08T21:00:00Z"
    signals = b.on_votes(votes_table([("AAA", d8, "lstm", 1, 0.8), ("AAA", d8, "xgb", 0, 0.6), ("AAA", d8, "tfm", -1, 0.8)]))
    row = signals.to_pylist()[0]
    assert row["action"] == 1 and "lstm +1@0.80" in row["reason"]  # the learned weights broke the tie
    ns = int(pd.Timestamp(d8).value)
    assert b.decide(ns).equals(signals) and b.decide(pd.Timestamp(d8)).equals(signals)  # one time, any spelling
    with pytest.raises(DataError, match="relative"):
        b.decide("now")  # a decision time never depends on the wall clock
    b.close()
    with pytest.raises(ValueError, match="agents"):
        ConsensusActor(cfg, ["other"], passphrase=PASS)


def test_three_action_agents_are_scored_on_the_same_scale_as_two_action_agents() -> None:
    """A policy over {-1, 0, +1} that is right 60% of the time at confidence 0.45 is skilled:
    scored as a directional forecast it gains weight; scored raw (0.45 < 0.5) it would lose."""
    from tinywindow.consensus.voting import directional_probability

    assert directional_probability(np.array([1 / 3, 1.0, 0.45]), np.array(1 / 3)).tolist() == pytest.approx([0.5, 1.0, 0.5875])
    assert directional_probability(np.array([0.6]), np.array(0.5)).tolist() == pytest.approx([0.6])
    rng = np.random.default_rng(3)
    m = 400
    truth = rng.choice([-1.0, 1.0], m)
    right = rng.random(m) < 0.6
    actions = np.where(right, truth, -truth).astype(np.int8)[:, None]
    confs = np.full((m, 1), 0.45)
    valid = np.ones((m, 1), bool)
    raw, _, _ = update_weights(np.ones(1), actions, confs, valid, truth, CFG)
    scaled, _, _ = update_weights(np.ones(1), actions, confs, valid, truth, CFG, np.array([1 / 3]))
    assert raw[0] < 1.0 < scaled[0]


def test_decide_puts_three_action_and_two_action_agents_on_one_scale() -> None:
    """Two three-action policies at 0.45 and a binary model at 0.6 all say BUY: as
    directional forecasts (0.59, 0.59, 0.6) they clear a 0.55 threshold; raw they would not."""
    ts = pa.array([1_000, 1_000, 1_000, 900], pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    votes = pa.table({
        "symbol": ["A", "A", "A", "B"],
        "ts": ts,
        "agent": ["lstm", "transformer", "xgboost", "lstm"],
        "model_version": ["v1"] * 4,
        "action": pa.array([1, 1, 1, 0], pa.int8()),  # lstm's hold on B marks it three-action
        "confidence": pa.array([0.45, 0.45, 0.6, 0.5], pa.float32()),
    })
    agents = ["lstm", "transformer", "xgboost"]
    cfg = ConsensusConfig(threshold=0.55, quorum=2)
    signals, _ = decide(votes, 1_000, agents, {}, cfg, holders={"transformer"})
    a = signals.filter(pa.compute.equal(signals.column("symbol").cast(pa.string()), "A"))
    assert a.column("action").to_pylist() == [1]
    assert a.column("confidence")[0].as_py() > 0.55
    raw, _ = decide(votes.set_column(4, "action", pa.array([1, 1, 1, 1], pa.int8())), 1_000, agents, {}, cfg)
    a_raw = raw.filter(pa.compute.equal(raw.column("symbol").cast(pa.string()), "A"))
    assert a_raw.column("action").to_pylist() == [0]  # nobody known to hold: raw 0.5 < 0.55


# --------------------------------------------------------------------------- per-agent outcomes, calibration

DAY_NS = 86_400 * 10**9


def vote_rows(ts: int, rows: list[tuple[str, str, int, float]], symbol: str = "AAA") -> pa.Table:
    """VOTES at ``ts`` (ns): (agent, model_version, action, confidence) per row."""
    return pa.table({
        "symbol": [symbol] * len(rows),
        "ts": pa.array([ts] * len(rows), pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "agent": [r[0] for r in rows],
        "model_version": [r[1] for r in rows],
        "action": pa.array([r[2] for r in rows], pa.int8()),
        "confidence": pa.array([r[3] for r in rows], pa.float32()),
    })


def outcome_rows(rows: list[tuple[str, int, float]]) -> pa.Table:
    """OUTCOMES: (symbol, ts ns, realized return) per row."""
    return pa.table({
        "symbol": [r[0] for r in rows],
        "ts": pa.array([r[1] for r in rows], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "action": pa.array([0] * len(rows), pa.int8()),
        "realized_return": [r[2] for r in rows],
    })


def journaled_book(cfg: ConsensusConfig, agents: list[str], cost: float = 0.0) -> tuple[object, list]:
    from tinywindow.consensus.state import ConsensusBook
    from tinywindow.core.codec import CODEC

    journal: list = []
    book = ConsensusBook(cfg, agents, on_commit=lambda b: journal.extend(CODEC.encode_all(b)), cost=cost)
    return book, journal


def replayed(cfg: ConsensusConfig, agents: list[str], journal: list) -> object:
    import json

    from tinywindow.consensus.state import ConsensusBook
    from tinywindow.core.codec import CODEC

    book = ConsensusBook(cfg, agents)
    for kind, payload in journal:
        book.apply(CODEC.decode(kind, json.loads(json.dumps(payload))))
    return book


def test_each_voting_agent_gets_its_own_outcome_net_of_costs_and_replay_rebuilds_it() -> None:
    from tinywindow.contracts import AGENT_OUTCOMES

    cfg = ConsensusConfig(threshold=0.5, quorum=1)
    book, journal = journaled_book(cfg, ["a", "b"], cost=0.001)
    script = [(1, [("a", "v1", 1, 0.8), ("b", "w7", 0, 0.6)], 0.02),
              (2, [("a", "v1", 1, 0.8), ("b", "w7", -1, 0.7)], -0.01),
              (3, [("a", "v2", -1, 0.9), ("b", "w8", -1, 0.7)], 0.03)]
    for day, rows, _ in script:
        book.submit_votes(vote_rows(day * DAY_NS, rows))
        book.decide(day * DAY_NS)
    first = book.learn(outcome_rows([("AAA", DAY_NS, 0.02), ("AAA", 2 * DAY_NS, -0.01)]))
    # day 1 again: not learned again, its rows (as first returned them) come back before day 3's
    second = book.learn(outcome_rows([("AAA", 3 * DAY_NS, 0.03), ("AAA", DAY_NS, 0.02)]))
    assert first.schema.equals(AGENT_OUTCOMES, check_metadata=False) and (first.num_rows, second.num_rows) == (4, 4)
    assert second.slice(0, 2).equals(first.slice(0, 2))
    assert book.agent_outcome_rows().num_rows == 6  # nothing scored twice
    got = {(r["agent"], r["ts"].value // DAY_NS): r for t in (first, second) for r in t.to_pylist()}
    # reward = action * return - cost * |action - the agent's previous action on the symbol|
    expected = {("a", 1): 0.02 - 0.001, ("a", 2): -0.01, ("a", 3): -0.03 - 0.002,
                ("b", 1): 0.0, ("b", 2): 0.01 - 0.001, ("b", 3): -0.03}
    assert {k: r["reward"] for k, r in got.items()} == pytest.approx(expected)
    assert got[("a", 3)]["model_version"] == "v2" and got[("b", 1)]["model_version"] == "w7"
    assert got[("b", 1)]["confidence"] == pytest.approx(0.6) and got[("a", 2)]["realized_return"] == -0.01
    assert book.last_action == {("a", "AAA"): -1, ("b", "AAA"): -1}
    assert book.agent_outcome_rows("b").num_rows == 3
    assert book.agent_outcome_rows(since_ts=3 * DAY_NS).num_rows == 2
    assert {k for k, _ in journal} >= {"votes", "decided", "learned", "agent_outcomes"}
    assert replayed(cfg, ["a", "b"], journal).snapshot() == book.snapshot()


def test_a_learn_retried_after_a_restart_returns_the_first_attempts_agent_outcomes() -> None:
    """The first attempt was journaled, then the actor died before answering: the restored
    book (journal replay) answers the retry with the same AGENT_OUTCOMES and learns nothing
    twice (weights, stats, per-agent outcomes and last actions as after the first attempt)."""
    cfg = ConsensusConfig(threshold=0.5, quorum=1, learning_rate=0.5)
    book, journal = journaled_book(cfg, ["a", "b"], cost=0.001)
    for day, rows in ((1, [("a", "v1", 1, 0.8), ("b", "w7", -1, 0.6)]), (2, [("a", "v1", -1, 0.7), ("b", "w7", 1, 0.9)])):
        book.submit_votes(vote_rows(day * DAY_NS, rows))
        book.decide(day * DAY_NS)
    book.learn(outcome_rows([("AAA", DAY_NS, 0.02)]))
    call = outcome_rows([("AAA", 2 * DAY_NS, -0.01)])
    first = book.learn(call)
    assert first.num_rows == 2
    restarted = replayed(cfg, ["a", "b"], journal)
    retried = restarted.learn(call)
    assert retried.equals(first)
    assert restarted.snapshot() == book.snapshot()  # nothing learned twice
    # and from a checkpoint (snapshot) instead of the journal
    from tinywindow.consensus.state import ConsensusBook

    restored = ConsensusBook(cfg, ["a", "b"], cost=0.001)
    restored.restore(json.loads(json.dumps(book.snapshot())))
    assert restored.learn(call).equals(first)
    # a call of fresh outcomes returns only its own rows
    book.submit_votes(vote_rows(3 * DAY_NS, [("a", "v1", 1, 0.8)]))
    book.decide(3 * DAY_NS)
    assert book.learn(outcome_rows([("AAA", 3 * DAY_NS, 0.01)])).num_rows == 1


def test_the_consensus_actor_returns_and_keeps_agent_outcomes(tmp_path: Path) -> None:
    from actors.consensus import ConsensusActor
    from tinywindow.config import AgentConfig, Config, CryptoConfig
    from tinywindow.crypto.keystore import KeyStore

    KeyStore.init(tmp_path / "keys", PASS, scrypt_log2_n=10)
    cfg = Config(data_dir=str(tmp_path), crypto=CryptoConfig(journal_fsync=False),
                 agents=AgentConfig(cost=0.002), consensus=ConsensusConfig(threshold=0.5, quorum=1))
    a = ConsensusActor(cfg, ["x", "y"], passphrase=PASS)
    a.on_votes(vote_rows(DAY_NS, [("x", "v1", 1, 0.8), ("y", "v3", -1, 0.6)]))
    rows = a.learn(outcome_rows([("AAA", DAY_NS, 0.01)])).to_pylist()
    assert {r["agent"]: r["reward"] for r in rows} == pytest.approx({"x": 0.01 - 0.002, "y": -0.01 - 0.002})
    assert a.checkpoint() > 0  # the rows and each agent's last action go into the checkpoint
    a.close()
    b = ConsensusActor(cfg, ["x", "y"], passphrase=PASS)  # restarted: the rows are rebuilt from the journal
    assert b.recovery()["checkpoint_seq"] > 0
    assert b.agent_outcomes().to_pylist() == rows and b.agent_outcomes("y").num_rows == 1
    assert b.book.last_action == {("x", "AAA"): 1, ("y", "AAA"): -1}
    assert b.agent_outcomes(since_ts=2 * DAY_NS).num_rows == 0
    b.close()


def teach_overconfident(book: object, days: int, hit_every: tuple[int, int] = (11, 20)) -> None:
    """``over`` votes +1 at 0.9 every day and is right ``hit_every[0]`` days in ``hit_every[1]``
    (55%); ``steady`` votes +1 at 0.6 and is right as often."""
    from tinywindow.consensus.state import ConsensusBook

    assert isinstance(book, ConsensusBook)
    outs = []
    for d in range(1, days + 1):
        book.submit_votes(vote_rows(d * DAY_NS, [("over", "v1", 1, 0.9), ("steady", "s1", 1, 0.6)]))
        book.decide(d * DAY_NS)
        outs.append(("AAA", d * DAY_NS, 0.01 if d % hit_every[1] < hit_every[0] else -0.01))
    book.learn(outcome_rows(outs))


def test_an_overconfident_agent_is_calibrated_down_and_no_longer_decides_alone() -> None:
    cfg = ConsensusConfig(threshold=0.6, quorum=1, calibrate_every=50, calibration_min=100, learning_rate=0.05)
    book, journal = journaled_book(cfg, ["over", "steady"])
    alone = vote_rows(10_000 * DAY_NS, [("over", "v1", 1, 0.9)], symbol="ZZZ")
    before = book.preview(alone).to_pylist()[0]
    assert before["decided"] and before["action"] == 1 and before["confidence"] == pytest.approx(0.9)
    teach_overconfident(book, 99)
    assert book.calibration == {}  # 99 outcomes < calibration_min: not calibrated yet
    teach_more = [(d, 0.01 if d % 20 < 11 else -0.01) for d in range(100, 201)]
    for d, _ in teach_more:
        book.submit_votes(vote_rows(d * DAY_NS, [("over", "v1", 1, 0.9), ("steady", "s1", 1, 0.6)]))
        book.decide(d * DAY_NS)
    book.learn(outcome_rows([("AAA", d * DAY_NS, r) for d, r in teach_more]))
    cal = book.calibration["over"]
    assert float(cal(0.9)) == pytest.approx(0.55, abs=0.02) and cal.samples >= 100
    after = book.preview(alone).to_pylist()[0]
    assert not after["decided"] and after["action"] == 0 and "low confidence" in after["reason"]
    assert after["confidence"] == pytest.approx(0.55, abs=0.02)  # the signal's confidence reflects the map
    assert "(raw 0.90)" in after["reason"]
    assert [k for k, _ in journal].count("calibrated") >= 2  # refitted every 50 once 100 exist
    again = replayed(cfg, ["over", "steady"], journal)
    assert again.calibration == book.calibration and again.preview(alone).equals(book.preview(alone))
    from tinywindow.consensus.state import ConsensusBook

    restored = ConsensusBook(cfg, ["over", "steady"])  # a checkpoint (JSON) holds the same state
    restored.restore(json.loads(json.dumps(book.snapshot())))
    assert restored.snapshot() == book.snapshot() and restored.preview(alone).equals(book.preview(alone))


def test_preview_is_the_function_decide_trades_with() -> None:
    """After learning (non-default weights and calibration) the same votes give the same
    SIGNALS through ``preview`` (serving) and ``decide`` (trading)."""
    cfg = ConsensusConfig(threshold=0.5, quorum=1, calibrate_every=20, calibration_min=40, learning_rate=0.3)
    book, _ = journaled_book(cfg, ["over", "steady"])
    teach_overconfident(book, 80)
    assert book.calibration and book.weights != {"over": 1.0, "steady": 1.0}
    at = 1_000 * DAY_NS
    votes = pa.concat_tables([vote_rows(at, [("over", "v1", 1, 0.9), ("steady", "s1", -1, 0.7)], symbol="ZZZ"),
                              vote_rows(at, [("over", "v1", -1, 0.8), ("steady", "s1", 0, 0.9)], symbol="YYY")])
    served = book.preview(votes)
    assert book.decisions.get(("ZZZ", at)) is None  # previews record nothing
    book.submit_votes(votes)
    traded = book.decide(at)
    traded = traded.filter(pa.compute.is_in(traded.column("symbol").cast(pa.string()), pa.array(["YYY", "ZZZ"])))
    assert served.to_pylist() == traded.to_pylist()
    assert served.schema.equals(traded.schema, check_metadata=False)
