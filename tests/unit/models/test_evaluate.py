"""Out-of-sample evaluation of agents and their consensus on a planted signal (known ground
truth): a perfect agent, an always-wrong agent and a coin flip, traded as target exposures,
through the consensus (online weights, ``no_decision``) and through the trading engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.models.synth import planted_features
from tinywindow.backtest import decisions as dec
from tinywindow.backtest.evaluate import Trials, count_trials, evaluate, train_end
from tinywindow.consensus.config import ConsensusConfig
from tinywindow.contracts import VOTES
from tinywindow.errors import DataError
from tinywindow.models.params import XGBParams
from tinywindow.models.windows import feature_names, fit_normalizer, to_series
from tinywindow.models.xgb import train_xgb

pytestmark = pytest.mark.unit
COST = 0.0005


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return planted_features(n_symbols=2, n_bars=300, seed=11)


def _votes(table: pa.Table, agent: str, action: np.ndarray, conf: float) -> pa.Table:
    ok = np.isfinite(table.column("signal").to_numpy())
    n = int(ok.sum())
    keep = pa.array(ok)
    return pa.table(
        {
            "symbol": table.column("symbol").filter(keep).cast(pa.string()),
            "ts": table.column("ts").filter(keep),
            "agent": pa.array([agent] * n),
            "model_version": pa.array(["v0001"] * n),
            "action": pa.array(action[ok].astype(np.int8)),
            "confidence": pa.array(np.full(n, conf, np.float32)),
            "score": pa.array((action[ok] * conf).astype(np.float32)),
        },
        schema=VOTES,
    )


@pytest.fixture(scope="module")
def votes(table: pa.Table) -> dict[str, pa.Table]:
    s = np.nan_to_num(table.column("signal").to_numpy())  # the sign of the next return
    coin = np.random.default_rng(99).choice([-1.0, 1.0], size=len(s))
    return {"good": _votes(table, "good", s, 0.9), "bad": _votes(table, "bad", -s, 0.9), "coin": _votes(table, "coin", coin, 0.6)}


def test_planted_signal_scores_match_the_ground_truth(table: pa.Table, votes: dict[str, pa.Table]) -> None:
    series = to_series(table)
    start, end = int(series[0].ts[150]), int(series[0].ts[-1]) + 1
    res = {a: dec.book(a, dec.vote_exposures(v, a), series, start, end, COST, trials=3) for a, v in votes.items()}
    run = dec.consensus_exposures(pa.concat_tables(votes.values()), list(votes), ConsensusConfig(), series)
    res["consensus"] = dec.book("consensus", run.exposures, series, start, end, COST, trials=3)
    ones = {s.symbol: (s.ts, np.ones(len(s), np.int64)) for s in series}
    res["bh"] = dec.book("bh", ones, series, start, end, COST, trials=3)

    assert res["good"].score.hit_rate == 1.0 and res["bad"].score.hit_rate == 0.0
    assert 0.35 < res["coin"].score.hit_rate < 0.65
    assert res["good"].max_drawdown == 0.0 and res["bad"].max_drawdown < -0.5
    assert res["bh"].score.long == 1.0 and res["bh"].score.turnover < 5
    # the consensus learned to trust the good agent and trades its signal
    assert run.weights["good"] > run.weights["coin"] > run.weights["bad"]
    assert run.outcomes_learned > 0
    assert res["consensus"].score.hit_rate > 0.95
    assert res["consensus"].score.sharpe > res["coin"].score.sharpe > res["bad"].score.sharpe
    assert res["consensus"].deflated is not None and res["consensus"].deflated.dsr > 0.95
    assert "| consensus |" in dec.markdown(list(res.values()))


def _signals(action: list[int], decided: list[bool]) -> pa.Table:
    return pa.table({
        "symbol": [f"S{i}" for i in range(len(action))], "ts": pa.array([0] * len(action), pa.int64()),
        "action": pa.array(action, pa.int8()), "decided": decided, "reason": [""] * len(action),
    })


def test_no_decision_goes_flat_or_keeps_the_previous_target() -> None:
    sig = _signals([1, 0, 0, -1], [True, True, False, True])
    prev = {"S0": -1, "S1": 1, "S2": 1, "S3": 1}
    assert dec.targets(sig, "flat", prev) == {"S0": 1, "S1": 0, "S2": 0, "S3": -1}
    assert dec.targets(sig, "keep", prev) == {"S0": 1, "S1": 0, "S2": 1, "S3": -1}  # a decided 0 is flat
    with pytest.raises(DataError):
        dec.targets(sig, "hold")


def test_decided_is_read_from_reasons_of_older_tables() -> None:
    old = pa.table({
        "action": pa.array([1, 0, 0], pa.int8()),
        "reason": ["BUY; confidence 0.9", "HOLD (hold majority; majority HOLD); x", "HOLD (tie; majority BUY); x"],
    })
    assert dec.decided_mask(old).tolist() == [True, True, False]


def test_evaluate_scores_versions_after_their_training_cut(table: pa.Table, votes: dict[str, pa.Table]) -> None:
    series = to_series(table)
    names = feature_names(table)
    cut = int(series[0].ts[150])
    train = [s.between(None, cut) for s in series]
    predictor, _ = train_xgb(train, fit_normalizer(train, names), 8, XGBParams(rounds=30), seed=0)
    meta = {"agent": "xgboost", "version": "v0001", "data": {"train": {"end": str(np.datetime64(int(train[0].ts[-1]), "ns")) + "Z"}},
            "metrics": {"validation": {"ALL": {"sharpe": 1.5}}}}
    trials = count_trials([meta, {"metrics": {"validation": {"ALL": {"sharpe": -0.5}}}}], None)
    assert trials.n == 2 and trials.sr_variance > 0
    out = evaluate(table, {"xgboost": predictor}, {"xgboost": train_end(meta)}, ConsensusConfig(quorum=1), COST, trials,
                   embargo_bars=8)
    assert out.start > train_end(meta)
    rows = {r.name: r for r in out.results}
    assert set(rows) == {"xgboost", "consensus", "buy_and_hold"}
    assert rows["xgboost"].score.hit_rate > 0.9  # learned the planted signal, scored on unseen bars
    assert rows["consensus"].score.hit_rate > 0.9
    assert rows["xgboost"].score.sharpe > rows["buy_and_hold"].score.sharpe
    assert "N = 2 configurations tried" in out.markdown() and out.to_json()["rows"][0]["name"] == "xgboost"
    with pytest.raises(DataError):
        evaluate(table, {"xgboost": predictor}, {"xgboost": int(series[0].ts[-1])}, ConsensusConfig(), COST, trials, embargo_bars=8)


def test_trials_count_versions_and_stored_tune_trials(tmp_path: Path) -> None:
    for k in range(3):
        (tmp_path / "sweep" / f"trial_{k}").mkdir(parents=True)
        (tmp_path / "sweep" / f"trial_{k}" / "params.json").write_text("{}")
    t = count_trials([{}, {}], tmp_path)
    assert (t.versions, t.tune_trials, t.n) == (2, 3, 5)
    assert "DSR = PSR" in t.describe()
    assert Trials(0, 0, ()).n == 1
    with pytest.raises(DataError):
        train_end({"agent": "x", "version": "v1"})


def test_a_perfect_agent_makes_money_through_the_engine(table: pa.Table, votes: dict[str, pa.Table]) -> None:
    from tinywindow.config import PortfolioConfig, RiskConfig
    from tinywindow.execution.engine import TradingEngine

    bars = _bars(table)
    ts = np.unique(bars.column("ts").cast(pa.int64()).to_numpy())
    start, end = int(ts[100]), int(ts[-1]) + 1
    runs = {}
    for agent in ("good", "bad"):
        engine = TradingEngine(RiskConfig(), PortfolioConfig())
        runs[agent] = dec.trade(agent, bars, votes[agent], [agent], dec.solo(ConsensusConfig()), engine, start, end)
    assert runs["good"].orders > 0 and runs["good"].decisions["long"] > 0
    assert runs["good"].equity[-1] > runs["good"].equity[0] > runs["bad"].equity[-1]
    assert runs["good"].outcomes_learned > 0


def _bars(table: pa.Table) -> pa.Table:
    """BARS whose close-to-close log returns are the table's ``ret_1`` (open = previous close)."""
    sym = table.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False)
    r = np.nan_to_num(table.column("ret_1").to_numpy().astype(np.float64))
    close = np.empty(len(r))
    for s in np.unique(sym):
        m = sym == s
        close[m] = 100.0 * np.exp(np.cumsum(r[m]))
    prev = np.r_[close[0], close[:-1]]
    prev[np.r_[True, sym[1:] != sym[:-1]]] = close[np.r_[True, sym[1:] != sym[:-1]]]
    return pa.table({
        "symbol": pa.array(sym, pa.string()).dictionary_encode(),
        "ts": table.column("ts"),
        "open": prev, "high": np.maximum(prev, close) * 1.001, "low": np.minimum(prev, close) * 0.999,
        "close": close, "volume": np.full(len(r), 1e6),
    })


