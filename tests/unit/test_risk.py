from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinywindow.config import PortfolioConfig, RiskConfig
from tinywindow.core.codec import CODEC
from tinywindow.errors import ConfigError
from tinywindow.execution.engine import BarRow, SignalRow, TradingEngine
from tinywindow.risk.checks import (
    Book,
    Limits,
    Proposal,
    Reason,
    TradingState,
    check_order,
    next_state,
    target_quantity,
    target_weights,
)
from tinywindow.risk.volatility import VolTracker, ewma_variance_panel, fit_garch

D = Decimal
DAY = 86_400 * 10**9

CFG = RiskConfig(
    max_position=0.2, max_gross=1.0, max_net=0.5, max_order_notional_usd=50_000, collar=0.05,
    confidence_floor=0.6, max_weight=0.25,
)
LIMITS = Limits.from_config(CFG)


def book(qty: dict[str, int] | None = None, prices: dict[str, str] | None = None, equity: str = "1000000") -> Book:
    prices_d = {s: D(p) for s, p in (prices or {"A": "100", "B": "50"}).items()}
    return Book.build(D(equity), {s: D(q) for s, q in (qty or {}).items()}, prices_d)


def check(qty: int, b: Book | None = None, state: TradingState = TradingState.ACTIVE, **kw: object) -> tuple[Decimal, list]:
    p = Proposal("A", 1, "oid", D(qty), kw.pop("ref", D("100")), **kw)  # type: ignore[arg-type]
    return check_order(p, b or book(), LIMITS, state, D(1), max_price_age_s=3600)


def test_clean_order_passes_untouched() -> None:
    assert check(100) == (D(100), [])


@pytest.mark.parametrize(
    "kwargs,reason",
    [
        ({"ref": None}, Reason.NO_REFERENCE_PRICE),
        ({"ref": D(0)}, Reason.NO_REFERENCE_PRICE),
        ({"ref": D("NaN")}, Reason.NO_REFERENCE_PRICE),
        ({"ref_age_s": 7200.0}, Reason.STALE_REFERENCE_PRICE),
        ({"order_price": D("106")}, Reason.PRICE_COLLAR),
        ({"order_price": D("94")}, Reason.PRICE_COLLAR),
    ],
)
def test_whole_order_denials_fail_closed(kwargs: dict, reason: Reason) -> None:
    allowed, (ev,) = check(10, **kwargs)
    assert allowed == 0 and ev.reason == reason.value and ev.action == "denied"


def test_halted_denies_everything_even_reducing() -> None:
    allowed, (ev,) = check(-10, book({"A": 100}), TradingState.HALTED)
    assert allowed == 0 and ev.reason == Reason.HALTED.value


def test_order_notional_cap_clips() -> None:
    allowed, (ev,) = check(1000)  # 100k notional, cap 50k
    assert allowed == 500 and ev.reason == Reason.ORDER_NOTIONAL.value and ev.action == "clipped"


def test_max_position_per_symbol_clips_to_fraction_of_equity() -> None:
    allowed, (ev,) = check(400, book({"A": 1800}))  # at most 2000 shares = 20% of 1M
    assert allowed == 200 and ev.reason == Reason.MAX_POSITION.value


def test_gross_and_net_limits() -> None:
    wide = RiskConfig(max_position=1.0, max_weight=1.0, max_gross=1.0, max_net=0.5, max_order_notional_usd=1e9,
                      collar=0.05)
    lim = Limits.from_config(wide)

    def run(qty: int, b: Book) -> tuple[Decimal, list]:
        return check_order(Proposal("A", 1, "o", D(qty), D("100")), b, lim, TradingState.ACTIVE, D(1))

    # short B 750k (gross .75, net -.75: beyond .5). Buying A lowers |net| but adds gross.
    b = book({"B": -15_000})
    allowed, (ev,) = run(3000, b)
    assert allowed == 2500 and ev.reason == Reason.MAX_GROSS.value
    # long B 450k: net room 50k for more longs, while shorts of A are fine
    b = book({"B": 9000})
    allowed, (ev,) = run(800, b)
    assert allowed == 500 and ev.reason == Reason.MAX_NET.value
    allowed, events = run(-800, b)
    assert allowed == -800 and events == []
    # a flip counts its closing leg: long A 1000 -> short, room is 1000 + (net .5 + .45 - .1...)
    b = book({"A": 1000, "B": 9000})  # net 550k: beyond .5 already
    allowed, events = run(-3000, b)
    assert allowed == -3000 and events == []  # moving net down is always allowed


