"""Look-ahead analysis on bundled real data: every built-in feature and agent kind is causal,
and planted look-aheads (a feature reading the next bar, a scaler fitted on the whole table,
a consensus reading later votes) are caught, so the clean result cannot be vacuous."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from tinywindow.backtest.lookahead import (
    ATOL,
    RTOL,
    Leak,
    Report,
    check,
    choose_cuts,
    consensus_decider,
)
from tinywindow.consensus.config import ConsensusConfig
from tinywindow.data import features
from tinywindow.data.base import select
from tinywindow.data.sources.bundled import BundledSource
from tinywindow.errors import DataError
from tinywindow.models.params import PPOParams, XGBParams
from tinywindow.models.predictor import Predictor
from tinywindow.models.rl import RLPredictor, build_policy
from tinywindow.models.windows import feature_names, fit_normalizer, to_series
from tinywindow.models.xgb import train_xgb

pytestmark = pytest.mark.unit
WINDOW = 16


@pytest.fixture(scope="module")
def bars() -> pa.Table:
    """Three years of the bundled S&P 500, NASDAQ and GOOG daily bars (real data)."""
    return select(BundledSource("bundled", ["sp500", "nasdaq", "goog"]).table(), None, "2009-01-01", "2012-01-01")


@pytest.fixture(scope="module")
def predictors(bars: pa.Table) -> list[Predictor]:
    """One of each built-in agent kind: XGBoost trained for 5 rounds, the LSTM and
    Transformer policies with random weights (causality does not need skill)."""
    table = features.compute(bars)
    names = feature_names(table)
    series = to_series(table)
    norm = fit_normalizer(series, names)
    xgb, _ = train_xgb(series, norm, WINDOW, XGBParams(rounds=5), seed=0)
    cfg = PPOParams(hidden=16, heads=2).model_config_dict()
    out: list[Predictor] = [xgb]
    for agent in ("lstm", "transformer"):
        torch.manual_seed(0)
        out.append(RLPredictor(agent, build_policy(agent, WINDOW, len(names), cfg), norm, WINDOW, cfg))
    return out


def test_every_builtin_feature_and_agent_is_causal(bars: pa.Table, predictors: list[Predictor]) -> None:
    report = check(bars, predictors, cuts=3, seed=0)
    assert report.ok, report.table()
    n_rows = bars.num_rows
    assert report.compared["feature"] > len(features.FEATURE_NAMES) * n_rows  # every column, several cuts
    assert report.compared["vote"] > 0 and report.compared["signal"] > 0
    assert {p.agent for p in predictors} == {"xgboost", "lstm", "transformer"}
    assert "no look-ahead found" in report.table()


def _peeking_features(bars: pa.Table) -> pa.Table:
    """The built-in features with ``sma_ratio_20`` replaced by the next bar's return (shift(-1))."""
    table = features.compute(bars)
    codes = np.asarray(table.column("symbol").cast(pa.string()).to_pylist())
    r1 = table.column("ret_1").to_numpy(zero_copy_only=False).copy()
    leaked = np.full_like(r1, np.nan)
    same = codes[1:] == codes[:-1]
    leaked[:-1][same] = r1[1:][same]  # row t holds ret_1 of row t+1: look-ahead
    i = table.column_names.index("sma_ratio_20")
    return table.set_column(i, "sma_ratio_20", pa.array(leaked.astype(np.float32)))


def test_a_planted_feature_lookahead_is_caught(bars: pa.Table) -> None:
    report = check(bars, cuts=2, seed=1, feature_fn=_peeking_features)
    assert not report.ok
    cols = {leak.column for leak in report.leaks}
    assert cols == {"sma_ratio_20"}  # only the planted column, nothing else
    assert report.found["feature"] == 2 * 3  # the cut bar of each symbol, at each cut
    assert all(leak.ts == leak.cut for leak in report.leaks)
    assert "LOOK-AHEAD FOUND" in report.table()


class _FullSampleScaler(Predictor):
    """A classic leak: standardizes with statistics of the whole table it is given."""

    kind = "test"

    def __init__(self, inner: Predictor) -> None:
        self.inner, self.agent, self.version = inner, inner.agent, "peek"
        self.window, self.model_config = inner.window, {}
        self.normalizer = inner.normalizer

    def predict(self, table: pa.Table, *, latest_only: bool = False, batch_rows: int = 4096) -> pa.Table:
        names = list(self.inner.normalizer.names)
        series = to_series(table, names)
        self.inner.normalizer = fit_normalizer(series, names)  # fitted on the future too
        return self.inner.predict(table)


def test_a_planted_vote_lookahead_is_caught(bars: pa.Table, predictors: list[Predictor]) -> None:
    xgb = predictors[0]
    saved = xgb.normalizer
    try:
        report = check(bars, [_FullSampleScaler(xgb)], cuts=2, seed=2)
    finally:
        xgb.normalizer = saved
    assert report.found["feature"] == 0
    assert report.found["vote"] > 0
    assert {leak.column for leak in report.leaks if leak.stage == "vote"} <= {"xgboost.action", "xgboost.confidence"}


def test_a_planted_signal_lookahead_is_caught(bars: pa.Table, predictors: list[Predictor]) -> None:
    agents = [p.agent for p in predictors]
    honest = consensus_decider(agents, ConsensusConfig())

    def peeking(votes: pa.Table, at: int) -> pa.Table:
        last = int(votes.column("ts").cast(pa.int64()).to_numpy().max())
        out = honest(votes, last)  # decides with the newest votes in the table
        i = out.column_names.index("ts")
        return out.set_column(i, "ts", pa.array(np.full(out.num_rows, at, np.int64)).cast(out.schema.field("ts").type))

    report = check(bars, predictors, cuts=2, seed=3, consensus=peeking)
    assert report.found["feature"] == 0 and report.found["vote"] == 0
    assert report.found["signal"] > 0


def test_cuts_are_seeded_and_inside_the_history(bars: pa.Table) -> None:
    a, b = choose_cuts(bars, 4, seed=5), choose_cuts(bars, 4, seed=5)
    ts = bars.column("ts").cast(pa.int64()).to_numpy()
    assert a == b and len(a) == 4 and a == sorted(a)
    assert all(ts.min() < c < ts.max() for c in a)
    assert choose_cuts(bars, 4, seed=6) != a
    with pytest.raises(DataError):
        choose_cuts(bars.slice(0, 10), 2, seed=0)


def test_report_json_and_tolerance() -> None:
    r = Report([0], RTOL, ATOL)
    assert r.ok and r.to_json()["ok"]
    r.found["feature"] = 1
    r.leaks.append(Leak("feature", 0, "X", 0, "ret_1", 1.0, float("nan")))
    assert not r.ok and r.to_json()["leaks"][0]["truncated"] is None
    assert r.by_column() == [("feature", "ret_1", 1, "1970-01-01")]
