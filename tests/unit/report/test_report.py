"""The HTML run report renders from any RunRecords: every section, plotly inlined once (no
network), empty tables as 'none' lines, and a 10-year 50-symbol run within loose bounds."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import plotly.offline
import pytest

from tests.unit.report.synth import empty_records, synthetic_records
from tinywindow.backtest import metrics
from tinywindow.report import SECTIONS, build_report
from tinywindow.report import _series as S

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def page() -> str:
    return build_report(synthetic_records(), title="Synthetic <run> & co")


def test_every_section_has_its_id(page: str) -> None:
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert {"equity", "drawdown", "rolling-sharpe", "agents", "consensus", "symbols", "trades", "risk", "models",
            "explanations"} == set(SECTIONS)


def test_plotly_is_inline_once_and_nothing_is_fetched(page: str) -> None:
    library = plotly.offline.get_plotlyjs()
    assert page.count(library) == 1
    rest = page.replace(library, "")
    assert rest.count("Plotly.newPlot(") >= 10
    assert not re.search(r"<script[^>]*\bsrc=", rest)
    assert not re.search(r"<link\b", rest)
    assert not re.search(r"https?://", rest)  # no CDN, no web font, nothing outside the file


def test_text_is_escaped(page: str) -> None:
    assert "<title>Synthetic &lt;run&gt; &amp; co</title>" in page
    assert "synthetic &lt;limit&gt; &amp; check" in page  # a risk event's detail


def test_sections_show_their_content(page: str) -> None:
    assert 'id="trades-table"' in page and 'id="risk-table"' in page and 'id="models-table"' in page
    assert "1 rejected" in page and "promoted" in page
    for why in ("no quorum", "tie", "low confidence", "disagreement"):
        assert why in page
    assert 'id="explanations-table"' in page and "ret_5" in page


def test_empty_records_render_with_none_lines() -> None:
    page = build_report(empty_records())
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert page.count('class="none"') >= len(SECTIONS)
    assert "No explanations were recorded" in page
    assert "Plotly.newPlot(" not in page


def test_no_explanations_says_so() -> None:
    records = synthetic_records(bars=80, symbols=3, fills=40)
    records.explanations = records.explanations.iloc[0:0]
    page = build_report(records)
    assert "No explanations were recorded" in page
    assert "Plotly.newPlot(" in page


def test_trades_table_is_capped() -> None:
    page = build_report(synthetic_records(bars=300, symbols=5, fills=2500))
    table = page[page.index('id="trades-table"'):]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 2000 + 1  # header + capped rows
    assert "Showing the last 2,000 of" in page


def test_periods_per_year_inferred_from_timestamps() -> None:
    assert S.periods_per_year(pd.date_range("2020-01-01", periods=731, freq="D", tz="UTC")) == 365
    assert S.periods_per_year(pd.bdate_range("2020-01-01", periods=2610, tz="UTC")) == 261
    hourly = pd.date_range("2020-01-01", periods=24 * 30, freq="h", tz="UTC")
    assert S.periods_per_year(hourly) == pytest.approx(8766, abs=15)
    assert S.periods_per_year(pd.DatetimeIndex([], tz="UTC")) == metrics.PERIODS_PER_YEAR


def test_rolling_sharpe_is_the_library_sharpe_of_each_window() -> None:
    rng = np.random.default_rng(1)
    ts = pd.bdate_range("2020-01-01", periods=200, tz="UTC")
    eq = pd.Series(1e6 * np.cumprod(1 + rng.normal(0, 0.01, 200)), index=ts)
    rs = S.rolling_sharpe(eq, window=63)
    r = metrics.returns_from_equity(eq.to_numpy())
    periods = S.periods_per_year(ts)
    assert rs.index[0] == ts[63] and rs.index[-1] == ts[-1]
    assert rs.iloc[-1] == pytest.approx(metrics.sharpe(r[-63:], periods=periods))


def test_thin_keeps_ends_and_troughs() -> None:
    values = np.zeros(10_000)
    values[1234] = -5.0
    idx = S.thin(10_000, 100, values=values)
    assert len(idx) <= 100 and 1234 in idx
    even = S.thin(10_000, 100)
    assert even[0] == 0 and even[-1] == 9_999 and len(even) == 100
    assert list(S.thin(5, 100)) == [0, 1, 2, 3, 4]


def test_hit_rate_and_calibration() -> None:
    ts = pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-02", "2020-01-02", "2020-01-03"], utc=True)
    outcomes = pd.DataFrame({"ts": ts, "agent": ["a"] * 5, "action": [1, -1, 1, 0, -1],
                             "realized_return": [0.01, 0.02, -0.01, 0.05, -0.03], "confidence": [0.9, 0.1, 0.95, 0.5, 0.15]})
    hits = S.hit_rate_over_time(outcomes, window=2)["a"]
    assert list(hits) == pytest.approx([0.5, 1 / 3, 0.5])  # the flat vote is not counted
    cal = S.calibration(outcomes)
    assert cal["count"].sum() == 4
    assert sorted(cal["hit_rate"]) == pytest.approx([0.5, 0.5])


def test_no_decision_reasons_and_symbol_pnl() -> None:
    signals = pd.DataFrame({"reason": ["NO DECISION (tie; majority 1/3)", "LONG (decided; majority 3/3)",
                                       "NO DECISION (low confidence)", "NO DECISION (tie; majority 1/3)"]})
    assert S.no_decision_reasons(signals).to_dict() == {"tie": 2, "low confidence": 1}
    ts = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"], utc=True)
    fills = pd.DataFrame({"symbol": ["A", "A", "B"], "ts": ts, "side": [1, -1, 1], "qty": [10, 4, 5],
                          "price": [100.0, 110.0, 20.0], "fee": [1.0, 1.0, 0.5]})
    positions = pd.DataFrame({"symbol": ["A"], "last_price": [120.0]})
    pnl = S.symbol_pnl(fills, positions)
    assert pnl["A"] == pytest.approx(-1000 + 440 - 2 + 6 * 120)
    assert pnl["B"] == pytest.approx(-100 - 0.5 + 5 * 20)  # no mark: the last fill price


def test_ten_years_fifty_symbols_is_small_and_quick() -> None:
    records = synthetic_records(bars=2520, symbols=50, fills=20_000)
    start = time.perf_counter()
    page = build_report(records)
    seconds = time.perf_counter() - start
    megabytes = len(page.encode()) / 1e6
    print(f"report 10y x 50 symbols, {len(records.fills):,} fills: {seconds:.2f} s, {megabytes:.2f} MB")
    assert seconds < 30 and megabytes < 30  # loose: the goal (5 s, 10 MB) is measured in bench/records.py
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
