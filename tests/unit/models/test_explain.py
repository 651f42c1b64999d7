"""Explained decisions (``tinywindow.models.explain``): exact tree SHAP for the boosters,
integrated gradients for the torch agents, top-k per requested decision only."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pytest
import torch
import xgboost as xgb
from torch import nn

from tests.unit.models.synth import NAMES, planted_features
from tinywindow.contracts import EXPLANATIONS
from tinywindow.models.explain import (
    column_cells,
    explain,
    integrated_gradients,
    key_rows,
    tree_contributions,
)
from tinywindow.models.params import XGBParams
from tinywindow.models.rl import RLPredictor, build_policy
from tinywindow.models.windows import (
    Normalizer,
    WindowIndex,
    feature_matrix,
    fit_normalizer,
    to_series,
)
from tinywindow.models.xgb import XGBPredictor, XGBXSPredictor, train_xgb, train_xgb_xs
from tinywindow.models.xgb.inference import flatten

pytestmark = pytest.mark.unit
WINDOW = 4


def _keys(table: pa.Table, rows: list[int]) -> list[tuple[str, int]]:
    sym = table.column("symbol").to_pylist()
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    return [(str(sym[r]), int(ts[r])) for r in rows]


def _normalizer(table: pa.Table) -> Normalizer:
    return Normalizer.fit(NAMES, feature_matrix(table, NAMES))


def _lag_booster(table: pa.Table, feature: str, lag: int) -> XGBPredictor:
    """A booster whose label is the sign of ``feature`` ``lag`` bars before the decision bar."""
    norm = _normalizer(table)
    index = WindowIndex.build(table, norm, WINDOW)
    windows = index.batch(0, len(index))
    y = (windows[:, WINDOW - 1 - lag, NAMES.index(feature)] > 0).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "seed": 0, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(flatten(windows), label=y), num_boost_round=20)
    return XGBPredictor(booster, norm, WINDOW, {})


class LagPolicy(nn.Module):
    """Logits (-a x, 0, a x) of one window cell x: only that (feature, lag) matters."""

    def __init__(self, feature: int, lag: int) -> None:
        super().__init__()
        self.feature, self.lag = feature, lag
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs[:, WINDOW - 1 - self.lag, self.feature] * self.scale
        return torch.stack([-x, torch.zeros_like(x), x], dim=-1)


@pytest.fixture(scope="module")
def planted_xgb(planted: pa.Table) -> XGBPredictor:
    series = to_series(planted, NAMES)
    pred, _ = train_xgb(series, fit_normalizer(series, NAMES), WINDOW, XGBParams(rounds=40), seed=0)
    return pred


def test_columns_map_to_feature_and_lag() -> None:
    names, lags = column_cells(3, ["a", "b"])
    # flattened [window, F]: oldest row first, so column 0 is "a" two bars back
    assert list(zip(names, lags.tolist(), strict=True)) == [("a", 2), ("b", 2), ("a", 1), ("b", 1), ("a", 0), ("b", 0)]


def test_shap_completeness_and_planted_feature_first(planted: pa.Table, planted_xgb: XGBPredictor) -> None:
    index = WindowIndex.build(planted, planted_xgb.normalizer, WINDOW)
    flat = flatten(index.batch(0, 200))
    contrib = tree_contributions(planted_xgb.booster, flat)
    margin = planted_xgb.booster.predict(xgb.DMatrix(flat), output_margin=True)
    np.testing.assert_allclose(contrib.sum(axis=1), margin, atol=1e-4)
    rows = [int(r) for r in index.rows[:50]]
    out = explain(planted_xgb, planted, _keys(planted, rows), top_k=3)
    assert out.schema.equals(EXPLANATIONS, check_metadata=True)
    top = out.filter(pa.compute.equal(out.column("rank"), 1))
    assert top.num_rows == 50
    # "signal" at the decision bar is the planted forecast: it ranks first on every decision
    assert set(zip(top.column("feature").to_pylist(), top.column("lag").to_pylist(), strict=True)) == {("signal", 0)}
    assert (np.asarray(top.column("contribution")) > 0).all()  # it pushed towards the vote


def test_signed_towards_the_vote(planted: pa.Table, planted_xgb: XGBPredictor) -> None:
    """The explanation's contributions (top-k of all) are the raw SHAP values times the vote."""
    votes = planted_xgb.predict(planted)
    keys = _keys(votes, list(range(20)))
    out = explain(planted_xgb, planted, keys, top_k=len(NAMES) * WINDOW)
    per_key = {k: 0.0 for k in keys}
    for s, t, c in zip(out.column("symbol").to_pylist(), out.column("ts").cast(pa.int64()).to_pylist(),
                       out.column("contribution").to_pylist(), strict=True):
        per_key[(s, t)] += c
    rows = key_rows(planted, keys)
    windows, _ = planted_xgb.windows_for(planted, rows)
    raw = tree_contributions(planted_xgb.booster, flatten(windows))
    action = np.asarray(votes.column("action"))[:20]
    np.testing.assert_allclose(list(per_key.values()), raw[:, :-1].sum(axis=1) * action, atol=1e-3)


def test_lag_mapping_tree_shap(planted: pa.Table) -> None:
    pred = _lag_booster(planted, "noise_a", lag=2)
    index = WindowIndex.build(planted, pred.normalizer, WINDOW)
    out = explain(pred, planted, _keys(planted, [int(r) for r in index.rows[:30]]), top_k=1)
    assert out.num_rows == 30
    assert set(out.column("feature").to_pylist()) == {"noise_a"} and set(out.column("lag").to_pylist()) == {2}


