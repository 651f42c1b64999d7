from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinywindow.core.money import to_decimal
from tinywindow.errors import DataError
from tinywindow.execution.accounting import Portfolio, Position, order_id, position_after_fill
from tinywindow.execution.brokers import PaperBroker
from tinywindow.execution.costs import Commission, Slippage
from tinywindow.execution.orders import BarPrices, Fill, Order

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

    from actors.portfolio import PortfolioActor
    from tinywindow.config import Config

D = Decimal


def fill(symbol: str, side: int, qty: str, price: str, fee: str = "0", oid: str = "x", ts: int = 1) -> Fill:
    return Fill(oid, symbol, ts, side, D(qty), D(price), D(fee))


def test_open_add_reduce_close_flip() -> None:
    p = Portfolio(D("10000"))
    p.apply_fill(fill("A", 1, "10", "100", "1"))
    p.apply_fill(fill("A", 1, "10", "110", "1"))
    pos = p.positions["A"]
    assert pos.qty == 20 and pos.avg_price == D("105") and p.cash == D("10000") - 2100 - 2
    p.mark({"A": D("120")})
    assert p.unrealized_pnl() == 20 * 15
    assert p.equity() == p.cash + 20 * 120

    trade = p.apply_fill(fill("A", -1, "5", "120", "0.5"))
    assert p.realized_pnl == 5 * 15
    # closed trade: gross 75, exit fee 0.5, a quarter of the entry fees (2 * 5/20)
    assert trade == D("75") - D("0.5") - D("0.5")
    assert p.positions["A"].qty == 15 and p.positions["A"].avg_price == D("105")

    trade = p.apply_fill(fill("A", -1, "25", "100", "2.5"))  # close 15, open short 10
    assert trade == 15 * (100 - 105) - D("1.5") - D("1.5")
    assert p.positions["A"] == Position(D("-10"), D("-1000"), D("1.0"))
    assert p.fees == D("5.0")
    assert len(p.trade_pnls) == 2

    p.apply_fill(fill("A", 1, "10", "90", "0"))
    assert "A" not in p.positions and p.realized_pnl == 75 + 15 * -5 + 10 * 10
    assert p.cash == p.equity()


def test_generic_rule_agrees_on_float_and_decimal() -> None:
    steps = [(3.0, 10.0, 0.1), (2.0, 12.5, 0.1), (-4.0, 11.0, 0.2), (-3.0, 9.0, 0.3), (2.0, 8.0, 0.0)]
    qd = cd = ed = D(0)
    qf = cf = ef = 0.0
    for q, price, fee in steps:
        qd, cd, ed, rd, td = position_after_fill(qd, cd, ed, to_decimal(q), to_decimal(price), to_decimal(fee))
        qf, cf, ef, rf, tf = position_after_fill(qf, cf, ef, q, price, fee)
        assert float(qd) == pytest.approx(qf) and float(cd) == pytest.approx(cf) and float(rd) == pytest.approx(rf)
        assert (td is None) == (tf is None)
        if td is not None and tf is not None:
            assert float(td) == pytest.approx(tf)


def test_snapshot_round_trip_is_exact() -> None:
    p = Portfolio(D("1000.10"))
    p.apply_fill(fill("A", 1, "3", "10.123456789", "0.0001"))
    p.apply_fill(fill("B", -1, "2", "7.5", "0.02"))
    p.apply_fill(fill("A", -1, "1", "11", "0.01"))
    p.mark({"A": D("12"), "B": D("7")})
    q = Portfolio.from_snapshot(p.snapshot())
    assert q == p and q.equity() == p.equity()


def test_to_decimal_refuses_nan_and_keeps_the_short_spelling() -> None:
    assert to_decimal(0.1) == D("0.1")
    with pytest.raises(DataError):
        to_decimal(float("nan"))
    with pytest.raises(DataError):
        to_decimal(float("inf"))


