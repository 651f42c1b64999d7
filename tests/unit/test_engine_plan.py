"""The universe a run trades: the ``run`` section, the plan made from the data, the watermark
merge of several sources' bar streams, and the run summary's ledger digest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tinywindow.config import load
from tinywindow.contracts import BARS, validate
from tinywindow.data.features import with_filled
from tinywindow.engine.config import bar_seconds, periods_per_year
from tinywindow.engine.merge import WatermarkMerge
from tinywindow.engine.plan import make_plan
from tinywindow.engine.summary import ledger_digest, write
from tinywindow.errors import ConfigError, DataError

pytestmark = pytest.mark.unit


def _bars(symbols: list[str], start: str, n: int, freq: str = "B", flat: bool = False) -> pa.Table:
    frames = []
    for i, s in enumerate(symbols):
        ts = pd.date_range(start, periods=n, freq=freq, tz="UTC") + pd.Timedelta(hours=21 if freq == "B" else 0)
        close = 100 + i + np.cumsum(np.full(n, 0.1))
        frames.append(pd.DataFrame({"symbol": s, "ts": ts, "open": close, "high": close if flat else close + 1,
                                    "low": close if flat else close - 1, "close": close,
                                    "volume": 0.0 if flat else 1e6}))
    df = pd.concat(frames, ignore_index=True)
    return validate(pa.Table.from_pandas(df, preserve_index=False), BARS, source="test")


def _cfg(*overrides: str):  # type: ignore[no-untyped-def]
    return load(overrides=["data.sources=[{name: a, kind: synthetic}, {name: b, kind: synthetic}]", *overrides])


def test_bar_frequencies() -> None:
    assert bar_seconds("1d") == 86400 and bar_seconds("4h") == 14400 and bar_seconds("15min") == 900
    assert periods_per_year("1d") == 252 and periods_per_year("1h") == 252 * 24
    with pytest.raises(ConfigError, match="run.bar"):
        load(overrides=["run.bar=1week"])


def test_the_run_section_refuses_what_cannot_run() -> None:
    with pytest.raises(ConfigError, match="train.end 2016-01-01 is after trade.start"):
        load(overrides=["run.train.end=2016-01-01"])
    with pytest.raises(ConfigError, match=r"run.trade_sources.0 names source 'nope'"):
        load(overrides=["run.trade_sources=[nope]"])
    with pytest.raises(ConfigError, match="listed twice"):
        load(overrides=["run.agents=[lstm, lstm]"])
    with pytest.raises(ConfigError, match="run.agents"):
        load(overrides=["run.agents=[gpt]"])
    with pytest.raises(ConfigError, match="not a date"):
        load(overrides=["run.trade.start=yesterday"])
    with pytest.raises(ConfigError, match="before end"):
        load(overrides=["run.trade.start=2019-01-01", "run.trade.end=2018-01-01", "run.train.end=2010-01-01"])


def test_the_plan_says_what_a_run_will_do() -> None:
    cfg = _cfg("run.train_sources=[a]", "run.trade_sources=[a, b]", "run.train.end=2012-01-01",
               "run.trade.start=2012-01-01", "run.trade.end=2013-01-01", "agents.retrain_every_bars=100")
    data = {"a": _bars(["X", "Y"], "2008-01-01", 1300), "b": _bars(["Z"], "2011-06-01", 500, flat=True)}
    plan = make_plan(cfg.run, cfg.agents, data)
    assert plan.symbols == ["X", "Y", "Z"] and plan.train_symbols == ["X", "Y"]
    assert plan.trade_first == "2012-01-02 21:00:00" and plan.trade_bars == 261  # business days of 2012
    assert plan.retrains == 2  # after bars 100 and 200 (each decided 5 bars later, inside the window)
    b = next(s for s in plan.sources if s.name == "b")
    assert b.role == ["trade"] and b.spacing_s == 86400
    # close-only data: the features that need high, low or volume are said to be unavailable
    assert {"atr_14", "volume_z_20"} <= set(b.unavailable), b.unavailable
    assert "Z (close-only)" in b.unavailable["atr_14"]
    text = "\n".join(plan.lines())
    assert "source b [trade]" in text and "feature atr_14 unavailable" in text


def test_the_plan_refuses_a_universe_that_cannot_run() -> None:
    data = {"a": _bars(["X"], "2008-01-01", 1300), "b": _bars(["Z"], "2008-01-01", 1300)}
    with pytest.raises(ConfigError, match=r"run.symbols.1 'Q' is in none of the trade sources"):
        make_plan(_cfg("run.symbols=[X, Q]").run, _cfg().agents, data)
    with pytest.raises(ConfigError, match="no bars to trade in 2015-01-01"):
        make_plan(_cfg().run, _cfg().agents, data)  # the default trade window is after the data
    cfg = _cfg("run.train.end=2005-01-01", "run.trade.start=2010-01-01", "run.trade.end=2011-01-01")
    with pytest.raises(ConfigError, match="no bars to train on before 2005-01-01"):
        make_plan(cfg.run, cfg.agents, data)
    hourly = {"a": _bars(["X"], "2010-01-01", 5000, freq="h"), "b": _bars(["Z"], "2010-01-01", 5000, freq="h")}
    cfg = _cfg("run.train.end=2010-03-01", "run.trade.start=2010-03-01", "run.trade.end=2010-06-01")
    with pytest.raises(ConfigError, match=r"bars are 1h apart \(median\), but run.bar is '1d'"):
        make_plan(cfg.run, cfg.agents, hourly)
    plan = make_plan(cfg.set("run.bar", "1h").run, cfg.agents, hourly)
    assert plan.trade_bars > 0


def test_a_filled_mark_also_counts_as_close_only() -> None:
    bars = with_filled(_bars(["X"], "2008-01-01", 1300), {"X": ("open", "high", "low", "volume")})
    cfg = _cfg("run.train.end=2010-01-01", "run.trade.start=2010-01-01", "run.trade.end=2011-01-01")
    plan = make_plan(cfg.run, cfg.agents, {"a": bars, "b": _bars(["Z"], "2008-01-01", 1300)})
    assert "atr_14" in next(s for s in plan.sources if s.name == "a").unavailable


def test_the_watermark_merge_releases_each_time_once_all_sources_have_passed_it() -> None:
    m = WatermarkMerge(["stocks", "crypto"])
    assert m.add("crypto", 1, "c1") == []  # stocks have published nothing yet
    assert m.add("crypto", 2, "c2") == []
    got = m.add("stocks", 1, "s1")
    assert [(r.ts, r.parts) for r in got] == [(1, {"crypto": "c1", "stocks": "s1"})]
    got = m.add("stocks", 3, "s3")  # no stock bar at 2 (a weekend): 2 goes with crypto alone
    assert [(r.ts, r.parts) for r in got] == [(2, {"crypto": "c2"})]
    assert m.add("crypto", 3, "c3")[0].parts == {"stocks": "s3", "crypto": "c3"}
    with pytest.raises(DataError, match="at or before its previous one"):
        m.add("crypto", 3, "again")
    with pytest.raises(DataError, match="unknown source"):
        m.add("fx", 4, "x")
    assert m.add("stocks", 5, "s5") == []
    assert [r.ts for r in m.finish("crypto")] == [5]  # a finished source holds nothing back
    assert [r.ts for r in m.finish("stocks")] == []
    with pytest.raises(DataError, match="after it finished"):
        m.add("stocks", 9, "late")


def test_the_ledger_digest_covers_orders_and_the_final_book(tmp_path: Path) -> None:
    orders = [{"id": "o1", "symbol": "X", "side": 1, "qty": "10"}]
    book = {"cash": "1.00", "equity": "2.00", "realized_pnl": "0", "fees": "0.10", "positions": {}, "closed_trades": 1,
            "state": "ACTIVE", "peak_equity": "2.00"}
    d = ledger_digest(orders, book)
    assert d == ledger_digest([dict(o) for o in orders], {**book, "state": "HALTED"})  # state is not the ledger
    assert d != ledger_digest([{**orders[0], "qty": "11"}], book)
    assert d != ledger_digest(orders, {**book, "fees": "0.11"})
    path = write(tmp_path / "summary.json", "backtest", {"ledger_digest": d})
    write(path, "paper", {"ledger_digest": d})
    assert set(json.loads(path.read_text())) == {"backtest", "paper"}


def _universe(tmp: Path, csv_rows: list[str], extra: str = "") -> Path:
    (tmp / "prices").mkdir(exist_ok=True)
    (tmp / "prices" / "ABC.csv").write_text("Date,Close\n" + "\n".join(csv_rows) + "\n")
    path = tmp / "universe.yaml"
    path.write_text(f"""
