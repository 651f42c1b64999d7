from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from tests.unit.records._run import build_run, keystore
from tests.unit.records.conftest import PORT
from tinywindow.crypto.journal import Journal
from tinywindow.durability.recovery import journal_file
from tinywindow.errors import ConfigError
from tinywindow.records import StoreWriter, TradeStore, load_run
from tinywindow.records._models import FillRow, OrderRow
from tinywindow.records._reader import read_records
from tinywindow.records.sql import PORTFOLIO_TABLES

pytestmark = pytest.mark.unit


def _load(run: dict[str, Any]) -> Any:
    return load_run(run["data_dir"], "t", "backtest", run["keys"], portfolio=PORT)


def test_load_run_matches_the_engine(small_run: dict[str, Any]) -> None:
    rec = _load(small_run)
    engine = small_run["engine"]
    assert len(rec.fills) > 5 and len(rec.orders) >= len(rec.fills) and len(rec.equity) == 40
    assert Decimal(rec.equity["equity_exact"].iloc[-1]) == engine.portfolio.equity()
    assert str(rec.fills["ts"].dtype) == "datetime64[ns, UTC]" and rec.fills["qty"].dtype == "float64"
    book = {s: p.qty for s, p in engine.portfolio.positions.items()}
    assert {s: Decimal(q) for s, q in zip(rec.positions["symbol"], rec.positions["qty_exact"], strict=True) if Decimal(q)} == book
    assert len(rec.signals) == 80 and len(rec.votes) == 240 and len(rec.benchmark) == 40
    assert not rec.risk_events.empty and rec.explanations.empty and rec.models.empty


def test_project_queries_equal_the_journal_and_rebuild_is_idempotent(small_run: dict[str, Any], tmp_path: Path) -> None:
    rec = _load(small_run)
    store = TradeStore(f"sqlite:///{tmp_path / 'trades.db'}")
    store.project(rec)
    store.project(rec)  # idempotent
    trades = store.trades()
    assert list(trades["order_id"]) == list(rec.fills["order_id"])
    assert [str(q) for q in trades["qty"]] == list(rec.fills["qty_exact"])  # exact decimals
    assert [Decimal(p) for p in trades["price"]] == [Decimal(p) for p in rec.fills["price_exact"]]
    assert [Decimal(f) for f in trades["fee"]] == [Decimal(f) for f in rec.fills["fee_exact"]]
    orders = store.orders("t")
    assert list(orders["order_id"]) == list(rec.orders["order_id"])
    assert store.verify(rec) == []
    assert store.rebuild(small_run["data_dir"], small_run["keys"], portfolio=PORT) == ["t-backtest"]
    assert store.rebuild(small_run["data_dir"], small_run["keys"], portfolio=PORT) == ["t-backtest"]
    assert store.verify(rec) == [] and len(store.trades("t-backtest")) == len(rec.fills)
    runs = store.runs()
    assert list(runs["run_id"]) == ["t-backtest"] and runs["final_equity"].iloc[0] == Decimal(rec.equity["equity_exact"].iloc[-1])
    with pytest.raises(ConfigError, match="unknown run"):
        store.trades("nope")


def test_verify_names_a_tampered_order(small_run: dict[str, Any], tmp_path: Path) -> None:
    rec = _load(small_run)
    store = TradeStore(f"sqlite:///{tmp_path / 'trades.db'}")
    store.project(rec)
    victim = rec.orders["order_id"].iloc[3]
    with store.engine.begin() as conn:
        conn.execute(update(OrderRow).where(OrderRow.order_id == victim).values(qty=Decimal("12345")))
        conn.execute(update(FillRow).where(FillRow.seq == int(rec.fills["seq"].iloc[0])).values(fee=Decimal("0.1")))
    diffs = store.verify(rec)
    assert any(victim in d and "qty" in d for d in diffs)
    assert any(d.startswith("fills:") and "fee" in d for d in diffs)


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sql_url"):
        TradeStore("notadb://x")