def test_cost_rules_agree_on_decimal_and_arrays() -> None:
    c = Commission(rate=0.0015, per_share=0.005, minimum=1.0)
    s = Slippage(bps=7.0)
    qty = np.array([0.0, 1.0, 50.0, 1000.0, 3.0])
    price = np.array([10.0, 10.0, 99.5, 250.25, 1.0])
    fees = c.fee_array(qty, price)
    for i in range(len(qty)):
        assert float(c.fee(to_decimal(qty[i]), to_decimal(price[i]))) == pytest.approx(fees[i], rel=1e-15)
    assert fees[0] == 0 and fees[1] == 1.0  # minimum applies to a real fill only
    for side in (-1, 1):
        arr = s.price_array(np.array([side]), np.array([123.45]))[0]
        assert float(s.price(side, D("123.45"))) == pytest.approx(arr, rel=1e-15)
    assert s.price(1, D("100")) == D("100.07") and s.price(-1, D("100")) == D("99.93")


def order(oid: str, side: int, qty: str, ts: int = 10, limit: str | None = None, symbol: str = "A") -> Order:
    return Order(oid, symbol, ts, side, D(qty), D("100"), None if limit is None else D(limit), "test")


def test_paper_broker_fills_at_next_open_with_slippage_and_fees() -> None:
    b = PaperBroker(Commission.from_bps(10), Slippage(bps=20))
    b.submit(order("o1", 1, "10"))
    b.submit(order("o1", 1, "10"))  # same id: ignored
    assert b.on_market({"A": BarPrices(10, D("101"), D("102"))}) == []  # same bar: no fill
    (f,) = b.on_market({"A": BarPrices(11, D("100"), D("99"))})
    assert isinstance(f, Fill)
    assert f.price == D("100.2") and f.qty == 10 and f.fee == D("1.002") and f.ts == 11
    assert b.open_orders() == []
    b.submit(order("o1", 1, "10"))  # a replay of a filled order never trades again
    assert b.open_orders() == []


def test_paper_broker_collar_expires_gaps_and_cancel_all() -> None:
    b = PaperBroker()
    b.submit(order("buy", 1, "1", limit="105"))
    b.submit(order("sell", -1, "1", limit="95"))
    b.submit(order("other", 1, "1", limit="105", symbol="B"))
    events = b.on_market({"A": BarPrices(11, D("106"), D("106"))})
    by_id = {e.order_id: e for e in events}
    assert not isinstance(by_id["buy"], Fill) and by_id["buy"].reason == "PRICE_COLLAR"
    assert isinstance(by_id["sell"], Fill) and by_id["sell"].price == D("106")
    (gone,) = b.cancel_all(12, "HALTED")
    assert gone.order_id == "other" and b.open_orders() == []


def test_order_ids_are_pure_functions_of_the_decision() -> None:
    a = order_id("acct", "AAPL", 1_700_000_000_000_000_000, "signal:1")
    assert a == order_id("acct", "AAPL", 1_700_000_000_000_000_000, "signal:1")
    assert a != order_id("acct", "AAPL", 1_700_000_000_000_000_000, "signal:-1")
    assert a != order_id("acct", "AAPL", 1_700_000_000_000_000_001, "signal:1")
    assert a != order_id("other", "AAPL", 1_700_000_000_000_000_000, "signal:1")
    assert len(a) == 32 and int(a, 16) >= 0