def test_reducing_state_and_confidence_floor_allow_only_reduction() -> None:
    b = book({"A": 100})
    allowed, (ev,) = check(50, b, TradingState.REDUCING)
    assert allowed == 0 and ev.reason == Reason.REDUCE_ONLY.value and ev.action == "denied"
    allowed, events = check(-60, b, TradingState.REDUCING)
    assert allowed == -60 and events == []
    allowed, (ev,) = check(-300, b, TradingState.REDUCING)  # a flip is cut at flat
    assert allowed == -100 and ev.reason == Reason.REDUCE_ONLY.value
    allowed, (ev,) = check(-300, b, confidence=0.3)
    assert allowed == -100 and ev.reason == Reason.CONFIDENCE_FLOOR.value
    allowed, (ev,) = check(10, b, confidence=0.59)
    assert allowed == 0 and ev.reason == Reason.CONFIDENCE_FLOOR.value


def test_diversification_cap_binds_when_tighter_than_max_position() -> None:
    cfg = RiskConfig(max_position=0.3, max_weight=0.1, max_order_notional_usd=1e9)
    lim = Limits.from_config(cfg)
    p = Proposal("A", 1, "oid", D(1500), D("100"))
    allowed, (ev,) = check_order(p, book(), lim, TradingState.ACTIVE, D(1))
    assert allowed == 1000 and ev.reason == Reason.MAX_WEIGHT.value


def test_lot_rounding_toward_zero() -> None:
    p = Proposal("A", 1, "oid", D("10.7"), D("100"))
    allowed, (ev,) = check_order(p, book(), LIMITS, TradingState.ACTIVE, D("0.5"))
    assert allowed == D("10.5") and ev.reason == Reason.LOT_SIZE.value


def test_breached_limit_is_never_pushed_further() -> None:
    # Prices moved: A is now 30% of equity (limit 20%). Adding is denied, reducing is fine.
    b = book({"A": 3000}, equity="1000000")
    allowed, (ev,) = check(1, b)
    assert allowed == 0 and ev.reason == Reason.MAX_POSITION.value
    assert check(-400, b) == (D(-400), [])


def test_state_machine_with_hysteresis_and_sticky_halt() -> None:
    cfg = RiskConfig(reduce_drawdown=0.1, halt_drawdown=0.2, resume_drawdown=0.05)
    s, dd = next_state(TradingState.ACTIVE, D(95), D(100), cfg)
    assert s == TradingState.ACTIVE and dd == pytest.approx(0.05)
    s, _ = next_state(s, D(89), D(100), cfg)
    assert s == TradingState.REDUCING
    s, _ = next_state(s, D(93), D(100), cfg)
    assert s == TradingState.REDUCING  # not yet recovered below resume_drawdown
    s, _ = next_state(s, D(96), D(100), cfg)
    assert s == TradingState.ACTIVE
    s, _ = next_state(s, D(80), D(100), cfg)
    assert s == TradingState.HALTED
    s, _ = next_state(s, D(120), D(100), cfg)
    assert s == TradingState.HALTED
    with pytest.raises(ConfigError):
        Limits.from_config(RiskConfig(reduce_drawdown=0.3, halt_drawdown=0.2))


def test_vol_targeting_sizes_inverse_to_volatility_with_caps() -> None:
    cfg = RiskConfig(target_vol=0.1, max_weight=0.25, max_position=0.2)
    w = target_weights(np.array([1, -1, 1, 0, 1]), np.array([0.5, 0.2, 0.01, 0.3, np.nan]), cfg)
    assert w[0] == pytest.approx(0.2) and w[1] == pytest.approx(-0.2)  # 0.1/0.5, capped 0.2
    assert w[2] == pytest.approx(0.2)  # 10.0 capped by max_position
    assert w[3] == 0.0 and np.isnan(w[4])  # flat is weight 0 (whatever the vol); unknown vol: no new target
    flat_no_vol = target_weights(np.array([0, -1]), np.array([np.nan, 0.5]), cfg.model_copy(update={"allow_short": False}))
    assert flat_no_vol.tolist() == [0.0, 0.0]  # long-only: a short is flat
    w = target_weights(np.array([1]), np.array([0.8]), cfg)
    assert w[0] == pytest.approx(0.125)
    assert target_quantity(0.125, 1_000_000, 33.0, 1.0) == 3787.0
    assert target_quantity(-0.125, 1_000_000, 33.0, 10.0) == -3780.0


def test_ewma_tracker_matches_the_panel_recursion() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 3)), axis=0))
    cfg = RiskConfig(vol_model="ewma", min_vol_obs=20, ewma_lambda=0.94)
    rets = np.vstack([np.full((1, 3), np.nan), np.log(close[1:] / close[:-1])])
    panel = ewma_variance_panel(rets, 0.94, 20)
    for n in range(3):
        t = VolTracker(cfg)
        got = []
        for c in close[:, n]:
            t.update(float(c))
            got.append(t.variance()[0])
        np.testing.assert_allclose(np.array(got), panel[:, n], rtol=1e-12, equal_nan=True)
        assert np.isnan(panel[19, n]) and np.isfinite(panel[20, n])


