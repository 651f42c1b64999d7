"""Walk-forward scoring: known answers, splits with an embargo, the report."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.models.synth import NAMES, planted_features
from tinywindow.models.evaluation import walkforward as wf
from tinywindow.models.evaluation.scoring import (
    hit_rate,
    pooled,
    score,
    sharpe,
    strategy_returns,
    turnover,
)
from tinywindow.models.predictor import Predictor
from tinywindow.models.windows import Normalizer, to_series


def test_strategy_returns_charge_cost_on_every_change_from_flat() -> None:
    a = np.array([1, 1, -1, 0])
    r = np.array([0.01, -0.02, -0.03, 0.05])
    np.testing.assert_allclose(strategy_returns(a, r, 0.001), [0.01 - 0.001, -0.02, 0.03 - 0.002, -0.001])


def test_sharpe_hit_rate_turnover_known_answers() -> None:
    p = np.array([0.01, -0.005, 0.02, 0.0])
    assert sharpe(p) == pytest.approx(p.mean() / p.std(ddof=1) * np.sqrt(252))
    assert sharpe(np.zeros(10)) == 0.0
    assert hit_rate(np.array([1, -1, 0, 1]), np.array([0.1, 0.1, 0.1, -0.1])) == pytest.approx(1 / 3)
    assert np.isnan(hit_rate(np.zeros(3), np.ones(3)))
    # 252 bars, enter long then flip once: 1 + 2 units traded in one year
    a = np.r_[np.ones(126), -np.ones(126)]
    assert turnover(a) == pytest.approx(3.0)


def test_pooled_book_averages_symbols_by_date() -> None:
    ts = np.array([1, 2, 3])
    per = {"A": (ts, np.ones(3), np.array([0.01, 0.02, 0.03])), "B": (ts[1:], np.ones(2), np.array([-0.02, 0.01]))}
    book = pooled(per, cost=0.0)
    assert book.bars == 3
    expected = np.array([0.01, 0.0, 0.02])
    assert book.total_return == pytest.approx(np.prod(1 + expected) - 1)
    assert score(np.ones(3), per["A"][2], 0.0).hit_rate == 1.0


def test_splits_leave_an_embargo_and_tile_the_out_of_sample_period() -> None:
    series = to_series(planted_features(n_symbols=2, n_bars=300))
    cal = wf.calendar(series)
    splits = wf.make_splits(series, int(cal[100]), folds=3, valid_bars=50, embargo_bars=8)
    assert len(splits) == 3
    for s in splits:
        i1, vs, ve = (int(np.searchsorted(cal, x)) for x in (s.train_end, s.valid_start, s.valid_end))
        assert vs - i1 == 8 and ve - vs == 50
    assert splits[1].train_end == splits[0].valid_end  # expanding window, next fold starts there
    train = wf.training_part(series, splits[0])
    assert all(s.ts[-1] < splits[0].train_end for s in train)
    vset = wf.ValidationSet.build(series, splits[0], window=8)
    assert all(t[0] >= splits[0].valid_start and t[-1] < splits[0].valid_end for t in vset.ts)


class _FollowSignal(Predictor):
    """A fixed rule (not trained): long when the last row's planted signal is up."""

    kind = "rule"

    def __init__(self) -> None:
        self.agent, self.version, self.window = "rule", "v0", 8
        self.normalizer = Normalizer(tuple(NAMES), np.zeros(4, np.float32), np.ones(4, np.float32))
        self.model_config = {}

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        up = windows[:, -1, NAMES.index("signal")] > 0
        out = np.zeros((len(windows), 3), np.float32)
        out[up, 2] = 0.9
        out[up, 0] = 0.1
        out[~up, 0] = 0.8
        out[~up, 2] = 0.2
        return out


def test_validation_actions_equal_the_table_predict_path() -> None:
    table = planted_features(n_symbols=3, n_bars=200)
    series = to_series(table)
    cal = wf.calendar(series)
    split = wf.make_splits(series, int(cal[120]), folds=1, valid_bars=40, embargo_bars=8)[0]
    vset = wf.ValidationSet.build(series, split, 8)
    rule = _FollowSignal()
    votes = rule.predict(table)
    for sym, ts, acts in zip(vset.symbols, vset.ts, vset.actions(rule), strict=True):
        v = votes.filter(pa.compute.equal(votes.column("symbol").cast(pa.string()), sym))
        keep = np.isin(v.column("ts").cast(pa.int64()).to_numpy(), ts)
        np.testing.assert_array_equal(v.column("action").to_numpy()[keep], acts)
    report = wf.Report(0.0005)
    report.add(1, split, "rule", vset.evaluate(rule, 0.0005))
    report.add(1, split, wf.BUY_AND_HOLD, vset.buy_and_hold(0.0005))
    summary = {r["agent"]: r for r in report.summary()}
    assert summary["rule"]["hit_rate"] > 0.95 and summary["rule"]["sharpe"] > summary[wf.BUY_AND_HOLD]["sharpe"]
    text = report.markdown()
    assert "| rule | ALL |" in text and "buy_and_hold" in text