fills = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        st.sampled_from([-1, 1]),
        st.integers(1, 500),
        st.decimals("0.01", "1000", places=4, allow_nan=False, allow_infinity=False),
        st.decimals("0", "5", places=4, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(fills)
def test_cash_plus_positions_is_conserved_across_fills_less_fees(seq: list[tuple[str, int, int, Decimal, Decimal]]) -> None:
    p = Portfolio(D("100000"))
    marks = {"A": D("50"), "B": D("20"), "C": D("300")}
    p.mark(marks)
    for i, (sym, side, qty, price, fee) in enumerate(seq):
        at = dict(p.prices)
        at[sym] = price
        before = p.equity(at)
        p.apply_fill(Fill(f"o{i}", sym, i, side, D(qty), price, fee))
        after = p.equity(at)
        assert after == before - fee  # exactly: money is Decimal
    # P&L identities; average cost divides, so they hold to Decimal's 28 digits
    tiny = D("1e-18")
    realized_plus_unrealized = p.realized_pnl + p.unrealized_pnl()
    assert abs(p.equity() - D("100000") - (realized_plus_unrealized - p.fees)) < tiny
    open_fees = sum((pos.entry_fees for pos in p.positions.values()), D(0))
    assert abs(sum(p.trade_pnls, D(0)) - (p.realized_pnl - (p.fees - open_fees))) < tiny


# --------------------------------------------------------------------------- the actor, in-process

PASS = "portfolio tests passphrase"


def actor_cfg(tmp: Path, **risk: object) -> Config:
    from tinywindow.config import Config, CryptoConfig, PortfolioConfig, RiskConfig

    base = dict(max_position=0.5, max_gross=2.0, max_net=2.0, collar=0.2, confidence_floor=0.5,
                max_weight=0.5, target_vol=0.5, vol_model="ewma", min_vol_obs=2)
    base.update(risk)
    return Config(
        data_dir=str(tmp),
        crypto=CryptoConfig(journal_fsync=False),
        risk=RiskConfig(**base),  # type: ignore[arg-type]
        portfolio=PortfolioConfig(initial_cash_usd=1_000_000, commission_bps=5, slippage_bps=5, checkpoint_every=25),
    )


def bars_table(ts_day: int, prices: dict[str, tuple[float, float]]) -> pa.Table:
    import pandas as pd
    import pyarrow as pa

    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=ts_day)
    syms = sorted(prices)
    return pa.table({
        "symbol": syms, "ts": pa.array([ts] * len(syms), pa.timestamp("ns", tz="UTC")),
        "open": [prices[s][0] for s in syms], "high": [max(prices[s]) * 1.01 for s in syms],
        "low": [min(prices[s]) * 0.99 for s in syms], "close": [prices[s][1] for s in syms],
        "volume": [1e6] * len(syms),
    })


def signals_table(ts_day: int, actions: dict[str, int | None], conf: float = 0.9) -> pa.Table:
    """SIGNALS at day ``ts_day``; an action of None is a no-decision."""
    import pandas as pd
    import pyarrow as pa

    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=ts_day)
    syms = sorted(actions)
    return pa.table({
        "symbol": syms, "ts": pa.array([ts] * len(syms), pa.timestamp("ns", tz="UTC")),
        "action": pa.array([actions[s] or 0 for s in syms], pa.int8()),
        "decided": pa.array([actions[s] is not None for s in syms], pa.bool_()),
        "confidence": pa.array([conf] * len(syms), pa.float32()),
        "agreement": pa.array([1.0] * len(syms), pa.float32()),
        "votes": pa.array([3] * len(syms), pa.int16()), "reason": ["test"] * len(syms),
    })