def test_lag_mapping_integrated_gradients(planted: pa.Table) -> None:
    norm = _normalizer(planted)
    pred = RLPredictor("lstm", LagPolicy(NAMES.index("noise_b"), lag=2), norm, WINDOW, {})  # type: ignore[arg-type]
    index = WindowIndex.build(planted, norm, WINDOW)
    out = explain(pred, planted, _keys(planted, [int(r) for r in index.rows[:30]]), top_k=2)
    top = out.filter(pa.compute.equal(out.column("rank"), 1))
    assert set(zip(top.column("feature").to_pylist(), top.column("lag").to_pylist(), strict=True)) == {("noise_b", 2)}
    assert (np.asarray(top.column("contribution")) >= 0).all()


@pytest.mark.parametrize("agent", ["lstm", "transformer"])
def test_ig_completeness_small_policy(planted: pa.Table, agent: str) -> None:
    torch.manual_seed(0)
    norm = _normalizer(planted)
    cfg = {"hidden": 16}
    policy = build_policy(agent, WINDOW, len(NAMES), cfg)
    nn.init.normal_(policy.pi[-1].weight, std=0.5)  # a decisive (non-uniform) head
    pred = RLPredictor(agent, policy, norm, WINDOW, cfg)
    windows = WindowIndex.build(planted, norm, WINDOW).batch(0, 40)
    attr, delta, action = integrated_gradients(pred, windows)
    with torch.no_grad():
        x = torch.from_numpy(windows)
        gap = (pred.module(x) - pred.module(torch.zeros_like(x)))[torch.arange(len(x)), torch.from_numpy(action)]
    np.testing.assert_allclose(attr.reshape(len(attr), -1).sum(axis=1) - gap.numpy(), delta, atol=1e-4)
    assert np.abs(delta).max() <= 0.05 * np.abs(gap.numpy()).max() + 1e-3
    assert (action == pred.probabilities(windows).argmax(axis=1)).all()  # the vote's action


def test_only_requested_keys_are_explained(planted: pa.Table, planted_xgb: XGBPredictor) -> None:
    votes = planted_xgb.predict(planted)
    keys = _keys(votes, [3, 100, 250])
    out = explain(planted_xgb, planted, [*keys, ("NOPE", 0), keys[0]], top_k=4)
    got = list(dict.fromkeys(zip(out.column("symbol").to_pylist(), out.column("ts").cast(pa.int64()).to_pylist(), strict=True)))
    assert got == keys
    assert out.column("rank").to_pylist() == [1, 2, 3, 4] * 3
    assert set(out.column("model_version").to_pylist()) == {planted_xgb.version}
    warmup = _keys(planted, [0])  # a row with no full window has no vote: nothing to explain
    assert explain(planted_xgb, planted, warmup).num_rows == 0


def test_xs_ranker_explained_on_its_own_windows(planted: pa.Table) -> None:
    series = to_series(planted, NAMES)
    pred, _ = train_xgb_xs(series, fit_normalizer(series, NAMES), 2, XGBParams(rounds=20), seed=0)
    assert isinstance(pred, XGBXSPredictor)
    votes = pred.predict(planted)
    traded = votes.filter(pa.compute.not_equal(votes.column("action"), 0)).slice(0, 10)
    keys = _keys(traded, list(range(traded.num_rows)))
    out = explain(pred, planted, keys, top_k=len(NAMES) * 2)
    windows, _ = pred.windows_for(planted, key_rows(planted, keys))
    contrib = tree_contributions(pred.booster, flatten(windows))
    np.testing.assert_allclose(contrib.sum(axis=1), pred.margins(windows), atol=1e-4)
    total: dict[tuple[str, int], float] = {}
    for s, t, c in zip(out.column("symbol").to_pylist(), out.column("ts").cast(pa.int64()).to_pylist(),
                       out.column("contribution").to_pylist(), strict=True):
        total[(s, t)] = total.get((s, t), 0.0) + c
    side = np.asarray(traded.column("action"), dtype=np.float64)
    np.testing.assert_allclose([total[k] for k in keys], contrib[:, :-1].sum(axis=1) * side, atol=1e-3)


def test_deterministic(planted: pa.Table, planted_xgb: XGBPredictor) -> None:
    torch.manual_seed(1)
    norm = _normalizer(planted)
    rl = RLPredictor("lstm", build_policy("lstm", WINDOW, len(NAMES), {"hidden": 8}), norm, WINDOW, {"hidden": 8})
    keys = _keys(planted_xgb.predict(planted), [5, 6, 7])
    for pred in (planted_xgb, rl):
        assert explain(pred, planted, keys).equals(explain(pred, planted, keys))


def test_cost_per_decision(planted: pa.Table, planted_xgb: XGBPredictor) -> None:
    """Cost of explaining one traded decision (a bar's features, one key): printed, not asserted tightly."""
    torch.manual_seed(0)
    norm = _normalizer(planted)
    rl = RLPredictor("lstm", build_policy("lstm", WINDOW, len(NAMES), {}), norm, WINDOW, {})
    table = planted_features(n_symbols=3, n_bars=60, seed=1)
    keys = _keys(table, list(range(20, 60)))
    for name, pred in (("xgboost", planted_xgb), ("lstm", rl)):
        ms = []
        for key in keys:
            t0 = time.perf_counter()
            explain(pred, table, [key])
            ms.append((time.perf_counter() - t0) * 1e3)
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"explain {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms per decision")
        assert p50 < 1000.0