def test_cli_evaluate_and_lookahead_on_a_stored_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``tinywindow agents evaluate`` and ``tinywindow lookahead`` on a signed XGBoost version
    trained on bundled GOOG bars up to 2012 (real data), evaluated on 2012-2013."""
    from tinywindow.cli import main
    from tinywindow.crypto.keystore import KeyStore
    from tinywindow.data import features
    from tinywindow.data.sources.bundled import BundledSource
    from tinywindow.models.registry import ModelRegistry
    from tinywindow.models.windows import data_range

    keys = KeyStore.init(tmp_path / "keys", "cli-test-passphrase", scrypt_log2_n=10)
    monkeypatch.setenv("TW_PASSPHRASE", "cli-test-passphrase")
    feats = features.compute(BundledSource("bundled", ["goog"]).table())
    train = [s.between(None, "2012-01-01") for s in to_series(feats)]
    model, _ = train_xgb(train, fit_normalizer(train, feature_names(feats)), 32, XGBParams(rounds=10), seed=0)
    registry = ModelRegistry(tmp_path / "models", keys, signer=keys)
    registry.publish(model, {"data": {"train": data_range(train)}, "metrics": {"validation": {"ALL": {"sharpe": 0.3}}}})

    base = ["--set", f"data_dir={tmp_path}"]
    out = tmp_path / "eval.json"
    assert main([*base, "agents", "evaluate", "--data", "goog", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| xgboost |" in text and "| consensus |" in text and "| buy_and_hold |" in text
    import json

    report = json.loads(out.read_text())
    assert report["start"] > "2012-01-01" and report["trials"]["n"] == 1
    assert main([*base, "lookahead", "--data", "goog", "--start", "2011-01-01", "--cuts", "1"]) == 0
    assert "xgboost: v0001" in capsys.readouterr().out
