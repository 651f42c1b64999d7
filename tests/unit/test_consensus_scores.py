"""The consensus over scores (``consensus.mode`` score): the combination against hand
computations, its no-decision rules, IC-learned weights being the ones served, the journal
and old payloads; and vote mode's SIGNALS score."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tinywindow.consensus.codes import Code
from tinywindow.consensus.config import ConsensusConfig
from tinywindow.consensus.scoring import combine_scores, ic_scale, rank_ic, update_weights_ic
from tinywindow.consensus.state import ConsensusBook
from tinywindow.consensus.voting import decide
from tinywindow.contracts import SIGNALS
from tinywindow.core.codec import CODEC

pytestmark = pytest.mark.unit

SCORE = ConsensusConfig(mode="score", quorum=2, min_names=3, stale_after_s=300)
BAR_NS = 86_400 * 10**9
SYMBOLS = [f"S{i:02d}" for i in range(10)]


def votes(ts: int, rows: list[tuple[str, str, float]], ts_of: dict[str, int] | None = None) -> pa.Table:
    """VOTES at ``ts`` (ns): (symbol, agent, score) per row; action sign(score), confidence
    0.6; ``ts_of`` overrides the time of an agent's votes."""
    ts_of = ts_of or {}
    return pa.table({
        "symbol": [r[0] for r in rows],
        "ts": pa.array([ts_of.get(r[1], ts) for r in rows], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "agent": [r[1] for r in rows],
        "model_version": ["v1"] * len(rows),
        "action": pa.array([int(np.sign(r[2])) for r in rows], pa.int8()),
        "confidence": pa.array([0.6] * len(rows), pa.float32()),
        "score": pa.array([r[2] for r in rows], pa.float32()),
    })


def outcomes(ts: int, returns: dict[str, float]) -> pa.Table:
    return pa.table({
        "symbol": list(returns),
        "ts": pa.array([ts] * len(returns), pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "action": pa.array([0] * len(returns), pa.int8()),
        "realized_return": list(returns.values()),
    })


def by_symbol(signals: pa.Table) -> dict[str, dict[str, Any]]:
    return {r["symbol"]: r for r in signals.to_pylist()}


# --------------------------------------------------------------------------- the kernel


def test_zscore_combination_matches_a_hand_computation() -> None:
    s = np.array([[1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [6.0, 1.0]])
    res = combine_scores(s, np.ones((4, 2), bool), np.array([1.0, 3.0]), SCORE)
    z0 = np.array([-2.0, -1.0, 0.0, 3.0]) / np.sqrt(3.5)  # mean 3, population std sqrt(14 / 4)
    z1 = np.array([1.5, 0.5, -0.5, -1.5]) / np.sqrt(1.25)
    want = (1.0 * z0 + 3.0 * z1) / 4.0
    np.testing.assert_allclose(res.score, want)
    np.testing.assert_allclose(res.z, np.column_stack([z0, z1]))
    assert res.action.tolist() == [1, 1, -1, -1] and res.decided.all()
    assert [Code(int(c)) for c in res.code] == [Code.DECIDED] * 4
    # symbol 0: agent 1 (w 3, z +1.342) against agent 0 (w 1, z -1.069)
    assert res.confidence[0] == pytest.approx(3 * z1[0] / (3 * z1[0] - z0[0]))
    assert res.agreement[0] == pytest.approx(0.75) and res.votes.tolist() == [2] * 4 and res.names == 4


def test_rank_combination_matches_a_hand_computation() -> None:
    s = np.array([[1.0, 4.0], [2.0, 3.0], [2.0, 2.0], [5.0, 1.0]])
    res = combine_scores(s, np.ones((4, 2), bool), np.ones(2), SCORE.model_copy(update={"score_method": "rank"}))
    # agent 0: ranks 1, 2.5, 2.5, 4 -> -1, 0, 0, 1; agent 1: ranks 4, 3, 2, 1 -> 1, 1/3, -1/3, -1
    np.testing.assert_allclose(res.z, [[-1, 1], [0, 1 / 3], [0, -1 / 3], [1, -1]])
    np.testing.assert_allclose(res.score, [0.0, 1 / 6, -1 / 6, 0.0], atol=1e-12)
    assert res.action.tolist() == [0, 1, -1, 0]
    assert [Code(int(c)) for c in res.code] == [Code.FLAT, Code.DECIDED, Code.DECIDED, Code.FLAT]
    assert res.decided.all()  # a zero score is a decision to be flat
    assert res.confidence[1] == pytest.approx(1.0) and res.agreement[1] == pytest.approx(0.5)  # agent 0 at z 0


def test_doubling_an_agents_weight_moves_the_combined_score_toward_its_ranking() -> None:
    rng = np.random.default_rng(3)
    s = rng.normal(size=(8, 3))
    valid = np.ones(s.shape, bool)
    equal = combine_scores(s, valid, np.ones(3), SCORE)
    heavy = combine_scores(s, valid, np.array([2.0, 1.0, 1.0]), SCORE)
    z0 = equal.z[:, 0]
    assert np.all(np.abs(heavy.score - z0) < np.abs(equal.score - z0))
    assert rank_ic(heavy.score[:, None], valid[:, :1], z0, 3)[0] > rank_ic(equal.score[:, None], valid[:, :1], z0, 3)[0]


def test_quorum_missing_and_unranked_agents_and_too_few_names() -> None:
    s = np.arange(15, dtype=float).reshape(5, 3)
    valid = np.ones(s.shape, bool)
    valid[:, 2] = False  # agent 2 missing: the other two decide
    res = combine_scores(s, valid, np.ones(3), SCORE)
    assert res.decided.all() and res.votes.tolist() == [2] * 5
    np.testing.assert_allclose(res.score, combine_scores(s[:, :2], valid[:, :2], np.ones(2), SCORE).score)
    valid[:2, 2] = True  # two names are too few to rank agent 2: left out
    res = combine_scores(s, valid, np.ones(3), SCORE)
    assert res.ranked.tolist() == [True, True, False] and res.votes.tolist() == [2] * 5
    valid[0, 1] = False  # symbol 0 has one ranked vote: no quorum
    res = combine_scores(s, valid, np.ones(3), SCORE)
    assert Code(int(res.code[0])) == Code.NO_QUORUM and not res.decided[0] and res.action[0] == 0
    assert res.decided[1:].all()
    res = combine_scores(s[:2], np.ones((2, 3), bool), np.ones(3), SCORE)  # a bar of two symbols
    assert [Code(int(c)) for c in res.code] == [Code.TOO_FEW_NAMES] * 2 and not res.decided.any()
    assert res.action.tolist() == [0, 0]


def test_score_threshold_decides_flat() -> None:
    s = np.array([[2.0, 1.0], [0.1, 0.0], [0.0, 0.1], [-2.0, -1.0]])
    cfg = SCORE.model_copy(update={"score_threshold": 0.5})
    res = combine_scores(s, np.ones((4, 2), bool), np.ones(2), cfg)
    small = np.abs(res.score) < 0.5
    assert small[1] and small[2] and not small[0] and not small[3]
    assert res.action.tolist() == [1, 0, 0, -1] and res.decided.all()
    assert [Code(int(c)) for c in res.code] == [Code.DECIDED, Code.FLAT, Code.FLAT, Code.DECIDED]


def test_ic_learning_kernels() -> None:
    s = np.array([[1.0, 3.0], [2.0, 1.0], [3.0, 2.0], [4.0, 4.0]])
    valid = np.ones(s.shape, bool)
    ic = rank_ic(s, valid, np.array([0.1, 0.2, 0.3, 0.4]), 3)
    assert ic[0] == pytest.approx(1.0) and ic[1] == pytest.approx(0.4)  # Spearman of 3 1 2 4 with 1 2 3 4
    valid[1:, 1] = False
    assert np.isnan(rank_ic(s, valid, np.array([0.1, 0.2, 0.3, 0.4]), 3)[1])  # one name: not scored
    w = update_weights_ic(np.ones(2), np.array([[1.0, np.nan], [0.5, -0.5]]), SCORE)
    assert w.tolist() == pytest.approx([np.exp(0.15), np.exp(-0.05)])
    assert update_weights_ic(np.ones(2), np.full((200, 2), [1.0, -1.0]), SCORE).tolist() == [10.0, 0.1]  # bounded
    cfg = SCORE.model_copy(update={"calibration_min": 3, "calibration_window": 3})
    assert ic_scale([0.5, 0.4], cfg) == 1.0 and ic_scale([0.9, 0.1, 0.2, 0.3], cfg) == pytest.approx(0.2)
    assert ic_scale([-0.2, -0.1, 0.0], cfg) == 0.0


# --------------------------------------------------------------------------- decide on VOTES


def test_decide_in_score_mode_explains_stale_missing_quorum_and_too_few_names() -> None:
    at = 100 * BAR_NS
    rows = [(s, a, float(i * (1 if a != "b" else -1) + (a == "c"))) for i, s in enumerate(SYMBOLS[:5])
            for a in ("a", "b", "c")]
    signals, used = decide(votes(at, rows, {"c": at - 3_600 * 10**9}), at, ["a", "b", "c", "d"], {}, SCORE)
    assert signals.schema.equals(SIGNALS, check_metadata=False)
    got = by_symbol(signals)
    assert all(r["decided"] and r["votes"] == 2 for r in got.values())  # c stale, d missing: a and b decide
    assert "c stale 3600s" in got["S00"]["reason"] and "d missing" in got["S00"]["reason"]
    assert "votes 2/4 (quorum 2)" in got["S00"]["reason"] and "names 5 (min 3)" in got["S00"]["reason"]
    assert "a z=-1.41 k=1.00 w=1.000" in got["S00"]["reason"]
    assert got["S00"]["reason"].startswith("FLAT (|score| 0.000")  # a and b rank exactly opposite
    assert list(used.columns) == ["symbol", "agent", "model_version", "action", "confidence", "score"]
    strict = SCORE.model_copy(update={"quorum": 3})
    got = by_symbol(decide(votes(at, rows, {"c": at - 3_600 * 10**9}), at, ["a", "b", "c"], {}, strict)[0])
    assert not any(r["decided"] for r in got.values())
    assert got["S01"]["reason"].startswith("NO DECISION (too few names)")  # no symbol reaches quorum
    two = [r for r in rows if r[0] in ("S00", "S01")]
    got = by_symbol(decide(votes(at, two), at, ["a", "b", "c"], {}, SCORE)[0])
    assert all(not r["decided"] and r["action"] == 0 and "too few names" in r["reason"] for r in got.values())


def test_decide_in_score_mode_weights_and_scores_the_signals() -> None:
    at = 7 * BAR_NS
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(6, 3))
    rows = [(s, a, float(raw[g, i])) for g, s in enumerate(SYMBOLS[:6]) for i, a in enumerate("abc")]
    w = {"a": 2.0, "b": 1.0, "c": 0.5}
    signals, _ = decide(votes(at, rows), at, list("abc"), w, SCORE, scales={"a": 0.5})
    k = np.array([0.5, 1.0, 1.0])
    res = combine_scores(raw.astype(np.float32), np.ones((6, 3), bool), np.array([2.0, 1.0, 0.5]), SCORE, k)
    assert signals.column("score").to_pylist() == pytest.approx(res.score, rel=1e-6)
    assert signals.column("action").to_pylist() == res.action.tolist()
    assert "a z=" in signals.column("reason")[0].as_py() and "k=0.50 w=2.000" in signals.column("reason")[0].as_py()


def test_vote_mode_signal_score_is_the_weighted_mean_of_the_vote_scores() -> None:
    at = 3 * BAR_NS
    rows = [("AAA", "a", 0.8), ("AAA", "b", 0.2), ("AAA", "c", -0.5), ("BBB", "a", 0.4)]
    cfg = ConsensusConfig(quorum=2, threshold=0.0, max_disagreement=1.0)
    t = votes(at, rows, {"c": at - 3_600 * 10**9})  # c stale: not in the mean
    signals, _ = decide(t, at, list("abc"), {"a": 3.0, "b": 1.0, "c": 1.0}, cfg)
    got = by_symbol(signals)
    assert got["AAA"]["score"] == pytest.approx((3 * 0.8 + 1 * 0.2) / 4, rel=1e-6)
    assert got["BBB"]["score"] == pytest.approx(0.4) and not got["BBB"]["decided"]  # one vote: no quorum
    # vote mode decides as it did without scores (the scores only fill the column)
    plain, _ = decide(t.drop_columns(["score"]), at, list("abc"), {"a": 3.0, "b": 1.0, "c": 1.0}, cfg)
    assert plain.drop_columns(["score"]).equals(signals.drop_columns(["score"]))
    # without scores each vote's is action x confidence: a and b both +1 at 0.6
    assert plain.column("score").to_pylist() == pytest.approx([0.6, 0.6])


# --------------------------------------------------------------------------- the book


def journaled(cfg: ConsensusConfig, agents: list[str]) -> tuple[ConsensusBook, list]:
    journal: list = []
    book = ConsensusBook(cfg, agents, on_commit=lambda b: journal.extend(CODEC.encode_all(b)))
    return book, journal


def teach(book: ConsensusBook, bars: int, seed: int = 1) -> None:
    """``good`` scores the coming returns (plus noise), ``noise`` is unrelated; each bar is
    voted, decided, then its outcomes learned."""
    rng = np.random.default_rng(seed)
    for b in range(bars):
        at = (b + 1) * BAR_NS
        ret = rng.normal(0.0, 0.01, len(SYMBOLS))
        good = ret / 0.01 + rng.normal(0.0, 0.7, len(SYMBOLS))
        noise = rng.normal(size=len(SYMBOLS))
        rows = [(s, "good", float(good[i])) for i, s in enumerate(SYMBOLS)]
        rows += [(s, "noise", float(noise[i])) for i, s in enumerate(SYMBOLS)]
        book.submit_votes(votes(at, rows))
        book.decide(at)
        book.learn(outcomes(at, dict(zip(SYMBOLS, map(float, ret), strict=True))))


def test_learned_weights_favour_the_predictive_agent_and_are_what_is_served() -> None:
    cfg = SCORE.model_copy(update={"calibration_min": 20, "calibration_window": 30})
    book, journal = journaled(cfg, ["good", "noise"])
    teach(book, 50)
    w = book.weights
    assert w["good"] > 3.0 * w["noise"], w
    # the weights are the IC steps journaled, one per bar (not the vote mode's Brier steps)
    per_bar = [dict((a, ic) for a, _ts, ic in p["ic"]) for kind, p in journal if kind == "learned"]
    assert len(per_bar) == 50
    steps = np.array([[bar.get(a, np.nan) for a in ("good", "noise")] for bar in per_bar])
    assert [w["good"], w["noise"]] == pytest.approx(update_weights_ic(np.ones(2), steps, cfg).tolist())
    ics = {a: [ic for _ts, ic in book.ic_samples[a]] for a in book.agents}
    assert len(ics["good"]) == 30 and np.mean(ics["good"]) > 0.5 > abs(np.mean(ics["noise"]))
    scales = book.ic_scales()
    assert scales["good"] == pytest.approx(np.mean(ics["good"]))  # the calibration factor k
    # a new bar on which the two agents rank the names in opposite orders
    at = 60 * BAR_NS
    g = np.linspace(-2.0, 2.0, len(SYMBOLS))
    n = -g + np.random.default_rng(9).normal(0.0, 0.3, len(SYMBOLS))
    bar = votes(at, [(s, "good", float(g[i])) for i, s in enumerate(SYMBOLS)]
                + [(s, "noise", float(n[i])) for i, s in enumerate(SYMBOLS)])
    served = book.preview(bar)
    learned_score = np.array(served.column("score").to_pylist())
    equal_score = np.array(ConsensusBook(cfg, ["good", "noise"]).preview(bar).column("score").to_pylist())
    zg, zn = (g - g.mean()) / g.std(), (n - n.mean()) / n.std()
    k = np.array([scales["good"], scales["noise"]])
    want = (w["good"] * k[0] * zg + w["noise"] * k[1] * zn) / (w["good"] + w["noise"])
    np.testing.assert_allclose(learned_score, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(equal_score, (zg + zn) / 2, rtol=1e-5, atol=1e-6)
    one = np.ones((len(SYMBOLS), 1), bool)
    assert rank_ic(learned_score[:, None], one, g, 3)[0] > 0.9
    assert rank_ic(learned_score[:, None], one, g, 3)[0] > rank_ic(equal_score[:, None], one, g, 3)[0]
    # what decide trades is what preview served
    book.submit_votes(bar)
    traded = book.decide(at)
    assert traded.to_pylist() == served.to_pylist()
    assert traded.column("action").to_pylist() == np.sign(want).astype(int).tolist()


def test_a_replayed_journal_and_a_checkpoint_rebuild_the_same_score_book() -> None:
    cfg = SCORE.model_copy(update={"calibration_min": 10, "calibration_window": 20})
    book, journal = journaled(cfg, ["good", "noise"])
    teach(book, 25, seed=4)
    assert any(kind == "learned" and payload["ic"] for kind, payload in journal)
    again = ConsensusBook(cfg, ["good", "noise"])
    for kind, payload in journal:
        again.apply(CODEC.decode(kind, json.loads(json.dumps(payload))))
    assert again.snapshot() == book.snapshot()
    assert again.weights == book.weights and again.ic_scales() == book.ic_scales()
    at = 25 * BAR_NS
    assert again.signals_at(at, SYMBOLS).equals(book.signals_at(at, SYMBOLS))
    assert book.signals_at(at, SYMBOLS).column("score").to_pylist() == [
        book.decisions[(s, at)]["signal"][7] for s in SYMBOLS
    ]
    restored = ConsensusBook(cfg, ["good", "noise"])
    restored.restore(json.loads(json.dumps(book.snapshot())))
    assert restored.snapshot() == book.snapshot()
    bar = votes(99 * BAR_NS, [(s, a, float(i * (1 if a == "good" else -0.5))) for i, s in enumerate(SYMBOLS)
                              for a in ("good", "noise")])
    assert restored.preview(bar).equals(book.preview(bar))


def test_vote_mode_learning_is_unchanged_by_scores() -> None:
    """Vote mode keeps Brier learning and journals no ICs, whatever the scores say."""
    cfg = ConsensusConfig(quorum=1, threshold=0.5)
    book, journal = journaled(cfg, ["good", "noise"])
    teach(book, 10)
    assert all(not payload["ic"] for kind, payload in journal if kind == "learned")
    assert all(not xs for xs in book.ic_samples.values())
    assert book.ic_scales() == {"good": 1.0, "noise": 1.0}
