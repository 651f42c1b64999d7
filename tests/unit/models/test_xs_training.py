"""What a cross-sectional agent learns from and how it is served: rank-normalised features
with the *real* forward returns as labels and rewards, walk-forward validation that ranks a
ranker per bar, and Serve's request batching that leaves a cross-sectional model's votes
exactly as ``predict`` gives them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tinywindow.data import features as F
from tinywindow.data.sources.synthetic import generate_xs
from tinywindow.models.config import AgentConfig
from tinywindow.models.params import XGBParams
from tinywindow.models.windows import fit_normalizer, to_series
from tinywindow.models.xgb import train_xgb_xs

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def feats() -> pa.Table:
    bars, _ = generate_xs(30, 300, seed=1)
    return F.compute(bars)


def test_cross_sectional_series_keep_the_real_forward_returns(feats: pa.Table) -> None:
    from actors.training.train import training_series

    raw = to_series(feats)
    ranked = training_series(feats, AgentConfig(cross_sectional=True))
    plain = training_series(feats, AgentConfig(cross_sectional=False))
    for r, x, p in zip(raw, ranked, plain, strict=True):
        np.testing.assert_array_equal(x.fwd_ret, r.fwd_ret)  # labels, rewards and P&L: real returns
        np.testing.assert_array_equal(p.x, r.x)
    ret_1 = F.FEATURE_NAMES.index("ret_1")
    x = np.concatenate([s.x[:, ret_1] for s in ranked])
    assert np.nanstd(x) == pytest.approx(1.0, abs=0.15)  # the features are rank-gaussian
    assert np.nanstd(np.concatenate([s.fwd_ret for s in ranked])) < 0.1  # the returns are not


def test_serve_batching_leaves_cross_sectional_votes_unchanged(feats: pa.Table) -> None:
    from actors.serving import batched_votes

    series = to_series(feats)
    pred, _ = train_xgb_xs(series, fit_normalizer(series, F.FEATURE_NAMES), 2, XGBParams(rounds=10), seed=0)
    ts = np.unique(feats.column("ts").cast(pa.int64()).to_numpy())
    tail = feats.filter(pa.array(feats.column("ts").cast(pa.int64()).to_numpy() >= ts[-5]))
    syms = np.asarray(tail.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    first = tail.filter(pa.array(np.isin(syms, [f"SYN{i:04d}" for i in range(10)])))
    second = tail.filter(pa.array(~np.isin(syms, [f"SYN{i:04d}" for i in range(10)])))
    got = batched_votes(pred, [first, second], latest_only=True)
    want = [pred.predict(first, latest_only=True), pred.predict(second, latest_only=True)]
    assert got[0].num_rows == 10 and got[1].num_rows == 20
    for g, w in zip(got, want, strict=True):
        assert g.equals(w)
    # each request is ranked among its own symbols: the two batches' scores are each z-scored
    assert abs(float(np.mean(got[0].column("score").to_numpy()))) < 1e-4
