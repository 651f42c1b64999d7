from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ta

from tinywindow.contracts import BARS, validate
from tinywindow.data import features as F
from tinywindow.data.base import concat_bars
from tinywindow.data.sources.bundled import load_dataset
from tinywindow.data.sources.synthetic import generate


def _frame(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    df["symbol"] = df["symbol"].astype(str)
    return df


def test_schema_and_shape() -> None:
    bars = generate(4, 200, seed=1)
    f = F.compute(bars)
    assert f.num_rows == bars.num_rows
    assert f.column_names == ["symbol", "ts", *F.FEATURE_NAMES]
    validate(f, F.FEATURES)
    assert f.column("ts").equals(bars.column("ts"))
    # after warm-up every feature is defined
    tail = _frame(f).groupby("symbol", observed=True).tail(100)
    assert not tail[list(F.FEATURE_NAMES)].isna().any().any()


def test_strictly_causal_perturbing_the_future_changes_nothing_before() -> None:
    bars = generate(3, 300, seed=2)
    base = _frame(F.compute(bars))
    df = _frame(bars)
    cut = df["ts"].sort_values().unique()[150]
    future = df["ts"] > cut
    rng = np.random.default_rng(0)
    shock = np.exp(rng.normal(0, 0.3, future.sum()))
    for col in ("open", "high", "low", "close"):
        df.loc[future, col] = df.loc[future, col] * shock
    df.loc[future, "volume"] *= 7
    perturbed = _frame(F.compute(pa.Table.from_pandas(df, schema=bars.schema, preserve_index=False)))
    past = (base["ts"] <= cut).to_numpy()
    cols = list(F.FEATURE_NAMES)
    np.testing.assert_array_equal(base.loc[past, cols].to_numpy(), perturbed.loc[past, cols].to_numpy())
    assert not np.allclose(
        base.loc[~past, cols].fillna(0).to_numpy(), perturbed.loc[~past, cols].fillna(0).to_numpy()
    )


def test_ragged_interleaved_input_matches_per_symbol_computation() -> None:
    a = generate(1, 250, seed=3)
    b = generate(1, 120, seed=4, start="2007-06-01")
    b = validate(b.drop(["symbol"]).add_column(0, "symbol", pa.array(["OTHER"] * b.num_rows)), BARS)
    both = concat_bars([a, b])
    shuffled = both.sort_by([("ts", "ascending")])  # interleaved: time-major
    together = _frame(F.compute(shuffled)).set_index(["symbol", "ts"]).sort_index()
    alone = pd.concat([_frame(F.compute(a)), _frame(F.compute(b))]).set_index(["symbol", "ts"]).sort_index()
    pd.testing.assert_frame_equal(together, alone)


def test_blocking_changes_nothing() -> None:
    bars = generate(37, 90, seed=5)
    # blocks of 5 and of 64 symbols are different array shapes, so numpy may take different SIMD
    # paths: equal within float32 precision, and NaN exactly where NaN
    np.testing.assert_allclose(
        F.compute(bars, block=5).drop(["symbol", "ts"]).to_pandas().to_numpy(),
        F.compute(bars, block=64).drop(["symbol", "ts"]).to_pandas().to_numpy(),
        rtol=1e-5, atol=1e-6,
    )


@pytest.mark.parametrize("dataset", ["sp500", "goog"])
def test_matches_ta_package_on_real_data(dataset: str) -> None:
    bars = load_dataset(dataset)
    ours = _frame(F.compute(bars))
    d = _frame(bars)
    c, h, lo = d["close"], d["high"], d["low"]
    m = ta.trend.MACD(c)
    reference = {
        "rsi_14": ta.momentum.RSIIndicator(c, 14).rsi(),
        "macd": m.macd() / c,
        "macd_signal": m.macd_signal() / c,
        "macd_hist": m.macd_diff() / c,
        "bb_pctb_20": ta.volatility.BollingerBands(c, 20, 2).bollinger_pband(),
        "atr_14": ta.volatility.AverageTrueRange(h, lo, c, 14).average_true_range() / c,
        "sma_ratio_20": c / ta.trend.SMAIndicator(c, 20).sma_indicator() - 1,
        "ret_5": np.log(c / c.shift(5)),
        "vol_20": np.log(c / c.shift(1)).rolling(20).std(),
        "volume_z_20": (d["volume"] - d["volume"].rolling(20).mean()) / d["volume"].rolling(20).std(),
    }
    for name, ref in reference.items():
        a = ours[name].to_numpy(np.float64)
        b = ref.to_numpy(np.float64)
        both = np.isfinite(a) & np.isfinite(b)
        assert both.sum() > len(a) - 100, name
        np.testing.assert_allclose(a[both], b[both], rtol=2e-5, atol=2e-6, err_msg=name)


def test_constant_prices_give_defined_values_not_infinities() -> None:
    n = 80
    ts = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC")
    df = pd.DataFrame({"symbol": "FLAT", "ts": ts, "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0, "volume": 5.0})
    bars = validate(pa.Table.from_pandas(df, preserve_index=False), BARS)
    f = _frame(F.compute(bars)).iloc[-1]
    assert f["bb_pctb_20"] == 0.5 and f["volume_z_20"] == 0.0 and f["rsi_14"] == 100.0
    assert f["vol_20"] == 0.0


def test_short_history_is_all_warmup_not_an_error() -> None:
    f = F.compute(generate(2, 3, seed=0))
    assert f.num_rows == 6
    assert np.isnan(f.column("ret_60").to_numpy()).all()
    assert F.compute(generate(2, 3, seed=0).slice(0, 0)).num_rows == 0
