"""Ordinary files through the file source: a daily CSV stamped at its close, an hourly FX CSV
with day-first timestamps, and close-only files whose high/low/volume features are
unavailable rather than computed from filler.  No Ray; files are written to ``tmp_path`` and
loaded through ``build_source`` (the class the DataSourceActor holds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tinywindow.config import build
from tinywindow.contracts import BARS, validate
from tinywindow.data import features
from tinywindow.data.sources import build_source
from tinywindow.data.sources.bundled import load_dataset
from tinywindow.data.sources.files import FileSource
from tinywindow.errors import ConfigError, DataError

NEEDS_RANGE_OR_VOLUME = ("atr_14", "hl_range", "volume_z_20")
CLOSE_ONLY_FEATURES = [f for f in features.FEATURE_NAMES if f not in NEEDS_RANGE_OR_VOLUME]


def source(path: Path, **options: Any) -> FileSource:
    cfg = build({"data": {"sources": [{"name": "f", "kind": "file", "path": str(path), **options}]}})
    src = build_source(cfg.data.sources[0])
    assert isinstance(src, FileSource)
    return src


def utc_ns(table: pa.Table) -> list[int]:
    return table.column("ts").cast(pa.int64()).to_pylist()


# --------------------------------------------------------------------------- user story (a)


def test_daily_csv_at_the_new_york_close_matches_the_bundled_stamps(tmp_path: Path) -> None:
    bundled = load_dataset("goog").slice(0, 300)  # Aug 2004 - Oct 2005: both DST changes
    ts = pd.DatetimeIndex(bundled.column("ts").to_pandas()).tz_convert("America/New_York")
    frame = pd.DataFrame({k: bundled.column(k).to_numpy() for k in ("open", "high", "low", "close", "volume")})
    frame.insert(0, "Date", ts.strftime("%Y-%m-%d"))
    path = tmp_path / "goog.csv"
    frame.to_csv(path, index=False)
    loaded = source(path, timezone="America/New_York", daily_close="16:00").table()
    assert utc_ns(loaded) == utc_ns(bundled)
    assert loaded.column("symbol").cast(pa.string()).unique().to_pylist() == ["GOOG"]
    assert {pd.Timestamp(t, tz="UTC").hour for t in utc_ns(loaded)} == {20, 21}  # EDT, EST


def test_daily_csv_without_a_close_is_stamped_at_midnight_in_its_timezone(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n2020-01-02,10,11,9,10.5,100\n")
    assert utc_ns(source(path).table()) == [pd.Timestamp("2020-01-02", tz="UTC").value]
    assert utc_ns(source(path, daily_close="24:00").table()) == [pd.Timestamp("2020-01-03", tz="UTC").value]


# --------------------------------------------------------------------------- user story (b)


def fx_csv(path: Path, hours: int = 400) -> list[int]:
    """Hourly EURUSD with ``01.01.2017 22:00:00.000`` stamps; returns the expected UTC ns
    when the stamps are UTC."""
    start = pd.Timestamp("2017-01-01 22:00")
    stamps = [start + pd.Timedelta(hours=h) for h in range(hours)]
    rows = "".join(f"{t.strftime('%d.%m.%Y %H:%M:%S')}.000,1.05,1.06,1.04,1.05,{h}\n" for h, t in enumerate(stamps))
    path.write_text("Gmt time,Open,High,Low,Close,Volume\n" + rows)
    return [t.tz_localize("UTC").value for t in stamps]


@pytest.mark.parametrize(
    "options",
    [{"timestamp_format": "%d.%m.%Y %H:%M:%S.%f"}, {"ts_format": "%d.%m.%Y %H:%M:%S.%f"}, {"dayfirst": True}],
    ids=["timestamp_format", "ts_format", "dayfirst"],
)
def test_hourly_fx_with_day_first_stamps_loads(tmp_path: Path, options: dict[str, Any]) -> None:
    expected = fx_csv(tmp_path / "eurusd.csv", hours=60)  # 60 h: never past the 12th, both readings possible
    table = source(tmp_path / "eurusd.csv", **options).table()
    assert utc_ns(table) == expected
    assert table.column("symbol").cast(pa.string()).unique().to_pylist() == ["EURUSD"]


def test_hourly_fx_in_a_timezone_is_converted_to_utc(tmp_path: Path) -> None:
    expected = fx_csv(tmp_path / "eurusd.csv", hours=30)
    table = source(tmp_path / "eurusd.csv", timestamp_format="%d.%m.%Y %H:%M:%S.%f", timezone="Europe/Berlin").table()
    assert utc_ns(table) == [t - 3600 * 10**9 for t in expected]  # CET = UTC+1 in January


def test_ambiguous_fx_without_an_option_is_refused_naming_file_column_and_option(tmp_path: Path) -> None:
    fx_csv(tmp_path / "eurusd.csv", hours=60)
    with pytest.raises(DataError) as exc:
        source(tmp_path / "eurusd.csv").table()
    assert exc.value.column == "Gmt time" and "eurusd.csv" in str(exc.value)
    assert "ambiguous" in str(exc.value) and "dayfirst" in str(exc.value)


def test_a_long_fx_file_tells_day_first_by_itself(tmp_path: Path) -> None:
    expected = fx_csv(tmp_path / "eurusd.csv", hours=400)  # reaches 13.01: only day-first reads it
    assert utc_ns(source(tmp_path / "eurusd.csv").table()) == expected


# --------------------------------------------------------------------------- option spellings


def test_new_spellings_set_the_same_options() -> None:
    base = {"name": "f", "kind": "file", "path": "x.csv"}
    a = build({"data": {"sources": [{**base, "timestamp_format": "%d.%m.%Y", "daily_close": "16:00"}]}})
    b = build({"data": {"sources": [{**base, "ts_format": "%d.%m.%Y", "close_time": "16:00"}]}})
    assert a.data.sources[0] == b.data.sources[0]


@pytest.mark.parametrize(
    "options,key",
    [({"daily_close": "25:00"}, "daily_close"), ({"timestamp_format": "%Y", "ts_format": "%Y"}, "timestamp_format"),
     ({"dayfirst": "sometimes"}, "dayfirst"), ({"timezone": "New York"}, "timezone")],
)
def test_bad_time_options_name_the_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build({"data": {"sources": [{"name": "f", "kind": "file", "path": "x.csv", **options}]}})
    assert key in str(exc.value)


# --------------------------------------------------------------------------- close-only files


def ohlcv(n: int = 150, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    dates = pd.bdate_range("2020-01-01", periods=n).strftime("%Y-%m-%d")
    return pd.DataFrame({"date": dates, "open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.integers(1, 10_000, n).astype(float)})


def feature_columns(table: pa.Table, names: list[str]) -> dict[str, np.ndarray]:
    return {n: table.column(n).to_numpy() for n in names}


@pytest.mark.parametrize("with_volume", [False, True], ids=["close", "close+volume"])
def test_close_only_features_equal_the_full_file_and_the_rest_are_unavailable(
    tmp_path: Path, with_volume: bool
) -> None:
    frame = ohlcv()
    frame.to_csv(tmp_path / "full.csv", index=False)
    frame[["date", "close", "volume"] if with_volume else ["date", "close"]].to_csv(tmp_path / "thin.csv", index=False)
    full = features.compute(source(tmp_path / "full.csv", symbol="X").table())
    thin_source = source(tmp_path / "thin.csv", symbol="X")
    thin = features.compute(thin_source.table())

    available = CLOSE_ONLY_FEATURES + (["volume_z_20"] if with_volume else [])
    for name, values in feature_columns(full, available).items():
        np.testing.assert_array_equal(thin.column(name).to_numpy(), values, err_msg=name)
    missing = [f for f in NEEDS_RANGE_OR_VOLUME if f not in available]
    for name in missing:
        assert np.isnan(thin.column(name).to_numpy()).all(), name
        assert np.isfinite(full.column(name).to_numpy()[60:]).all(), name  # the full file has them

    unavailable = json.loads(thin.schema.metadata[features.UNAVAILABLE_KEY])
    assert sorted(unavailable) == sorted(missing)
    assert "high, low" in unavailable["atr_14"] and "X" in unavailable["atr_14"]
    assert features.UNAVAILABLE_KEY not in (full.schema.metadata or {})
    described = thin_source.describe()
    assert described["unavailable_features"] == unavailable
    assert described["filled_columns"] == {"X": ["open", "high", "low"] + ([] if with_volume else ["volume"])}


def test_fetch_keeps_the_mark_so_a_window_stays_honest(tmp_path: Path) -> None:
    ohlcv()[["date", "close"]].to_csv(tmp_path / "thin.csv", index=False)
    window = source(tmp_path / "thin.csv", symbol="X").fetch(start="2020-03-01")
    assert features.filled_columns(window) == {"X": ("open", "high", "low", "volume")}
    assert np.isnan(features.compute(window).column("hl_range").to_numpy()).all()


def test_a_directory_marks_only_its_close_only_symbols(tmp_path: Path) -> None:
    frame = ohlcv()
    frame.to_csv(tmp_path / "full.csv", index=False)
    frame[["date", "close"]].to_csv(tmp_path / "thin.csv", index=False)
    src = source(tmp_path)
    table = features.compute(src.table())
    sym = np.asarray(table.column("symbol").cast(pa.string()).to_pylist())
    hl = table.column("hl_range").to_numpy()
    assert np.isnan(hl[sym == "THIN"]).all() and np.isfinite(hl[sym == "FULL"]).all()
    np.testing.assert_array_equal(
        table.column("rsi_14").to_numpy()[sym == "THIN"], table.column("rsi_14").to_numpy()[sym == "FULL"]
    )
    assert list(src.describe()["unavailable_features"]) == ["atr_14", "hl_range", "volume_z_20"]


def test_close_only_stays_unavailable_when_the_mark_is_lost(tmp_path: Path) -> None:
    ohlcv()[["date", "close"]].to_csv(tmp_path / "thin.csv", index=False)
    src = source(tmp_path / "thin.csv", symbol="X")
    bare = validate(src.table(), BARS)  # e.g. the DataSourceActor's ingest or a store round trip
    assert not features.filled_columns(bare)
    assert features.flat_columns(bare) == {"X": ("open", "high", "low", "volume")}
    for filled in (None, src.filled):
        out = features.compute(bare, filled=filled)
        for name in NEEDS_RANGE_OR_VOLUME:
            assert np.isnan(out.column(name).to_numpy()).all(), name


def test_one_flat_bar_is_data_not_a_close_only_mark() -> None:
    bars = pa.Table.from_pydict(
        {"symbol": ["A", "A", "B", "B"], "ts": pd.to_datetime([1, 2, 1, 2], unit="s", utc=True),
         "open": [10.0, 11, 10, 10], "high": [10.0, 12, 10, 10], "low": [10.0, 10, 10, 10],
         "close": [10.0, 11, 10, 10], "volume": [0.0, 5, 0, 0]}
    )
    assert features.flat_columns(validate(bars, BARS)) == {"B": ("open", "high", "low", "volume")}


def test_zero_volume_with_real_ranges_is_data_and_cut_independent() -> None:
    """FX-style bars (real high/low, volume 0 until some bar) are not marked close-only, so the
    features before a cut do not depend on the volume reported after it."""
    n = 120
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    volume = np.where(np.arange(n) < 90, 0.0, 1_000.0)
    bars = validate(pa.Table.from_pydict(
        {"symbol": ["FX"] * n, "ts": pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC"),
         "open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": volume}
    ), BARS)
    assert features.flat_columns(bars) == features.flat_columns(bars.slice(0, 80)) == {}
    for name in ("atr_14", "volume_z_20"):
        full = features.compute(bars).column(name).to_numpy()[:80]
        cut = features.compute(bars.slice(0, 80)).column(name).to_numpy()
        np.testing.assert_allclose(cut, full, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert not features.unavailable_features(features.flat_columns(bars.slice(0, 80)))