data_dir: {tmp / "state"}
data:
  sources:
    - {{name: mine, kind: file, path: {tmp / "prices"}, columns: {{Date: ts, Close: close}},
       timezone: America/New_York, daily_close: "16:00"}}
run:
  train: {{end: "2012-01-01"}}
  trade: {{start: "2012-01-01", end: "2013-01-01"}}
{extra}""")
    return path


def _closes(n: int) -> list[str]:
    days = pd.bdate_range("2009-01-02", periods=n)
    return [f"{d:%Y-%m-%d},{100 + 0.1 * i:.2f}" for i, d in enumerate(days)]


def test_config_check_prints_the_plan_of_a_users_close_only_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinywindow.cli import main

    path = _universe(tmp_path, _closes(1000))
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: valid" in out
    assert "source mine [train+trade]: 1 symbols, 1,000 bars 2009-01-02 21:00:00" in out  # 16:00 New York = 21:00 UTC
    assert "feature atr_14 unavailable: needs high, low, not in the data of ABC (close-only)" in out
    assert "trade: 219 bar times of 1 symbols (ABC)" in out
    assert "placement: by CPU alone" in out
    assert not (tmp_path / "state").exists()  # a check writes nothing
    assert main(["-s", "agents.resources={agents: 1}", "config", "check", str(path)]) == 0
    assert "placement: agents.resources {'agents': 1.0}" in capsys.readouterr().out
    assert main(["config", "check", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["symbols"] == ["ABC"] and plan["trade_bars"] == 219


def test_config_check_names_the_bad_row_and_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinywindow.cli import main

    rows = _closes(1000)
    rows[500] = rows[500].split(",")[0] + ",-3"
    path = _universe(tmp_path, rows)
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "ABC.csv" in err and "row" in err and "close" in err, err
    path = _universe(tmp_path, _closes(1000), extra="  symbols: [XYZ]\n")
    assert main(["config", "check", str(path)]) == 2
    assert "run.symbols.0 'XYZ' is in none of the trade sources" in capsys.readouterr().err
    path = _universe(tmp_path, _closes(1000), extra="  brokr: paper\n")
    assert main(["config", "check", str(path)]) == 2
    assert "unknown config key 'run.brokr'" in capsys.readouterr().err


def test_live_mode_needs_a_live_feed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinywindow.cli import main

    path = _universe(tmp_path, _closes(1000))
    assert main(["config", "check", str(path), "--mode", "live"]) == 2
    assert "live mode trades a live feed" in capsys.readouterr().err
