from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinywindow.config import SourceConfig
from tinywindow.contracts import BARS, validate
from tinywindow.data.base import DataSource, replay, select, to_utc_ns
from tinywindow.data.sources import build_source
from tinywindow.data.sources.bundled import DATASETS, BundledSource, load_dataset
from tinywindow.data.sources.files import FileSource
from tinywindow.data.sources.synthetic import SyntheticSource, generate
from tinywindow.errors import ConfigError, DataError


@pytest.mark.parametrize("key", list(DATASETS))
def test_bundled_datasets_are_real_and_valid(key: str) -> None:
    t = validate(load_dataset(key), BARS)
    assert t.num_rows > 100
    ts = pd.to_datetime(t.column("ts").to_numpy(), utc=True)
    assert ts.is_monotonic_increasing
    if key in ("sp500", "nasdaq"):
        assert ts[0].year == 1999 and ts[-1].year == 2018 and t.num_rows == 5031
        # stamped at the 16:00 New York close
        assert {h for h in ts.tz_convert("America/New_York").hour} == {16}


def test_bundled_source_fetch_select_and_stream() -> None:
    src = BundledSource("b", ["sp500", "goog"])
    assert isinstance(src, DataSource)
    assert src.symbols() == ["GOOG", "SP500"]
    t = src.fetch(["GOOG"], "2010-01-01", "2011-01-01")
    assert set(t.column("symbol").to_pylist()) == {"GOOG"} and t.num_rows == 252
    batches = list(BundledSource("c", ["goog"]).stream())
    assert len(batches) == 2148 and all(b.num_rows == 1 for b in batches)
    with pytest.raises(DataError, match="unknown bundled dataset"):
        BundledSource("x", ["nope"])


def test_synthetic_is_seeded_consistent_and_correlated() -> None:
    a, b = generate(10, 500, seed=7), generate(10, 500, seed=7)
    assert a.equals(b)
    assert not a.equals(generate(10, 500, seed=8))
    validate(a, BARS)  # high >= open, close >= low > 0, increasing timestamps
    close = a.column("close").to_numpy().reshape(10, 500)
    r = np.diff(np.log(close), axis=1)
    corr = np.corrcoef(r)[np.triu_indices(10, 1)]
    assert corr.mean() > 0.2  # a common factor
    vol = a.column("volume").to_numpy().reshape(10, 500)[:, 1:]
    assert np.corrcoef(np.abs(r).ravel(), vol.ravel())[0, 1] > 0  # volume rises with moves
    src = SyntheticSource("s", n_symbols=3, n_bars=20)
    assert src.fetch().num_rows == 60


def _csv(tmp_path: Path, text: str, name: str = "aapl.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_file_source_csv_mapping_and_timezone(tmp_path: Path) -> None:
    p = _csv(
        tmp_path,
        "Date,Open,High,Low,Adj Close,Vol\n"
        "2020-01-02 16:00,10,11,9,10.5,100\n"
        "2020-01-03 16:00,10.5,12,10,11,200\n",
    )
    src = FileSource("f", p, columns={"Adj Close": "close"}, timezone="America/New_York")
    t = src.fetch()
    assert t.column("symbol").to_pylist() == ["AAPL", "AAPL"]
    ts = pd.to_datetime(t.column("ts").to_numpy(), utc=True)
    assert ts[0] == pd.Timestamp("2020-01-02 21:00", tz="UTC")
    assert t.column("close").to_pylist() == [10.5, 11.0]


def test_file_source_parquet_directory_multi_symbol(tmp_path: Path) -> None:
    bars = generate(2, 30, seed=1).to_pandas()
    bars["symbol"] = bars["symbol"].astype(str)
    pq.write_table(pa.Table.from_pandas(bars, preserve_index=False), tmp_path / "x.parquet")
    src = build_source(SourceConfig(name="p", kind="file", path=str(tmp_path)))
    assert src.fetch().num_rows == 60 and src.symbols() == ["SYN0000", "SYN0001"]


@pytest.mark.parametrize(
    "body,match,row,column",
    [
        ("2020-01-02,10,11,9,abc,100\n", "not a number", 1, "close"),
        ("yesterday,10,11,9,10,100\n", "not a time", 1, "date"),
        ("2020-01-01,10,11,9,-3,100\n", "not positive", 1, "close"),
        ("2020-01-01,10,8,9,10,100\n", "high", 1, "high"),
        ("2020-01-01,10,11,9,10,100\n", "duplicate", 1, "ts"),
    ],
)
def test_file_source_bad_rows_named(tmp_path: Path, body: str, match: str, row: int, column: str) -> None:
    p = _csv(tmp_path, "date,open,high,low,close,volume\n2020-01-01,10,11,9,10,100\n" + body)
    with pytest.raises(DataError, match=match) as exc:
        FileSource("f", p).fetch()
    assert exc.value.row == row and exc.value.column == column
    assert exc.value.source is not None and "aapl.csv" in exc.value.source


def test_file_source_quarantine_mode_counts_reasons(tmp_path: Path) -> None:
    p = _csv(
        tmp_path,
        "date,open,high,low,close,volume\n"
        "2020-01-01,10,11,9,10,100\n2020-01-02,10,11,9,-1,100\n"
        "2020-01-03,10,11,9,10,100\n2020-01-03,10,11,9,10,100\n2020-01-04,10,11,9,10,-5\n",
    )
    src = FileSource("f", p, on_bad_rows="quarantine")
    assert src.fetch().num_rows == 2
    assert src.quarantined.count == 3
    assert sum(src.quarantined.reasons.values()) == 3


def test_file_source_missing_things(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        FileSource("f", tmp_path / "none.csv").fetch()
    p = _csv(tmp_path, "date,open,high,close\n2020-01-01,1,2,1\n")
    with pytest.raises(DataError, match="missing column 'low'"):
        FileSource("f", p).fetch()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .csv"):
        FileSource("f", tmp_path / "empty").fetch()
    with pytest.raises(ConfigError, match="needs a path"):
        build_source(SourceConfig(name="x", kind="file"))


def test_select_and_time_parsing() -> None:
    t = generate(2, 10, seed=0)
    assert select(t, ["SYN0001"]).num_rows == 10
    first = to_utc_ns("2007-01-02 21:00")
    assert select(t, None, first, None).num_rows == 18
    assert select(t, None, None, first).num_rows == 2
    with pytest.raises(DataError, match="not a time"):
        to_utc_ns("soon")


def test_replay_is_time_ordered_and_paced() -> None:
    slept: list[float] = []
    batches = list(replay(generate(3, 4, seed=0), speed=86400.0, sleep=slept.append))
    assert [b.num_rows for b in batches] == [3, 3, 3, 3]
    assert len(slept) == 3 and all(0.9 <= s <= 3.1 for s in slept)  # business days at 1 day/s
