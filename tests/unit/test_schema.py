from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tinywindow.contracts import BARS, VOTES, features_schema, quarantine, validate
from tinywindow.errors import DataError, SchemaError


def bars(n: int = 5, symbols: tuple[str, ...] = ("AAA", "BBB")) -> pa.Table:
    ts = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC")
    rows = []
    for s in symbols:
        for i, t in enumerate(ts):
            c = 100.0 + i
            rows.append((s, t, c - 0.5, c + 1, c - 1, c, 1000.0 + i))
    df = pd.DataFrame(rows, columns=["symbol", "ts", "open", "high", "low", "close", "volume"])
    return pa.Table.from_pandas(df, preserve_index=False)


def test_valid_bars_are_conformed_exactly() -> None:
    out = validate(bars(), BARS)
    assert out.schema.equals(BARS, check_metadata=False)
    assert out.num_rows == 10


def test_coercions_int_prices_and_us_timestamps() -> None:
    t = bars().set_column(6, "volume", pa.array(np.arange(10), pa.int64()))
    t = t.set_column(1, "ts", t.column("ts").cast(pa.timestamp("us", tz="UTC")))
    assert validate(t, BARS).column("volume").type == pa.float64()


def test_naive_timestamps_rejected() -> None:
    t = bars()
    t = t.set_column(1, "ts", t.column("ts").cast(pa.timestamp("ns")))
    with pytest.raises(SchemaError, match="'ts'"):
        validate(t, BARS)


def test_missing_and_mistyped_columns_named() -> None:
    with pytest.raises(SchemaError) as exc:
        validate(bars().drop(["low"]), BARS, source="f.csv")
    assert exc.value.column == "low" and exc.value.source == "f.csv"
    t = bars().set_column(3, "high", pa.array(["x"] * 10))
    with pytest.raises(SchemaError) as exc:
        validate(t, BARS)
    assert exc.value.column == "high"


@pytest.mark.parametrize(
    "column,value,reason",
    [
        ("close", np.nan, "NaN"),
        ("open", np.inf, "infinite"),
        ("low", -1.0, "not positive"),
        ("high", 50.0, "high"),
        ("volume", -5.0, "negative"),
    ],
)
def test_bad_values_name_row_and_column(column: str, value: float, reason: str) -> None:
    df = bars().to_pandas()
    df.loc[7, column] = value
    with pytest.raises(DataError, match=reason) as exc:
        validate(pa.Table.from_pandas(df, preserve_index=False), BARS, source="src")
    assert exc.value.row == 7
    assert exc.value.source == "src"


def test_nulls_named() -> None:
    df = bars().to_pandas()
    df["close"] = df["close"].astype("float64")
    t = pa.Table.from_pandas(df, preserve_index=False)
    arr = t.column("close").to_pylist()
    arr[3] = None
    t = t.set_column(5, "close", pa.array(arr, pa.float64()))
    with pytest.raises(DataError, match="missing") as exc:
        validate(t, BARS)
    assert exc.value.row == 3 and exc.value.column == "close"


def test_duplicate_and_unsorted_timestamps() -> None:
    t = bars()
    dup = pa.concat_tables([t, t.slice(9, 1)])
    with pytest.raises(DataError, match="duplicate") as exc:
        validate(dup, BARS)
    assert exc.value.row == 10
    with pytest.raises(DataError, match="not increasing"):
        validate(pa.concat_tables([t, t.slice(2, 1)]), BARS)
    rev = t.take(pa.array([1, 0, 2, 3, 4, 5, 6, 7, 8, 9]))
    with pytest.raises(DataError, match="not increasing") as exc:
        validate(rev, BARS)
    assert exc.value.row == 1


def test_interleaved_symbols_are_fine() -> None:
    t = bars().sort_by([("ts", "ascending"), ("symbol", "ascending")])
    assert validate(t, BARS).num_rows == 10


def test_quarantine_counts_reasons_and_keeps_order() -> None:
    df = bars(20).to_pandas()
    df.loc[3, "close"] = np.nan
    df.loc[5, "low"] = 1e9
    t = pa.Table.from_pandas(df, preserve_index=False)
    t = pa.concat_tables([t, t.slice(10, 1)])  # duplicate of a good row
    clean, q = quarantine(t, BARS, source="s")
    assert q.count == 3 and set(q.rows) == {3, 5, 40}
    assert sum(q.reasons.values()) == 3
    assert validate(clean, BARS).num_rows == 38


def test_votes_rules() -> None:
    v = pa.table(
        {
            "symbol": ["A", "B"],
            "ts": pa.array([0, 0], pa.timestamp("ns", tz="UTC")),
            "agent": ["x", "x"],
            "model_version": ["1", "1"],
            "action": pa.array([1, 3], pa.int8()),
            "confidence": pa.array([0.5, 0.5], pa.float32()),
        }
    )
    with pytest.raises(DataError, match="action") as exc:
        validate(v, VOTES)
    assert exc.value.row == 1


def test_features_schema_and_inf() -> None:
    s = features_schema(["a", "b"])
    t = pa.table(
        {
            "symbol": ["A", "A"],
            "ts": pa.array([0, 1], pa.timestamp("ns", tz="UTC")),
            "a": pa.array([np.nan, 1.0], pa.float32()),
            "b": pa.array([1.0, np.inf], pa.float32()),
        }
    )
    with pytest.raises(DataError, match="infinite") as exc:
        validate(t, s)
    assert exc.value.column == "b" and exc.value.row == 1
    with pytest.raises(SchemaError):
        features_schema(["a", "a"])


def test_non_table_rejected() -> None:
    with pytest.raises(SchemaError, match="pyarrow Table"):
        validate(pd.DataFrame(), BARS)  # type: ignore[arg-type]


def test_signals_say_whether_they_are_a_decision_and_a_no_decision_never_moves() -> None:
    from tinywindow.contracts import AGENT_OUTCOMES, SIGNALS

    assert SIGNALS.field("decided").type == pa.bool_() and not SIGNALS.field("decided").nullable
    assert "model_version" in AGENT_OUTCOMES.names and "reward" in AGENT_OUTCOMES.names

    def signals(action: list[int], decided: list[bool]) -> pa.Table:
        n = len(action)
        return pa.table({
            "symbol": ["A"] * n, "ts": pa.array(range(1, n + 1), pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "action": pa.array(action, pa.int8()), "decided": pa.array(decided, pa.bool_()),
            "confidence": pa.array([0.6] * n, pa.float32()), "agreement": pa.array([1.0] * n, pa.float32()),
            "votes": pa.array([2] * n, pa.int16()), "reason": ["r"] * n,
        })

    assert validate(signals([1, 0, 0, -1], [True, True, False, True]), SIGNALS).num_rows == 4
    with pytest.raises(DataError, match="no decision with a non-zero action") as exc:
        validate(signals([0, 1], [True, False]), SIGNALS)
    assert exc.value.row == 1 and exc.value.column == "action"
    with pytest.raises(SchemaError, match="decided"):
        validate(signals([1], [True]).drop_columns(["decided"]), SIGNALS)