def market(day: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(day)
    a = 100 * float(np.exp(0.01 * day + rng.normal(0, 0.01)))
    b = 50 * float(np.exp(-0.005 * day + rng.normal(0, 0.02)))
    return {"AAA": (a * 0.999, a), "BBB": (b * 1.001, b)}


def drive(actor: PortfolioActor, days: range) -> list[pa.Table]:
    orders = []
    for d in days:
        orders.append(actor.apply_signals(signals_table(d, {"AAA": 1 if d % 7 < 4 else -1, "BBB": -1}), bars_table(d, market(d))))
    return orders


def test_portfolio_actor_restarts_through_checkpoint_and_journal(tmp_path: Path) -> None:
    from actors.portfolio import PortfolioActor
    from tinywindow.crypto.keystore import KeyStore

    KeyStore.init(tmp_path / "keys", PASS, scrypt_log2_n=10)
    cfg = actor_cfg(tmp_path)
    ref_cfg = actor_cfg(tmp_path / "ref")
    KeyStore.init(tmp_path / "ref" / "keys", PASS, scrypt_log2_n=10)

    ref = PortfolioActor(ref_cfg, passphrase=PASS)  # never crashes
    drive(ref, range(0, 40))

    a = PortfolioActor(cfg, passphrase=PASS)
    first = drive(a, range(0, 20))
    assert sum(t.num_rows for t in first) > 5
    before = a.snapshot()
    a.close()  # "crash": the object is gone, only journal + checkpoint remain

    b = PortfolioActor(cfg, passphrase=PASS)
    rec = b.recovery()
    assert rec["checkpoint_seq"] >= 0 and rec["replayed"] > 0  # both halves of the start-up path
    assert b.snapshot() == before
    again = drive(b, range(15, 20))  # the same signals re-delivered: nothing trades twice
    assert all(t.num_rows == 0 for t in again)
    assert b.snapshot() == before
    drive(b, range(20, 40))
    assert b.snapshot() == ref.snapshot()
    assert b.verify_journal()["ok"]
    out, nxt = b.outcomes_since(0)
    assert out.num_rows == nxt and nxt >= 39 * 2 - 2
    assert set(out.column_names) == {"symbol", "ts", "action", "realized_return"}
    later, _ = b.outcomes_since(nxt - 2)
    assert later.num_rows == 2
    b.close()
    ref.close()


def test_portfolio_actor_refuses_a_tampered_or_rolled_back_journal(tmp_path: Path) -> None:
    import shutil

    from actors.portfolio import PortfolioActor
    from tinywindow.crypto.keystore import KeyStore
    from tinywindow.durability.recovery import journal_file
    from tinywindow.errors import IntegrityError

    KeyStore.init(tmp_path / "keys", PASS, scrypt_log2_n=10)
    cfg = actor_cfg(tmp_path)
    a = PortfolioActor(cfg, passphrase=PASS)
    drive(a, range(0, 3))
    path = journal_file(cfg.crypto, cfg.data_dir, "portfolio")
    old = tmp_path / "old.journal"
    shutil.copy(path, old)
    shutil.copy(str(path) + ".head", str(old) + ".head")
    drive(a, range(3, 12))
    a.checkpoint()
    a.close()

    shutil.copy(old, path)  # roll the journal back behind the checkpoint
    shutil.copy(str(old) + ".head", str(path) + ".head")
    with pytest.raises(IntegrityError, match="rolled back"):
        PortfolioActor(cfg, passphrase=PASS)

    data = bytearray(old.read_bytes())
    data[len(data) // 2] ^= 0x01  # flip one bit inside a committed record
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        PortfolioActor(cfg, passphrase=PASS)


def test_portfolio_actor_halt_cancels_and_denies(tmp_path: Path) -> None:
    from actors.portfolio import PortfolioActor
    from tinywindow.crypto.keystore import KeyStore

    KeyStore.init(tmp_path / "keys", PASS, scrypt_log2_n=10)
    a = PortfolioActor(actor_cfg(tmp_path), passphrase=PASS, clock=lambda: 5)
    drive(a, range(0, 5))
    assert a.snapshot()["open_orders"]
    assert a.halt("test") == "HALTED"
    assert a.snapshot()["open_orders"] == []
    assert all(t.num_rows == 0 for t in drive(a, range(5, 9)))
    reasons = {e["reason"] for e in a.risk_events()}
    assert {"HALTED", "STATE_CHANGE"} <= reasons
    assert a.resume() == "ACTIVE"
    assert sum(t.num_rows for t in drive(a, range(9, 12))) > 0
    a.close()


def test_orders_and_fills_cross_the_boundary_as_exact_decimals(tmp_path: Path) -> None:
    from actors.portfolio import PortfolioActor
    from tinywindow.contracts import EXACT, FILLS, ORDERS
    from tinywindow.crypto.keystore import KeyStore

    KeyStore.init(tmp_path / "keys", PASS, scrypt_log2_n=10)
    a = PortfolioActor(actor_cfg(tmp_path), passphrase=PASS)
    for d in range(4):  # warm up the volatility estimate
        a.apply_signals(signals_table(d, {"AAA": 0}), bars_table(d, {"AAA": (100.0 + d, 100.1 + d)}))
    orders = a.apply_signals(signals_table(4, {"AAA": 1}), bars_table(4, {"AAA": (104.0, 104.1)}))
    fills = a.on_bars(bars_table(5, {"AAA": (104.3, 104.2)}))
    assert orders.schema.equals(ORDERS, check_metadata=False) and fills.schema.equals(FILLS, check_metadata=False)
    assert orders.schema.field("price").type == EXACT
    (o,), (f,) = orders.to_pylist(), fills.to_pylist()
    assert o["order_id"] == f["order_id"] and o["price"] == D("104.1") and o["qty"] == f["qty"] > 0
    assert f["price"] == D("104.3") * (1 + D("5") / 10_000)  # 5 bps slippage, exactly
    assert f["fee"] == (f["qty"] * f["price"] * D("0.0005")).quantize(D("1e-18"))
    snap = a.snapshot()
    assert D(snap["cash"]) == D(1_000_000) - f["qty"] * f["price"] - f["fee"]
    a.close()


def test_portfolio_config_has_no_dead_mode() -> None:
    """``portfolio.mode`` did nothing (it accepted "live" and traded on paper): it is gone,
    and an old config that sets it is refused rather than silently ignored."""
    from tinywindow.config import PortfolioConfig
    from tinywindow.errors import ConfigError

    with pytest.raises((ConfigError, ValueError)):
        PortfolioConfig(mode="live")  # type: ignore[call-arg]


# --------------------------------------------------------------------------- one meaning per action


DAY = 86_400 * 10**9


def _engine(no_decision: str = "flat", **risk: object) -> tuple[object, list[int]]:
    """A TradingEngine warmed up on 6 bars of one symbol (EWMA volatility known)."""
    from tinywindow.execution.config import PortfolioConfig
    from tinywindow.execution.engine import BarRow, TradingEngine
    from tinywindow.risk.config import RiskConfig

    cfg = RiskConfig(vol_model="ewma", min_vol_obs=2, **risk)  # type: ignore[arg-type]
    eng = TradingEngine(cfg, PortfolioConfig(no_decision=no_decision))  # type: ignore[arg-type]
    days = list(range(1, 7))
    for d in days:
        px = 100.0 + (d % 3)
        eng.on_bars([BarRow("A", d * DAY, px * 0.999, px)])
    return eng, days


def _step(eng: object, day: int, action: int, decided: bool = True) -> list[object]:
    from tinywindow.execution.engine import BarRow, SignalRow, TradingEngine

    assert isinstance(eng, TradingEngine)
    eng.on_bars([BarRow("A", day * DAY, 101.0, 101.0)])  # fills what the day before sent
    return eng.apply_signals([SignalRow("A", day * DAY, action, 0.9, "test", decided)])


def _qty(eng: object) -> Decimal:
    from tinywindow.execution.engine import TradingEngine

    assert isinstance(eng, TradingEngine)
    return eng.portfolio.qty("A")


def test_a_decided_flat_closes_the_position_and_a_short_goes_short() -> None:
    """Action is a target exposure: +1 long, 0 flat (close), -1 short, sized alike."""
    from tinywindow.execution.events import OrderSubmitted

    eng, _ = _engine()
    _step(eng, 7, 1)
    _step(eng, 8, 1)  # the long fills at day 8's open; +1 again: no new order
    long_qty = _qty(eng)
    assert long_qty > 0
    flat = [e for e in _step(eng, 9, 0) if isinstance(e, OrderSubmitted)]
    assert len(flat) == 1 and flat[0].order.signed_qty == -long_qty and flat[0].order.reason.startswith("signal +0")
    _step(eng, 10, -1)
    assert _qty(eng) == 0  # closed at day 10's open
    _step(eng, 11, -1)
    assert float(-_qty(eng)) == pytest.approx(float(long_qty), rel=0.1)  # short, volatility-targeted like the long


@pytest.mark.parametrize("mode", ["flat", "keep"])
def test_what_a_no_decision_does_is_configuration(mode: str) -> None:
    from tinywindow.execution.events import OrderSubmitted

    eng, _ = _engine(no_decision=mode)
    _step(eng, 7, 1)
    _step(eng, 8, 1)
    held = _qty(eng)
    orders = [e for e in _step(eng, 9, 0, decided=False) if isinstance(e, OrderSubmitted)]
    _step(eng, 10, 0, decided=False)
    if mode == "flat":  # the default: a position is held only while the consensus affirms it
        assert orders[0].order.reason.startswith("no decision -> flat") and _qty(eng) == 0
    else:
        assert orders == [] and _qty(eng) == held


def test_a_no_decision_with_a_direction_is_refused() -> None:
    eng, _ = _engine()
    with pytest.raises(ValueError, match="no-decision"):
        _step(eng, 7, 1, decided=False)


def test_long_only_clips_a_short_target_to_flat_with_a_risk_event() -> None:
    from tinywindow.execution.engine import TradingEngine
    from tinywindow.execution.events import OrderSubmitted
    from tinywindow.risk.events import RiskDenied

    eng, _ = _engine(allow_short=False)
    assert isinstance(eng, TradingEngine)
    _step(eng, 7, 1)
    _step(eng, 8, 1)
    assert _qty(eng) > 0
    events = _step(eng, 9, -1)
    orders = [e for e in events if isinstance(e, OrderSubmitted)]
    denied = [e for e in events if isinstance(e, RiskDenied)]
    assert [d.reason for d in denied] == ["NO_SHORT"] and denied[0].action == "clipped"
    assert orders[0].order.signed_qty == -_qty(eng) and "short clipped to flat" in orders[0].order.reason
    _step(eng, 10, -1)
    assert _qty(eng) == 0  # flat, never short
    assert not [e for e in _step(eng, 11, -1) if isinstance(e, OrderSubmitted)]
    # an explicit short target (a strategy sizing itself) meets the same rule in check_order
    events = eng.rebalance({"A": -5}, 12 * DAY)
    assert [e.reason for e in events if isinstance(e, RiskDenied)] == ["NO_SHORT"]
    assert not [e for e in events if isinstance(e, OrderSubmitted)]


def test_portfolio_actor_trades_the_decided_column(tmp_path: Path) -> None:
    from actors.portfolio import PortfolioActor
    from tinywindow.crypto.keystore import KeyStore

    KeyStore.init(tmp_path / "keys", PASS, scrypt_log2_n=10)
    a = PortfolioActor(actor_cfg(tmp_path), passphrase=PASS)
    try:
        for d in range(4):  # warm up the volatility estimate, flat
            a.apply_signals(signals_table(d, {"AAA": 0}), bars_table(d, {"AAA": (100.0 + d, 100.1 + d)}))
        assert a.apply_signals(signals_table(4, {"AAA": 1}), bars_table(4, {"AAA": (104.0, 104.1)})).num_rows == 1
        a.on_bars(bars_table(5, {"AAA": (104.3, 104.2)}))
        assert D(a.snapshot()["positions"]["AAA"]["qty"]) > 0
        orders = a.apply_signals(signals_table(6, {"AAA": None}), bars_table(6, {"AAA": (104.5, 104.4)}))
        assert orders.column("side").to_pylist() == [-1]  # no decision: flat (the default)
    finally:
        a.close()