def test_failed_writes_never_lose_a_fill(tmp_path: Path) -> None:
    """The database fails during some commits; the writer catches up from the journal and the
    store equals a full projection."""
    keys = keystore(tmp_path)
    store = TradeStore(f"sqlite:///{tmp_path / 'trades.db'}")
    calls = {"n": 0}
    real = store.apply_rows

    def flaky(*a: Any, **k: Any) -> None:
        calls["n"] += 1
        if 20 <= calls["n"] < 35 or calls["n"] == 50:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        real(*a, **k)

    store.apply_rows = flaky  # type: ignore[method-assign]
    holder: dict[str, Any] = {}

    def hook(durable: Any, events: list[Any]) -> None:
        if "w" not in holder:
            holder["w"] = StoreWriter(store, "t", "backtest", lambda after: durable.journal.records(after=after),
                                      portfolio=PORT)
        holder["w"].on_events(events, durable.journal.head()[0])

    got = build_run(tmp_path, keys, after_commit=hook)
    writer = holder["w"]
    assert writer.failures >= 2  # failed, logged, counted: trading went on
    writer.catch_up()
    got["durable"].close()
    got["consensus"].close()
    rec = load_run(tmp_path, "t", "backtest", keys, portfolio=PORT)
    assert store.verify(rec, PORTFOLIO_TABLES) == []  # the live path keeps the portfolio's tables
    assert len(store.trades()) == len(rec.fills) > 5
    # a full projection into a second store equals the live one, table by table
    full = TradeStore(f"sqlite:///{tmp_path / 'full.db'}")
    full.project(rec)
    for table in (OrderRow, FillRow):
        assert store.table(table, "t-backtest").equals(full.table(table, "t-backtest"))


def test_reader_agrees_with_the_journal(small_run: dict[str, Any]) -> None:
    from tinywindow.crypto.config import CryptoConfig

    path = journal_file(CryptoConfig(), small_run["data_dir"], "t-backtest-portfolio")
    with Journal(path, small_run["keys"]) as j:
        assert read_records(path, small_run["keys"]) == j.records()


def test_cli_formats_and_errors(small_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from tests.unit.records._run import PASS
    from tinywindow.cli import main

    data = tmp_path / "data"
    shutil.copytree(small_run["data_dir"], data)
    monkeypatch.setenv("TW_PASSPHRASE", PASS)
    base = ["-s", f"data_dir={data}", "-s", "portfolio.commission_bps=1.5", "-s", "portfolio.slippage_bps=2.5"]
    assert main([*base, "trades"]) == 2
    assert "db rebuild" in capsys.readouterr().err
    assert main([*base, "db", "rebuild"]) == 0
    assert "1 runs projected" in capsys.readouterr().out
    assert main([*base, "trades", "--run", "t", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    rec = _load(small_run)
    assert [r["qty"] for r in rows] == list(rec.fills["qty_exact"]) and [r["fee"] for r in rows] == list(rec.fills["fee_exact"])
    assert main([*base, "positions", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("run_id,symbol,qty") and len(out) == 1 + len(rec.positions)
    assert main([*base, "runs"]) == 0
    assert "t-backtest" in capsys.readouterr().out
    assert main([*base, "trades", "--run", "zzz"]) == 2
    assert "unknown run" in capsys.readouterr().err
    journal = data / "journal" / "t-backtest-portfolio.journal"
    assert main([*base, "verify", str(journal)]) == 0
    assert "consistent with the journal" in capsys.readouterr().out
    store = TradeStore(f"sqlite:///{data / 'trades.db'}")
    with store.engine.begin() as conn:
        conn.execute(update(OrderRow).where(OrderRow.order_id == rec.orders["order_id"].iloc[0]).values(qty=Decimal("7")))
    assert main([*base, "verify", str(journal)]) == 1
    assert rec.orders["order_id"].iloc[0] in capsys.readouterr().out
