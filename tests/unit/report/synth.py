"""A synthetic ``RunRecords`` for the report tests: a random-walk book, orders and fills,
three agents' votes and outcomes, signals with no-decision reasons, risk events, model
versions with a promotion and a rejection, and a few explanations.  Vectorised, so the
10-year, 50-symbol case builds in about a second."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tinywindow.records import RunRecords

__all__ = ["AGENTS", "RunRecords", "empty_records", "synthetic_records"]

AGENTS = ("xgboost", "lstm", "transformer")
_NO_DECISION = ("no quorum; majority 1/3", "tie; majority 1/3", "low confidence", "disagreement; majority 2/3")

COLUMNS = {
    "orders": ["order_id", "symbol", "ts", "side", "qty", "price", "limit_price", "reason", "qty_exact", "price_exact"],
    "fills": ["order_id", "symbol", "ts", "side", "qty", "price", "fee", "qty_exact", "price_exact", "fee_exact"],
    "equity": ["ts", "equity"],
    "positions": ["symbol", "qty", "avg_price", "last_price", "market_value", "unrealized_pnl", "realized_pnl"],
    "signals": ["symbol", "ts", "action", "decided", "confidence", "agreement", "votes", "score", "reason"],
    "votes": ["symbol", "ts", "agent", "model_version", "action", "confidence", "score"],
    "outcomes": ["symbol", "ts", "agent", "model_version", "action", "confidence", "realized_return", "reward"],
    "weights": ["ts", "agent", "weight"],
    "risk_events": ["ts", "symbol", "order_id", "reason", "action", "detail"],
    "models": ["agent", "version", "parent", "created", "served", "decision", "metric", "challenger", "champion"],
    "benchmark": ["ts", "equity"],
    "explanations": ["symbol", "ts", "agent", "feature", "contribution"],
}


def empty_records() -> RunRecords:
    """Every table empty (with its columns), as a run that never traded."""
    frames = {name: pd.DataFrame({c: [] for c in cols}) for name, cols in COLUMNS.items()}
    return RunRecords(run="empty", mode="backtest", summary={}, **frames)


def synthetic_records(bars: int = 300, symbols: int = 5, fills: int = 300, seed: int = 0) -> RunRecords:
    """A run of ``bars`` business days over ``symbols`` names with about ``fills`` fills."""
    rng = np.random.default_rng(seed)
    ts = pd.bdate_range("2015-01-02", periods=bars, tz="UTC")
    names = [f"S{i:02d}" for i in range(symbols)]
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, (bars, symbols)), axis=0))
    equity = 1e6 * np.exp(np.cumsum(rng.normal(0.0002, 0.008, bars)))
    bench = 1e6 * prices.mean(axis=1) / prices[0].mean()

    # orders and fills: one fill per order, a few orders left unfilled
    n_orders = int(fills * 1.05) + 1
    bar_i = np.sort(rng.integers(0, bars, n_orders))
    sym_i = rng.integers(0, symbols, n_orders)
    side = rng.choice([-1, 1], n_orders)
    qty = rng.integers(1, 200, n_orders).astype(float)
    price = prices[bar_i, sym_i]
    order_ids = [f"o{i:07d}" for i in range(n_orders)]
    orders = pd.DataFrame({
        "order_id": order_ids, "symbol": np.asarray(names)[sym_i], "ts": ts[bar_i], "side": side,
        "qty": qty, "price": price, "limit_price": price * (1 + 0.001 * side),
        "reason": np.where(side > 0, "LONG (decided; majority 3/3)", "SHORT (decided; majority 2/3)"),
    })
    orders["qty_exact"] = orders["qty"].map(str)
    orders["price_exact"] = orders["price"].map(repr)
    filled = orders.iloc[: min(fills, n_orders)]
    fills_df = filled[["order_id", "symbol", "ts", "side", "qty", "price"]].copy()
    fills_df["fee"] = (fills_df["qty"] * fills_df["price"] * 0.0005).to_numpy()
    for col in ("qty", "price", "fee"):
        fills_df[f"{col}_exact"] = fills_df[col].map(repr)

    net = fills_df.assign(signed=fills_df["side"] * fills_df["qty"]).groupby("symbol")["signed"].sum()
    last = pd.Series(prices[-1], index=names)
    positions = pd.DataFrame({"symbol": net.index, "qty": net.to_numpy(), "avg_price": last[net.index].to_numpy() * 0.98,
                              "last_price": last[net.index].to_numpy()})
    positions["market_value"] = positions["qty"] * positions["last_price"]
    positions["unrealized_pnl"] = positions["market_value"] * 0.02
    positions["realized_pnl"] = 0.0

    # votes and outcomes: every agent votes on every symbol at every bar
    grid_ts = np.repeat(ts, symbols * len(AGENTS))
    grid_sym = np.tile(np.repeat(names, len(AGENTS)), bars)
    grid_agent = np.tile(np.asarray(AGENTS), bars * symbols)
    n = grid_ts.size
    action = rng.choice([-1, 0, 1], n, p=[0.35, 0.3, 0.35])
    conf = rng.uniform(0.3, 1.0, n)
    fwd = np.vstack([np.diff(np.log(prices), axis=0), np.zeros((1, symbols))])
    realized = np.repeat(fwd.ravel(), len(AGENTS))
    skill = np.where(grid_agent == "xgboost", 0.6, 0.5)
    right = rng.uniform(size=n) < skill * conf / conf.mean()
    action = np.where((action != 0) & right, np.sign(realized).astype(int), action)
    version = np.where((grid_agent == "xgboost") & (grid_ts >= ts[bars // 2]), "v0002", "v0001")
    votes = pd.DataFrame({"symbol": grid_sym, "ts": grid_ts, "agent": grid_agent, "model_version": version,
                          "action": action, "confidence": conf, "score": conf * action})
    outcomes = votes.drop(columns="score").assign(realized_return=realized, reward=action * realized)

    # signals: one per symbol per bar, about 40% no-decisions
    n_sig = bars * symbols
    decided = rng.uniform(size=n_sig) < 0.6
    sig_action = np.where(decided, rng.choice([-1, 1], n_sig), 0)
    why = rng.choice(np.asarray(_NO_DECISION), n_sig)
    text = np.where(sig_action > 0, "LONG (decided; majority 3/3)", "SHORT (decided; majority 2/3)")
    signals = pd.DataFrame({
        "symbol": np.tile(names, bars), "ts": np.repeat(ts, symbols), "action": sig_action, "decided": decided,
        "confidence": rng.uniform(0.2, 0.95, n_sig), "agreement": rng.uniform(0.3, 1.0, n_sig), "votes": 3,
        "score": rng.normal(0, 1, n_sig),
        "reason": np.where(decided, text, np.char.add(np.char.add("NO DECISION (", why), ")")),
    })

    w = rng.dirichlet(np.ones(len(AGENTS)) * 20, bars)
    weights = pd.DataFrame({"ts": np.repeat(ts, len(AGENTS)), "agent": np.tile(AGENTS, bars), "weight": w.ravel()})

    n_risk = max(3, fills // 20)
    risk_i = rng.integers(0, n_orders, n_risk)
    risk_events = pd.DataFrame({
        "ts": ts[bar_i[risk_i]], "symbol": np.asarray(names)[sym_i[risk_i]], "order_id": np.asarray(order_ids)[risk_i],
        "reason": rng.choice(["max_position", "max_gross", "drawdown_halt", "stale_price"], n_risk),
        "action": rng.choice(["deny", "clip"], n_risk), "detail": "synthetic <limit> & check",
    })

    created = [ts[0], ts[0], ts[0], ts[bars // 2], ts[bars // 2 + 1]]
    models = pd.DataFrame({
        "agent": ["xgboost", "lstm", "transformer", "xgboost", "lstm"],
        "version": ["v0001", "v0001", "v0001", "v0002", "v0002"],
        "parent": [None, None, None, "v0001", "v0001"],
        "created": created,
        "served": [False, True, True, True, False],
        "decision": ["promoted", "promoted", "promoted", "promoted", "rejected"],
        "metric": ["sharpe"] * 5,
        "challenger": [0.8, 0.5, 0.4, 1.1, 0.3],
        "champion": [None, None, None, 0.8, 0.5],
    })

    traded = orders.iloc[: min(12, n_orders)]
    features = np.asarray(["ret_1", "ret_5", "vol_21", "rsi_14", "volume_z", "macd"])
    expl = pd.DataFrame({
        "symbol": np.repeat(traded["symbol"].to_numpy(), len(features)),
        "ts": np.repeat(traded["ts"].to_numpy(), len(features)),
        "agent": "xgboost",
        "feature": np.tile(features, len(traded)),
        "contribution": rng.normal(0, 0.1, len(traded) * len(features)),
    })
    expl["ts"] = pd.to_datetime(expl["ts"], utc=True)

    return RunRecords(
        run="synthetic", mode="backtest", orders=orders, fills=fills_df.reset_index(drop=True),
        equity=pd.DataFrame({"ts": ts, "equity": equity}), positions=positions, signals=signals, votes=votes,
        outcomes=outcomes, weights=weights, risk_events=risk_events, models=models,
        benchmark=pd.DataFrame({"ts": ts, "equity": bench}), explanations=expl,
        summary={"run": "synthetic", "mode": "backtest", "bars": bars},
    )
