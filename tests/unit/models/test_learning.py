"""An agent's own outcomes in its training data, and the champion/challenger gate (no Ray)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.models.synth import NAMES
from tinywindow.config import AgentConfig
from tinywindow.contracts import AGENT_OUTCOMES, validate
from tinywindow.models import promotion
from tinywindow.models.config import PromotionConfig
from tinywindow.models.evaluation import walkforward as wf
from tinywindow.models.learning import apply_outcomes, reward_weights
from tinywindow.models.params import XGBParams
from tinywindow.models.windows import Series, fit_normalizer, to_series
from tinywindow.models.xgb import train_xgb

WINDOW = 8
CFG = AgentConfig(window=WINDOW, promotion=PromotionConfig(eval_bars=60, embargo_bars=WINDOW))
ORIGINAL_CUT = 250  # the first version trained on bars before this one


def agent_outcomes(series: list[Series], lo: int, hi: int, seed: int = 0, cost: float = 0.0005) -> pa.Table:
    """AGENT_OUTCOMES of an agent that voted at random on bars lo..hi-1 of every symbol."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("symbol", "ts", "action", "realized_return", "reward")}
    for s in series:
        actions = rng.choice([-1, 0, 1], size=hi - lo)
        ret = s.fwd_ret[lo:hi]
        prev = np.r_[0, actions[:-1]]
        cols["symbol"] += [s.symbol] * (hi - lo)
        cols["ts"] += list(s.ts[lo:hi])
        cols["action"] += list(actions)
        cols["realized_return"] += list(ret)
        cols["reward"] += list(actions * ret - cost * np.abs(actions - prev))
    n = len(cols["symbol"])
    return validate(pa.table({
        "symbol": cols["symbol"],
        "ts": pa.array(np.array(cols["ts"], np.int64), pa.timestamp("ns", tz="UTC")),
        "agent": ["xgboost"] * n,
        "model_version": ["v0001"] * n,
        "action": pa.array(cols["action"], pa.int8()),
        "confidence": pa.array(np.full(n, 0.5), pa.float32()),
        "realized_return": cols["realized_return"],
        "reward": cols["reward"],
    }), AGENT_OUTCOMES)


def test_reward_weights_scale_to_mean_one_and_clip() -> None:
    w = reward_weights(np.array([0.0, 0.01, -0.03, 0.5]), cap=10.0)
    mean = (0.01 + 0.03 + 0.5) / 4
    np.testing.assert_allclose(w, [0.1, max(0.01 / mean, 0.1), 0.03 / mean, min(0.5 / mean, 10.0)])  # in [1/cap, cap]
    assert np.all(reward_weights(np.zeros(3), cap=10.0) == 1.0)


def test_outcomes_match_only_labelled_training_rows(planted: pa.Table) -> None:
    series = to_series(planted)  # every bar up to the retrain point (the table's end)
    split = promotion.gate_split(series, CFG)
    train = wf.training_part(series, split)
    cut = int(np.searchsorted(series[0].ts, split.train_end))
    outcomes = agent_outcomes(series, ORIGINAL_CUT, len(series[0]) - 1)  # traded since the first version
    m = apply_outcomes(train, outcomes, cap=10.0)
    # bars ORIGINAL_CUT .. cut-2 of each symbol: the bar before the cut has no label inside it
    assert m.matched == 3 * (cut - 1 - ORIGINAL_CUT) > 0 and m.received == outcomes.num_rows
    assert m.first is not None and m.last is not None and m.last < wf._iso(split.train_end)
    for before, after, w in zip(train, m.series, m.weights, strict=True):
        assert np.all(w[:ORIGINAL_CUT] == 1.0) and not np.all(w[ORIGINAL_CUT : cut - 1] == 1.0)
        assert w[cut - 1] == 1.0 and np.isnan(after.fwd_ret[cut - 1])  # no label from after the cut
        np.testing.assert_array_equal(before.x, after.x)
    none = apply_outcomes(train, None, cap=10.0)
    assert none.matched == 0 and none.to_json("x")["used_as"] == "none matched"


