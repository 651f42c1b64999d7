"""The numbers the report plots, as pure functions of the run's tables (no plotly here).

Long series are thinned to at most ``max_points`` per trace before they reach a figure: a
10-year daily book is 2,520 points, a paper run of minute bars far more, and a browser draws
a line of 1,500 points as well as one of 100,000.  Return metrics come from
``tinywindow.backtest.metrics`` (Sharpe, drawdowns), computed on the full series and only
then thinned.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tinywindow.backtest import metrics

__all__ = [
    "MAX_POINTS",
    "ROLLING_BARS",
    "calibration",
    "drawdown",
    "equity_series",
    "hit_rate_over_time",
    "no_decision_reasons",
    "numeric",
    "periods_per_year",
    "rolling_sharpe",
    "symbol_pnl",
    "thin",
    "usable",
]

MAX_POINTS = 1500
ROLLING_BARS = 63
CALIBRATION_BINS = 10
_YEAR_S = 365.25 * 86400.0
_NO_DECISION = re.compile(r"^\s*NO DECISION\s*\(([^;)]*)")


def usable(df: pd.DataFrame | None, *columns: str) -> bool:
    """True when ``df`` has rows and every named column (a table absent or empty renders as
    a 'none' line, never an error)."""
    return df is not None and not df.empty and all(c in df.columns for c in columns)


def numeric(values: pd.Series) -> np.ndarray:
    """Floats from a column that may hold numbers, Decimals or numeric strings (NaN otherwise)."""
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce")


def thin(n: int, max_points: int = MAX_POINTS, values: np.ndarray | None = None) -> np.ndarray:
    """Positions of at most ``max_points`` of ``n`` points: evenly spaced, first and last
    kept; with ``values``, each bucket keeps its minimum instead (a drawdown's troughs)."""
    if n <= max_points:
        return np.arange(n)
    if values is None:
        return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    bucket = np.arange(n) * max_points // n
    v = np.where(np.isnan(values), np.inf, values)
    order = np.lexsort((v, bucket))  # by bucket, then value: the first of each bucket is its min
    first = np.concatenate([[True], bucket[order][1:] != bucket[order][:-1]])
    return np.sort(order[first])


def equity_series(df: pd.DataFrame | None) -> pd.Series:
    """The ``equity`` column indexed by UTC time, sorted, NaNs and duplicate stamps dropped
    (the last value of a stamp wins); empty when the table is."""
    if not usable(df, "ts", "equity"):
        return pd.Series(dtype=np.float64)
    assert df is not None
    s = pd.Series(numeric(df["equity"]), index=pd.DatetimeIndex(_utc(df["ts"])))
    s = s[s.index.notna() & np.isfinite(s.to_numpy())].sort_index()
    return s[~s.index.duplicated(keep="last")]


def periods_per_year(index: pd.DatetimeIndex) -> int:
    """Bars per year inferred from the timestamps: bars over the years they span (252 for
    business days, 365 for a 24/7 daily feed, ~98,000 for 1-minute equity bars); 252 when
    fewer than two bars or no time passes."""
    if len(index) < 2:
        return metrics.PERIODS_PER_YEAR
    span = (index[-1] - index[0]).total_seconds()
    if not span > 0:
        return metrics.PERIODS_PER_YEAR
    return max(1, round((len(index) - 1) / (span / _YEAR_S)))


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown of the book at each bar (0 at the first), as a negative fraction of the peak."""
    if equity.empty:
        return equity
    dd = metrics.drawdowns(metrics.returns_from_equity(equity.to_numpy()))
    return pd.Series(np.concatenate([[0.0], dd]), index=equity.index)


def rolling_sharpe(equity: pd.Series, window: int = ROLLING_BARS, max_points: int = MAX_POINTS) -> pd.Series:
    """Annualised Sharpe of the last ``window`` bar returns, at (a thinning of) every bar that
    has a full window; each point is ``metrics.sharpe`` of its window."""
    if len(equity) <= window:
        return pd.Series(dtype=np.float64)
    periods = periods_per_year(pd.DatetimeIndex(equity.index))
    r = metrics.returns_from_equity(equity.to_numpy())
    bars = np.arange(window, len(equity))
    bars = bars[thin(bars.size, max_points)]
    values = [metrics.sharpe(r[b - window:b], periods=periods) for b in bars]
    out = pd.Series(values, index=equity.index[bars], dtype=np.float64)
    return out.replace([np.inf, -np.inf], np.nan)


def _directional(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Outcomes of votes that took a side, with ``hit`` = sign(action) == sign(realized)."""
    df = pd.DataFrame({
        "ts": _utc(outcomes["ts"]), "agent": outcomes["agent"].astype(str),
        "action": np.sign(numeric(outcomes["action"])), "realized": numeric(outcomes["realized_return"]),
        "confidence": numeric(outcomes["confidence"]) if "confidence" in outcomes.columns else np.nan,
    })
    df = df[(df["action"] != 0) & df["action"].notna() & df["realized"].notna() & df["ts"].notna()]
    return df.assign(hit=(df["action"] == np.sign(df["realized"])).astype(np.float64))


def hit_rate_over_time(outcomes: pd.DataFrame | None, window: int = ROLLING_BARS,
                       max_points: int = MAX_POINTS) -> dict[str, pd.Series]:
    """Per agent: the share of its directional votes that were right over the last ``window``
    bars it voted on (hits over votes in the window, not a mean of per-bar rates)."""
    if not usable(outcomes, "ts", "agent", "action", "realized_return"):
        return {}
    assert outcomes is not None
    df = _directional(outcomes)
    out: dict[str, pd.Series] = {}
    for agent, rows in df.groupby("agent", sort=True):
        per_bar = rows.groupby("ts")["hit"].agg(["sum", "count"]).sort_index()
        roll = per_bar.rolling(window, min_periods=1).sum()
        rate = roll["sum"] / roll["count"]
        out[str(agent)] = rate.iloc[thin(len(rate), max_points)]
    return out


def calibration(outcomes: pd.DataFrame | None, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Per agent and confidence bin (``bins`` equal bins over [0, 1]): mean confidence, hit
    rate and count of directional votes.  A calibrated agent sits on the diagonal."""
    cols = ["agent", "confidence", "hit_rate", "count"]
    if not usable(outcomes, "ts", "agent", "action", "realized_return", "confidence"):
        return pd.DataFrame(columns=cols)
    assert outcomes is not None
    df = _directional(outcomes)
    df = df[df["confidence"].notna()]
    if df.empty:
        return pd.DataFrame(columns=cols)
    df = df.assign(bin=np.clip((df["confidence"].clip(0.0, 1.0) * bins).astype(int), 0, bins - 1))
    g = df.groupby(["agent", "bin"], sort=True).agg(confidence=("confidence", "mean"), hit_rate=("hit", "mean"),
                                                    count=("hit", "size"))
    return g.reset_index()[cols]


def no_decision_reasons(signals: pd.DataFrame | None) -> pd.Series:
    """How many signals were no-decisions, by why: the code text inside
    ``NO DECISION (<why>; ...)``, most frequent first."""
    if not usable(signals, "reason"):
        return pd.Series(dtype=np.int64)
    assert signals is not None
    why = signals["reason"].astype(str).str.extract(_NO_DECISION, expand=False).dropna().str.strip()
    return why.value_counts().astype(np.int64)


def symbol_pnl(fills: pd.DataFrame | None, positions: pd.DataFrame | None) -> pd.Series:
    """Net P&L per symbol from the fills and the final marks: the cash the fills paid and
    received, less fees, plus the net quantity still held at the position's last price (the
    last fill price when the book has no mark for it).  Sorted, best first."""
    if not usable(fills, "symbol", "side", "qty", "price"):
        return pd.Series(dtype=np.float64)
    assert fills is not None
    signed = np.sign(numeric(fills["side"])) * numeric(fills["qty"])
    price = numeric(fills["price"])
    fee = numeric(fills["fee"]) if "fee" in fills.columns else np.zeros(len(fills))
    df = pd.DataFrame({"symbol": fills["symbol"].astype(str).to_numpy(), "signed": signed,
                       "cash": -signed * price - np.nan_to_num(fee), "price": price})
    if "ts" in fills.columns:
        df = df.iloc[np.argsort(_utc(fills["ts"]).to_numpy(), kind="stable")]
    per = df.groupby("symbol", sort=True).agg(net=("signed", "sum"), cash=("cash", "sum"), last=("price", "last"))
    mark = per["last"]
    if usable(positions, "symbol", "last_price"):
        assert positions is not None
        marks = pd.Series(numeric(positions["last_price"]), index=positions["symbol"].astype(str).to_numpy())
        marks = marks[~marks.index.duplicated(keep="last")].dropna()
        mark = marks.reindex(per.index).fillna(mark)
    pnl = per["cash"] + per["net"] * mark
    return pnl.sort_values(ascending=False)
