"""The cross-sectional XGBoost agent (``models.xgb.xs``): it learns planted cross-sectional
signals out of sample, finds nothing where nothing is planted, never looks ahead, and
survives save / load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tinywindow.data import features as F
from tinywindow.data.sources.synthetic import generate, generate_xs
from tinywindow.errors import DataError
from tinywindow.models.loading import load_dir
from tinywindow.models.params import XGBParams, build
from tinywindow.models.predictor import Predictor
from tinywindow.models.windows import Normalizer, fit_normalizer, to_series
from tinywindow.models.xgb import XGBXSPredictor, train_xgb_xs
from tinywindow.models.xgb.xs import xs_decisions
from tinywindow.models.xs import information_coefficient, table_ic, to_panel, xs_normalize

pytestmark = pytest.mark.unit

N_SYMBOLS, N_BARS, CUT = 100, 700, 490  # train on the first 70% of bars
PARAMS = XGBParams(rounds=60)


def train(feats: pa.Table, **kw: Any) -> tuple[XGBXSPredictor, int]:
    ts = np.unique(feats.column("ts").cast(pa.int64()).to_numpy())
    cut = int(ts[CUT])
    series = [s.between(end=cut) for s in to_series(feats, F.FEATURE_NAMES)]
    pred, _ = train_xgb_xs(series, fit_normalizer(series, F.FEATURE_NAMES), 1, kw.pop("params", PARAMS), seed=0, **kw)
    return pred, cut


def after(table: pa.Table, cut: int) -> pa.Table:
    return table.filter(pc.greater_equal(table.column("ts").cast(pa.int64()), pa.scalar(cut)))


@pytest.fixture(scope="module")
def planted() -> tuple[pa.Table, Any]:
    bars, truth = generate_xs(N_SYMBOLS, N_BARS, seed=0)
    return F.compute(bars), truth


@pytest.fixture(scope="module")
def trained(planted: tuple[pa.Table, Any]) -> tuple[XGBXSPredictor, int]:
    return train(planted[0])


def test_learns_planted_signal_out_of_sample(planted: tuple, trained: tuple) -> None:
    feats, truth = planted
    pred, cut = trained
    votes = pred.predict(feats)
    ic = table_ic(after(votes, cut), feats)
    oos = truth.ts >= cut
    oracle = information_coefficient(truth.expected_return[oos], to_panel(feats, ["ret_1"]).fwd[oos])
    assert ic.n_bars >= 200
    assert ic.mean > 0.02 and ic.mean > 0.3 * oracle.mean, (ic.mean, oracle.mean)
    assert ic.t_stat > 3


def test_finds_nothing_without_planted_signal() -> None:
    feats = F.compute(generate(N_SYMBOLS, N_BARS, seed=0))
    pred, cut = train(feats)
    ic = table_ic(after(pred.predict(feats), cut), feats)
    assert abs(ic.mean) < 0.02 or abs(ic.t_stat) < 2, (ic.mean, ic.t_stat)


def test_no_look_ahead(planted: tuple, trained: tuple) -> None:
    feats, _ = planted
    pred, _ = trained
    ts = feats.column("ts").cast(pa.int64()).to_numpy()
    t = np.unique(ts)[600]
    rng = np.random.default_rng(0)
    garbage = feats
    for name in F.FEATURE_NAMES:
        v = feats.column(name).to_numpy(zero_copy_only=False).copy()
        v[ts > t] = rng.standard_normal(int((ts > t).sum())) * 100.0
        i = garbage.schema.get_field_index(name)
        garbage = garbage.set_column(i, garbage.schema.field(i), pa.array(v.astype(np.float32)))
    a, b = pred.predict(feats), pred.predict(garbage)
    keep_a = pc.less_equal(a.column("ts").cast(pa.int64()), pa.scalar(int(t)))
    keep_b = pc.less_equal(b.column("ts").cast(pa.int64()), pa.scalar(int(t)))
    assert a.filter(keep_a).equals(b.filter(keep_b))
    assert not a.filter(pc.invert(keep_a)).column("score").equals(b.filter(pc.invert(keep_b)).column("score"))


def test_save_load_identical_votes(planted: tuple, trained: tuple, tmp_path: Path) -> None:
    feats, _ = planted
    pred, _ = trained
    pred.save(tmp_path / "m")
    assert (tmp_path / "m" / "booster.ubj").exists()
    loaded = load_dir(tmp_path / "m", "candidate")
    assert isinstance(loaded, XGBXSPredictor) and loaded.kind == "xgboost_xs"
    assert loaded.model_config["cross_sectional"] is True
    assert loaded.model_config["objective"] == "rank:pairwise"
    part = feats.slice(0, 30 * N_BARS)
    assert loaded.predict(part).equals(pred.predict(part))
    assert loaded.predict(part, latest_only=True).equals(pred.predict(part, latest_only=True))


def test_votes_rank_within_each_bar(planted: tuple, trained: tuple) -> None:
    feats, _ = planted
    pred, _ = trained
    votes = pred.predict(feats.slice(0, 12 * N_BARS))  # 12 symbols
    ts = votes.column("ts").cast(pa.int64()).to_numpy()
    last = ts == ts.max()
    action = votes.column("action").to_numpy()[last]
    score = votes.column("score").to_numpy()[last]
    assert sorted(action.tolist()) == [-1] * 4 + [0] * 4 + [1] * 4
    assert abs(score.mean()) < 1e-5 and score.std() == pytest.approx(1.0, abs=1e-4)
    assert (action[np.argsort(score)] == np.array([-1] * 4 + [0] * 4 + [1] * 4)).all()
    conf = votes.column("confidence").to_numpy()
    assert conf.min() >= 0.5 and conf.max() <= 1.0


def test_xs_decisions_known_answer() -> None:
    ts = np.array([1, 1, 1, 2, 3, 3], dtype=np.int64)
    margin = np.array([0.3, -1.0, 2.0, 5.0, 1.0, 1.0])
    action, conf, score = xs_decisions(ts, margin)
    assert action.tolist() == [0, -1, 1, 0, 0, 0]  # lone symbol and ties hold
    np.testing.assert_allclose(conf, [0.5, 1 - 1 / 6, 1 - 1 / 6, 0.5, 0.5, 0.5], rtol=1e-6)
    assert score[3] == 0.0 and score[4] == 0.0
    assert score[2] > score[0] > score[1]


@pytest.mark.parametrize("objective", ["rank:pairwise", "rank:ndcg", "reg:squarederror"])
def test_each_objective_trains(planted: tuple, objective: str) -> None:
    feats, _ = planted
    small = feats.slice(0, 20 * N_BARS)
    params = build("xgboost", {"rounds": 5, "xs_objective": objective})
    assert isinstance(params, XGBParams)
    weights = [np.full(len(s), 2.0) for s in to_series(small, F.FEATURE_NAMES)]
    series = to_series(small, F.FEATURE_NAMES)
    pred, stats = train_xgb_xs(series, fit_normalizer(series, F.FEATURE_NAMES), 2, params, seed=0, weights=weights)
    assert stats["objective"] == objective and stats["symbols_per_bar"] > 2
    votes = pred.predict(small)
    assert votes.num_rows > 0 and np.isfinite(votes.column("score").to_numpy()).all()
    assert pred.model_config["objective"] == objective


def test_refuses_one_symbol_and_too_few_rows(planted: tuple) -> None:
    feats, _ = planted
    series = to_series(feats.slice(0, N_BARS), F.FEATURE_NAMES)
    norm = fit_normalizer(series, F.FEATURE_NAMES)
    with pytest.raises(DataError, match="symbols per bar"):
        train_xgb_xs(series, norm, 1, PARAMS, seed=0)
    two = to_series(feats.slice(0, 2 * N_BARS), F.FEATURE_NAMES)
    with pytest.raises(DataError, match="need >= 50"):
        train_xgb_xs([s.tail(20) for s in two], norm, 1, PARAMS, seed=0)


class MeanProbe(Predictor):
    """P(+1) from the mean of the window's first feature: shows what predict feeds a model."""

    kind = "probe"

    def __init__(self, names: tuple[str, ...], cross_sectional: bool) -> None:
        self.agent, self.version, self.window = "probe", "v", 2
        self.normalizer = Normalizer(names, np.zeros(len(names), np.float32), np.ones(len(names), np.float32))
        self.model_config = {"cross_sectional": cross_sectional}

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-windows[:, :, 0].mean(axis=1)))
        return np.stack([1.0 - p, np.zeros_like(p), p], axis=1).astype(np.float32)


def test_predictor_hook_normalises_cross_sectional_models(planted: tuple) -> None:
    feats = planted[0].slice(0, 10 * N_BARS)
    names = ("ret_1", "volume_z_20")
    xs_probe, plain = MeanProbe(names, True), MeanProbe(names, False)
    assert xs_probe.predict(feats).equals(plain.predict(xs_normalize(feats, names)))
    assert not xs_probe.predict(feats).column("score").equals(plain.predict(feats).column("score"))