def test_xgboost_learns_from_outcomes_dated_after_its_first_training_cut(planted: pa.Table) -> None:
    series = to_series(planted)
    split = promotion.gate_split(series, CFG)
    train = wf.training_part(series, split)
    norm = fit_normalizer(train, NAMES)
    outcomes = agent_outcomes(series, ORIGINAL_CUT, len(series[0]) - 1)
    m = apply_outcomes(train, outcomes, cap=10.0)
    assert m.matched > 0
    plain, _ = train_xgb(train, norm, WINDOW, XGBParams(rounds=10), seed=0)
    learned, stats = train_xgb(m.series, norm, WINDOW, XGBParams(rounds=10), seed=0, weights=m.weights)
    assert stats["weighted_rows"] == m.matched
    probe = np.random.default_rng(1).standard_normal((50, WINDOW, len(NAMES))).astype(np.float32)
    assert not np.array_equal(plain.probabilities(probe), learned.probabilities(probe))


def _inverted(table: pa.Table) -> pa.Table:
    i = table.column_names.index("signal")
    return table.set_column(i, "signal", pa.compute.negate(table.column("signal")))


def test_the_gate_rejects_a_clearly_worse_challenger_and_promotes_a_clearly_better_one(planted: pa.Table) -> None:
    series = to_series(planted)
    split = promotion.gate_split(series, CFG)
    vset = wf.ValidationSet.build(series, split, WINDOW)
    train = wf.training_part(series, split)
    good, _ = train_xgb(train, fit_normalizer(train, NAMES), WINDOW, XGBParams(rounds=20), seed=0)
    bad_train = wf.training_part(to_series(_inverted(planted)), split)  # learns the signal backwards
    bad, _ = train_xgb(bad_train, fit_normalizer(bad_train, NAMES), WINDOW, XGBParams(rounds=20), seed=0)
    good.version, bad.version = "v0001", "v0002"
    s_good, s_bad = promotion.score(vset, good, 0.0005), promotion.score(vset, bad, 0.0005)
    assert s_good.sharpe > 5 > -5 > s_bad.sharpe and s_bad.max_drawdown > s_good.max_drawdown
    assert s_good.bars == vset.evaluate(good, 0.0005)[wf.ALL].bars  # scored as the walk-forward scores

    rejected = promotion.decide(s_good, s_bad, CFG.promotion)
    assert not rejected.promote and rejected.champion == s_good and rejected.challenger == s_bad
    promoted = promotion.decide(s_bad, s_good, CFG.promotion)
    assert promoted.promote and "sharpe" in promoted.reason
    record = promoted.to_json()
    assert record["champion"]["sharpe"] == pytest.approx(s_bad.sharpe, abs=1e-6)
    assert record["challenger"]["sharpe"] == pytest.approx(s_good.sharpe, abs=1e-6)
    assert promotion.decide(None, s_bad, CFG.promotion).promote  # nothing to beat


def test_the_gate_margin_and_drawdown_bound() -> None:
    champ = promotion.GateScore("v1", sharpe=1.0, total_return=0.1, max_drawdown=0.10, hit_rate=0.5, turnover=1.0, bars=60)
    better = promotion.GateScore("v2", sharpe=1.2, total_return=0.1, max_drawdown=0.12, hit_rate=0.5, turnover=1.0, bars=60)
    cfg = PromotionConfig(margin=0.1, max_drawdown_worsening=0.05)
    assert promotion.decide(champ, better, cfg).promote
    assert not promotion.decide(champ, better, PromotionConfig(margin=0.3)).promote  # not by the margin
    deeper = promotion.GateScore("v3", sharpe=2.0, total_return=0.3, max_drawdown=0.2, hit_rate=0.5, turnover=1.0, bars=60)
    out = promotion.decide(champ, deeper, cfg)
    assert not out.promote and "drawdown" in out.reason
    tie = PromotionConfig(metric="total_return", margin=0.0)
    assert not promotion.decide(champ, better, tie).promote  # a tie keeps the champion
    assert promotion.max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.5)