def simulate_garch(n: int, omega: float, alpha: float, beta: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = np.zeros(n)
    var = omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = math.sqrt(var) * rng.standard_normal()
        var = omega + alpha * r[t] ** 2 + beta * var
    return r


def test_garch_fit_recovers_parameters_and_forecast_matches_arch() -> None:
    from arch import arch_model

    r = simulate_garch(1500, omega=2e-6, alpha=0.08, beta=0.9, seed=1)
    params, next_var = fit_garch(r)  # type: ignore[misc]
    assert params.alpha == pytest.approx(0.08, abs=0.04) and params.beta == pytest.approx(0.9, abs=0.05)
    res = arch_model(r * 100, mean="Zero", vol="GARCH", p=1, q=1, rescale=False).fit(disp="off")
    assert next_var == pytest.approx(float(res.forecast(horizon=1).variance.iloc[-1, 0]) / 1e4, rel=1e-9)


def test_garch_tracker_rolls_forward_and_falls_back_to_ewma() -> None:
    cfg = RiskConfig(vol_model="garch", garch_min_obs=250, garch_refit_every=1000, min_vol_obs=20)
    t = VolTracker(cfg)
    r = simulate_garch(400, 2e-6, 0.08, 0.9, seed=2)
    closes = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    for c in closes[:300]:
        t.update(float(c))
    assert t.variance()[1] == "ewma"  # no fit yet
    assert t.refit_due()
    fit = t.fit()
    assert fit["ok"]
    t.apply_fit(fit)
    assert t.variance() == (fit["var"], "garch")
    t.update(float(closes[300]))
    g = t.garch
    assert g is not None
    expected = (g.omega + g.alpha * (r[299] * 100) ** 2 + g.beta * fit["var"] * 1e4) / 1e4
    assert t.variance()[0] == pytest.approx(expected, rel=1e-12)
    # an untrustworthy fit (constant returns) falls back to EWMA
    assert fit_garch(np.full(300, 0.001)) is None
    t.apply_fit({"ok": False})
    assert t.variance()[1] == "ewma"
    u = VolTracker.from_snapshot(cfg, t.snapshot())
    assert u.variance() == t.variance() and list(u.window) == list(t.window)


# --------------------------------------------------------------------------- properties

PCFG = PortfolioConfig(initial_cash_usd=1_000_000, commission_bps=5, slippage_bps=5, events_kept=10_000)
PROP_RISK = RiskConfig(
    max_position=0.3, max_gross=0.5, max_net=0.25, max_order_notional_usd=200_000, collar=0.03,
    confidence_floor=0.5, max_weight=0.25, target_vol=2.0, reduce_drawdown=0.03, halt_drawdown=0.05,
    resume_drawdown=0.01, vol_model="ewma", min_vol_obs=2,
)
SYMS = ["A", "B", "C", "D"]

steps = st.lists(
    st.tuples(
        st.lists(st.floats(-0.15, 0.15), min_size=len(SYMS), max_size=len(SYMS)),  # log moves
        st.lists(st.sampled_from([-1, 0, 1]), min_size=len(SYMS), max_size=len(SYMS)),
        st.lists(st.floats(0.0, 1.0), min_size=len(SYMS), max_size=len(SYMS)),
        st.floats(-0.05, 0.05),  # overnight gap
        st.none() | st.lists(st.integers(-6000, 6000), min_size=len(SYMS), max_size=len(SYMS)),
    ),
    min_size=5,
    max_size=30,
)


def _check_invariants(engine: TradingEngine, events: list, state_before: TradingState) -> None:
    orders = [p for k, p in CODEC.encode_all(events) if k == "order"]  # as journaled
    if state_before == TradingState.HALTED or engine.state == TradingState.HALTED:
        assert orders == []
    prices = engine.portfolio.prices
    equity = engine.portfolio.equity()
    exposure_before = {s: engine.exposure(s) for s in SYMS}
    for p in orders:
        sym = p["symbol"]
        signed = D(p["qty"]) * p["side"]
        exposure_before[sym] -= signed
    lim = Limits.from_config(PROP_RISK)

    def metrics(q: dict[str, Decimal]) -> tuple[dict[str, Decimal], Decimal, Decimal]:
        pos = {s: abs(q[s]) * prices[s] / equity for s in q if s in prices}
        gross = sum((abs(q[s]) * prices[s] for s in q if s in prices), D(0)) / equity
        net = abs(sum((q[s] * prices[s] for s in q if s in prices), D(0))) / equity
        return pos, gross, net

    q = dict(exposure_before)
    for p in orders:  # replay the orders one by one against the limits
        sym = p["symbol"]
        before_pos, before_g, before_n = metrics(q)
        signed = D(p["qty"]) * p["side"]
        assert D(p["qty"]) * prices[sym] <= lim.max_order_notional * (1 + D("1e-12"))
        if state_before == TradingState.REDUCING:
            assert abs(q[sym] + signed) <= abs(q[sym]) and (q[sym] + signed) * q[sym] >= 0
        q[sym] += signed
        pos, g, n = metrics(q)
        eps = D("1e-12")
        assert pos[sym] <= max(min(lim.max_position, lim.max_weight), before_pos[sym]) + eps
        assert g <= max(lim.max_gross, before_g) + eps
        assert n <= max(lim.max_net, before_n) + eps


@settings(max_examples=60, deadline=None)
@given(steps)
def test_no_sequence_of_signals_and_prices_breaches_a_limit(seq: list) -> None:
    engine = TradingEngine(PROP_RISK, PCFG)
    prices = np.array([100.0, 50.0, 20.0, 200.0])
    for t, (moves, actions, confs, gap, targets) in enumerate(seq):
        open_ = prices * math.exp(gap)
        prices = prices * np.exp(moves)
        ts = (t + 1) * DAY
        engine.on_bars([BarRow(s, ts, float(o), float(c)) for s, o, c in zip(SYMS, open_, prices, strict=True)])
        before = engine.state
        if targets is None:  # sized by the engine from signals
            events = engine.apply_signals(
                [SignalRow(s, ts, a, c) for s, a, c in zip(SYMS, actions, confs, strict=True)]
            )
        else:  # explicit targets, often far beyond every limit
            events = engine.rebalance(dict(zip(SYMS, targets, strict=True)), ts)
        _check_invariants(engine, events, before)
        if engine.state == TradingState.HALTED:
            assert engine.open_orders == {}
    assert all(e.reason in Reason.__members__ for e in engine.risk_events)


@settings(max_examples=40, deadline=None)
@given(steps, st.integers(0, 4))
def test_halted_never_emits_an_order(seq: list, halt_at: int) -> None:
    engine = TradingEngine(PROP_RISK.model_copy(update={"halt_drawdown": 0.5, "reduce_drawdown": 0.4}), PCFG)
    prices = np.array([100.0, 50.0, 20.0, 200.0])
    for t, (moves, actions, confs, _gap, _targets) in enumerate(seq):
        prices = prices * np.exp(moves)
        ts = (t + 1) * DAY
        engine.on_bars([BarRow(s, ts, float(c), float(c)) for s, c in zip(SYMS, prices, strict=True)])
        if t == halt_at:
            engine.halt(ts)
            assert engine.open_orders == {} and engine.broker.open_orders() == []
        events = engine.apply_signals(
            [SignalRow(s, ts, a, max(c, 0.9)) for s, a, c in zip(SYMS, actions, confs, strict=True)]
        )
        if t >= halt_at:
            assert [k for k, _ in CODEC.encode_all(events) if k in ("order", "fill")] == []
            assert engine.state == TradingState.HALTED


@settings(max_examples=40, deadline=None)
@given(steps, st.lists(st.booleans(), min_size=8, max_size=8))
def test_long_only_never_goes_short_whatever_the_signals_or_targets(seq: list, decided: list[bool]) -> None:
    """With ``risk.allow_short`` off no position nor open order ever takes a symbol short,
    through signals (decided or not) and explicit targets alike; every cut says NO_SHORT
    or another known reason."""
    engine = TradingEngine(PROP_RISK.model_copy(update={"allow_short": False}), PCFG)
    prices = np.array([100.0, 50.0, 20.0, 200.0])
    for t, (moves, actions, confs, gap, targets) in enumerate(seq):
        open_ = prices * math.exp(gap)
        prices = prices * np.exp(moves)
        ts = (t + 1) * DAY
        engine.on_bars([BarRow(s, ts, float(o), float(c)) for s, o, c in zip(SYMS, open_, prices, strict=True)])
        if targets is None:
            flags = decided[t % len(decided)]
            engine.apply_signals([SignalRow(s, ts, a if flags else 0, c, "", flags)
                                  for s, a, c in zip(SYMS, actions, confs, strict=True)])
        else:
            engine.rebalance(dict(zip(SYMS, targets, strict=True)), ts)
        assert all(engine.exposure(s) >= 0 for s in SYMS)
        assert all(engine.portfolio.qty(s) >= 0 for s in SYMS)
    assert all(e.reason in Reason.__members__ for e in engine.risk_events)
