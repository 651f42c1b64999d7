"""The RLModules' forward passes and the one inference contract, without a Ray cluster.

Nothing here trains with RLlib (that needs Ray: see tests/ray/test_agent_actor.py); the
RLModules (``actors.training.rlmodule``) are only built and run forward, and the predictors
serve the plain-torch policy.  The XGBoost agent trains here because it needs nothing but
numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from ray.rllib.core.columns import Columns

from actors.training.rlmodule import build_module
from tests.compare import assert_votes_match
from tests.unit.models.synth import NAMES
from tinywindow.contracts import VOTES, validate
from tinywindow.models.evaluation import walkforward as wf
from tinywindow.models.loading import load_dir
from tinywindow.models.params import PPOParams, XGBParams
from tinywindow.models.rl import RLPredictor, build_policy
from tinywindow.models.windows import fit_normalizer, to_series
from tinywindow.models.xgb import train_xgb

WINDOW = 8


@pytest.fixture(params=["lstm", "transformer"])
def rl_agent(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _module(agent: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_module(agent, WINDOW, len(NAMES), PPOParams(hidden=16, heads=2).model_config_dict())


def test_rlmodule_forward_passes_and_value_head(rl_agent: str) -> None:
    module = _module(rl_agent)
    obs = torch.randn(5, WINDOW, len(NAMES))
    inf = module.forward_inference({Columns.OBS: obs})
    assert inf[Columns.ACTION_DIST_INPUTS].shape == (5, 3)
    train = module.forward_train({Columns.OBS: obs})
    assert train[Columns.EMBEDDINGS].shape == (5, 16)
    values = module.compute_values({Columns.OBS: obs})
    assert values.shape == (5,)
    np.testing.assert_allclose(
        module.compute_values({Columns.OBS: obs}, embeddings=train[Columns.EMBEDDINGS]).detach(), values.detach()
    )
    assert not module.is_stateful()  # the window is the memory: no state across env steps


def test_encoder_reads_the_whole_window_in_order(rl_agent: str) -> None:
    module = _module(rl_agent)
    obs = torch.randn(1, WINDOW, len(NAMES))
    base = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    oldest = obs.clone()
    oldest[0, 0] += 3.0
    assert not torch.allclose(module.forward_inference({Columns.OBS: oldest})[Columns.ACTION_DIST_INPUTS], base)
    flipped = obs.flip(1)
    assert not torch.allclose(module.forward_inference({Columns.OBS: flipped})[Columns.ACTION_DIST_INPUTS], base)


def _rl_predictor(agent: str, table: pa.Table, seed: int = 0) -> RLPredictor:
    norm = fit_normalizer(to_series(table), NAMES)
    cfg = PPOParams(hidden=16, heads=2).model_config_dict()
    torch.manual_seed(seed)
    return RLPredictor(agent, build_policy(agent, WINDOW, len(NAMES), cfg), norm, WINDOW, cfg)


def test_predict_is_one_vote_per_full_window_in_input_order(rl_agent: str, planted: pa.Table) -> None:
    predictor = _rl_predictor(rl_agent, planted)
    shuffled = planted.take(pa.array(np.random.default_rng(0).permutation(planted.num_rows)))
    votes = predictor.predict(shuffled)
    validate(votes, VOTES)
    assert votes.num_rows == 3 * (400 - 5 - (WINDOW - 1))  # warm-up rows get no vote
    # input order kept: the votes' keys are a subsequence of the input's keys in order
    key = lambda t: list(zip(t.column("symbol").cast(pa.string()).to_pylist(), t.column("ts").to_pylist(), strict=True))  # noqa: E731
    pos = {k: i for i, k in enumerate(key(shuffled))}
    assert np.all(np.diff([pos[k] for k in key(votes)]) > 0)
    assert set(votes.column("agent").to_pylist()) == {rl_agent}
    # batching does not change a vote (actions equal, confidences within 1e-6: tests/compare.py)
    assert_votes_match(predictor.predict(shuffled, batch_rows=7), votes)


def test_batched_prediction_equals_one_window_at_a_time(rl_agent: str, planted: pa.Table) -> None:
    predictor = _rl_predictor(rl_agent, planted)
    full = predictor.predict(planted)
    sym0 = planted.slice(0, 400)
    for end in (12, 100, 399):
        one = predictor.predict(sym0.slice(end - WINDOW + 1, WINDOW), latest_only=True)
        assert one.num_rows == 1
        match = full.filter(pa.compute.equal(full.column("ts"), one.column("ts")[0]))
        match = match.filter(pa.compute.equal(match.column("symbol").cast(pa.string()), "SYM0"))
        assert match.column("action").to_pylist() == one.column("action").to_pylist()
        np.testing.assert_allclose(match.column("confidence").to_numpy(), one.column("confidence").to_numpy(), rtol=1e-5)


def test_confidence_is_the_probability_of_the_chosen_action(planted: pa.Table) -> None:
    predictor = _rl_predictor("lstm", planted)
    votes = predictor.predict(planted.slice(0, 50))
    conf = votes.column("confidence").to_numpy()
    assert np.all((conf >= 1 / 3 - 1e-6) & (conf <= 1.0))


def test_rl_predictor_round_trips_through_files(rl_agent: str, planted: pa.Table, tmp_path: Path) -> None:
    predictor = _rl_predictor(rl_agent, planted)
    predictor.save(tmp_path / "m")
    loaded = load_dir(tmp_path / "m", "v0042")
    assert loaded.version == "v0042" and loaded.agent == rl_agent
    a, b = predictor.predict(planted), loaded.predict(planted)
    assert a.column("action").equals(b.column("action"))
    np.testing.assert_allclose(a.column("confidence").to_numpy(), b.column("confidence").to_numpy(), rtol=1e-6)


def _split(table: pa.Table, train_bars: int = 300) -> tuple[list, wf.Split]:
    series = to_series(table)
    ts = series[0].ts
    return series, wf.Split(int(ts[train_bars]), int(ts[train_bars + WINDOW]), int(ts[-1]) + 1)


def test_xgboost_learns_a_planted_signal_out_of_sample(planted: pa.Table, seed: int) -> None:
    series, split = _split(planted)
    train = wf.training_part(series, split)
    norm = fit_normalizer(train, NAMES)
    predictor, stats = train_xgb(train, norm, WINDOW, XGBParams(rounds=30), seed=seed)
    vset = wf.ValidationSet.build(series, split, WINDOW)
    scores = vset.evaluate(predictor, cost=0.0005)
    assert scores[wf.ALL].hit_rate > 0.95
    assert scores[wf.ALL].sharpe > vset.buy_and_hold(0.0005)[wf.ALL].sharpe
    votes = predictor.predict(planted)
    validate(votes, VOTES)
    assert set(votes.column("action").to_pylist()) <= {-1, 1}  # the booster never holds
    assert stats["rows"] == sum(len(s) for s in train) - 3 * (5 + WINDOW - 1) - 3  # labelled windows


def test_xgboost_labels_come_only_from_the_training_window(planted: pa.Table) -> None:
    _series, split = _split(planted)
    # scramble every return after the training window: the trained booster must not change
    scrambled = planted.set_column(
        NAMES.index("ret_1") + 2,
        "ret_1",
        pa.array(np.where(_after(planted, split.train_end), np.float32(0.05), planted.column("ret_1").to_numpy())),
    )
    boosters = []
    for table in (planted, scrambled):
        s = to_series(table)
        train = wf.training_part(s, split)
        boosters.append(train_xgb(train, fit_normalizer(train, NAMES), WINDOW, XGBParams(rounds=10), seed=0)[0])
    probe = np.random.default_rng(0).standard_normal((20, WINDOW, len(NAMES))).astype(np.float32)
    np.testing.assert_array_equal(boosters[0].probabilities(probe), boosters[1].probabilities(probe))


def _after(table: pa.Table, ts: int) -> np.ndarray:
    return table.column("ts").cast(pa.int64()).to_numpy() >= ts
