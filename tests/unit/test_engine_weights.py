"""Portfolio construction inside the trading engine: SIGNALS scores -> WEIGHTS -> orders.

With ``portfolio.construction.method`` set, ``TradingEngine.apply_signals`` turns each bar's
scores into target weights with the optimiser (``tinywindow.portfolio``) and trades to them;
every order still goes through the risk checks, an infeasible bar is a risk event (no trade,
the engine keeps running), and the closes the risk model reads are rebuilt by replaying the
journal, so a restored engine decides exactly as the one that never stopped.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tinywindow.execution.config import PortfolioConfig
from tinywindow.execution.engine import BarRow, SignalRow, TradingEngine, WeightRow
from tinywindow.execution.events import OrderSubmitted
from tinywindow.execution.tables import weight_rows, weights_table
from tinywindow.portfolio.config import ConstructionConfig
from tinywindow.risk.config import RiskConfig
from tinywindow.risk.events import RiskDenied

pytestmark = pytest.mark.unit

DAY = 86_400 * 10**9
SYMBOLS = [f"S{i}" for i in range(8)]


def engine(construction: ConstructionConfig, risk: RiskConfig | None = None, journal: list | None = None) -> TradingEngine:
    hook = None if journal is None else (lambda events: journal.extend(events))
    return TradingEngine(
        risk or RiskConfig(max_position=1.0, max_weight=1.0, confidence_floor=0.0),
        PortfolioConfig(construction=construction, commission_bps=0.0, slippage_bps=0.0),
        on_commit=hook,
    )


def history(eng: TradingEngine, bars: int = 70, seed: int = 0) -> int:
    """Feed ``bars`` days of random-walk closes for SYMBOLS (symbol i has volatility 1% x (1 + i/4)); returns the last ts."""
    rng = np.random.default_rng(seed)
    price = np.full(len(SYMBOLS), 100.0)
    vol = 0.01 * (1 + np.arange(len(SYMBOLS)) / 4)
    ts = 0
    for t in range(bars):
        ts = (t + 1) * DAY
        price = price * (1 + vol * rng.standard_normal(len(SYMBOLS)))
        eng.on_bars([BarRow(s, ts, float(p), float(p)) for s, p in zip(SYMBOLS, price, strict=True)])
    return ts


def signals(ts: int, scores: list[float], decided: bool = True) -> list[SignalRow]:
    return [
        SignalRow(s, ts, int(np.sign(x)) if decided else 0, 0.8, "test", decided, float(x) if decided else 0.0)
        for s, x in zip(SYMBOLS, scores, strict=True)
    ]


def orders(events: list) -> dict[str, Decimal]:
    return {e.order.symbol: e.order.qty * e.order.side for e in events if isinstance(e, OrderSubmitted)}


SCORES = [2.0, 1.5, 1.0, 0.5, -0.5, -1.0, -1.5, -2.0]


def test_scores_become_weights_under_the_constraints_and_then_orders() -> None:
    cfg = ConstructionConfig(method="score_tilt", long_only=True, max_weight=0.3, gross=1.0, vol_target=None, top_fraction=0.5)
    eng = engine(cfg)
    ts = history(eng)
    weights, refused = eng.target_weights(signals(ts, SCORES))
    assert not refused
    w = {r.symbol: r.weight for r in weights}
    assert all(x >= -1e-9 for x in w.values())  # long-only
    assert max(w.values()) <= 0.3 + 1e-6
    assert sum(abs(x) for x in w.values()) <= 1.0 + 1e-6
    assert w["S0"] > w["S3"] and w["S7"] == pytest.approx(0.0, abs=1e-4)  # the best score gets the most
    # the WEIGHTS table is the contract: it round-trips through Arrow unchanged
    assert weight_rows(weights_table(weights)) == weights
    sent = orders(eng.apply_signals(signals(ts, SCORES)))
    equity = float(eng.portfolio.equity())
    for s, qty in sent.items():  # each order moves the book to its weight (to a lot)
        price = float(eng.portfolio.prices[s])
        assert float(qty) * price / equity == pytest.approx(w[s], abs=price / equity + 1e-9)
    assert set(sent) == {s for s, x in w.items() if abs(x) > 1e-4}  # (solver noise of ~1e-6 rounds to no shares)


def test_the_risk_checks_still_run_on_every_order() -> None:
    cfg = ConstructionConfig(method="score_tilt", long_only=True, max_weight=0.5, gross=1.0, vol_target=None, top_fraction=0.25)
    # the construction wants up to 50% in a name; the risk limit allows 10%
    risk = RiskConfig(max_position=0.1, max_weight=1.0, confidence_floor=0.0)
    eng = engine(cfg, risk)
    ts = history(eng)
    events = eng.apply_signals(signals(ts, SCORES))
    denied = [e for e in events if isinstance(e, RiskDenied) and e.reason == "MAX_POSITION"]
    assert denied, "a weight above risk.max_position must be clipped by the risk check"
    equity = float(eng.portfolio.equity())
    for s, qty in orders(events).items():
        assert abs(float(qty) * float(eng.portfolio.prices[s])) / equity <= 0.1 + 1e-9


def test_an_infeasible_bar_is_a_risk_event_and_the_engine_keeps_going() -> None:
    # long-only, net at least 90%, but at most 5% per name: 8 names hold at most 40%
    cfg = ConstructionConfig(method="mean_variance", long_only=True, max_weight=0.05, net_min=0.9, net_max=1.0, vol_target=None)
    eng = engine(cfg)
    ts = history(eng)
    events = eng.apply_signals(signals(ts, SCORES))
    refused = [e for e in events if isinstance(e, RiskDenied) and e.reason == "CONSTRUCTION"]
    assert len(refused) == 1 and "max_weight" in refused[0].detail and "net_min" in refused[0].detail
    assert not orders(events)
    # the next bar is still processed
    eng.on_bars([BarRow(s, ts + DAY, 100.0, 100.0) for s in SYMBOLS])
    assert eng.last_bar_ts["S0"] == ts + DAY


def test_what_the_consensus_does_not_affirm_is_closed_and_the_book_stays_in_bounds() -> None:
    """No decision, a decision to be flat, and a held symbol without a signal at this bar are
    all no view: weight 0.  The constraints hold over the whole book, held names included."""
    cfg = ConstructionConfig(method="score_tilt", long_only=True, max_weight=0.3, gross=1.0, vol_target=None, top_fraction=0.5)
    eng = engine(cfg)
    ts = history(eng)
    eng.apply_signals(signals(ts, SCORES))
    nxt = ts + DAY
    eng.on_bars([BarRow(s, nxt, float(eng.portfolio.prices[s]), float(eng.portfolio.prices[s])) for s in SYMBOLS])
    held = [s for s in SYMBOLS if eng.portfolio.qty(s) != 0]
    assert "S0" in held and "S1" in held
    # S0 undecided, S1 decided flat, S2 absent from this bar's signals; the rest decided
    sig = [r for r in signals(nxt, SCORES) if r.symbol not in ("S0", "S1", "S2")]
    sig += [SignalRow("S0", nxt, 0, 0.4, "no quorum", False, 0.0), SignalRow("S1", nxt, 0, 0.9, "flat", True, 0.1)]
    weights, _ = eng.target_weights(sig)
    w = {r.symbol: r.weight for r in weights}
    assert set(w) >= {"S0", "S1", "S2"}  # the held name without a signal is in the book
    assert w["S0"] == 0.0 and w["S1"] == 0.0 and w["S2"] == 0.0
    assert sum(abs(x) for x in w.values()) <= 1.0 + 1e-6 and max(w.values()) <= 0.3 + 1e-6
    eng.apply_signals(sig)
    eng.on_bars([BarRow(s, nxt + DAY, float(eng.portfolio.prices[s]), float(eng.portfolio.prices[s])) for s in SYMBOLS])
    assert eng.portfolio.qty("S0") == 0 and eng.portfolio.qty("S1") == 0 and eng.portfolio.qty("S2") == 0


def test_unusable_prices_are_a_risk_event_not_a_crash() -> None:
    """A name whose price never moved has no risk estimate (no weight); when no name has one,
    the bar trades nothing and the engine keeps running."""
    cfg = ConstructionConfig(method="mean_variance", long_only=True, vol_target=None)
    eng = engine(cfg)
    for t in range(40):
        eng.on_bars([BarRow(s, (t + 1) * DAY, 100.0, 100.0) for s in SYMBOLS])
    weights, refused = eng.target_weights(signals(40 * DAY, SCORES))
    assert not refused and all(r.weight == 0.0 for r in weights)
    assert not orders(eng.apply_signals(signals(40 * DAY, SCORES)))


def test_construction_is_refused_without_score_consensus_or_with_keep() -> None:
    from tinywindow.config import Config
    from tinywindow.errors import ConfigError

    cfg = Config().set("consensus.mode", "score").set("portfolio.construction.method", "mean_variance")
    assert cfg.portfolio.construction.method == "mean_variance"
    with pytest.raises(ConfigError, match=r"consensus\.mode score"):
        Config().set("portfolio.construction.method", "mean_variance")
    with pytest.raises(ConfigError, match="no_decision keep"):
        cfg.set("portfolio.no_decision", "keep")


@pytest.mark.parametrize("method", ["mean_variance", "risk_parity", "score_tilt"])
def test_a_restored_engine_constructs_the_same_weights(method: str) -> None:
    """The risk model's closes come back from a checkpoint and from replaying the journal."""
    cfg = ConstructionConfig(method=method, long_only=method == "risk_parity", net_min=-0.2, net_max=1.0, max_weight=0.3,
                             turnover_penalty=0.001, vol_target=0.1)
    journal: list = []
    eng = engine(cfg, journal=journal)
    ts = history(eng, bars=40)
    snap = eng.snapshot()
    cut = len(journal)
    # more bars after the checkpoint
    for k in range(1, 31):
        eng.on_bars([BarRow(s, ts + k * DAY, 100.0 + k + i, 100.0 + k + i) for i, s in enumerate(SYMBOLS)])
    last = ts + 30 * DAY
    expected, _ = eng.target_weights(signals(last, SCORES))

    fresh = engine(cfg)
    fresh.restore(snap)
    for e in journal[cut:]:
        fresh.apply(e)
    got, _ = fresh.target_weights(signals(last, SCORES))
    assert [(r.symbol, r.weight) for r in got] == [(r.symbol, r.weight) for r in expected]
    assert any(abs(r.weight) > 0 for r in got)


def test_construction_off_leaves_the_per_symbol_path_unchanged() -> None:
    eng = engine(ConstructionConfig())
    ts = history(eng)
    assert not eng.constructing and len(eng.close_history) == 0
    sent = orders(eng.apply_signals(signals(ts, SCORES)))
    assert sent  # the +-1 signals sized alone (volatility-targeted), as before construction existed
    assert "close_history" not in eng.snapshot()


def test_weights_rows_validate() -> None:
    bad = [WeightRow("S0", DAY, float("nan"), 0.0, 0.5, "x")]
    from tinywindow.errors import DataError

    with pytest.raises(DataError, match="weight"):
        weights_table(bad)
