"""The vectorised backtest: numpy over [T, N] panels, the event engine's rules in bulk.

Timeline of bar ``t`` (the same as ``TradingEngine`` and backtesting.py): orders decided at
the close of ``t - 1`` fill at the open of ``t`` (``Slippage``: buys pay more, sells get
less; an order whose fill price is beyond its collar expires), pay ``Commission`` on the
fill, then the book is marked at the close of ``t`` and the next decisions are made there.
The cost rules are the very objects the PaperBroker uses (``tinywindow.execution.costs``) and the
sizing is ``tinywindow.risk.checks``'s; the event engine and this simulator are cross-checked
against each other to 1e-9 in the unit tests.

* ``simulate_targets``: target quantities per bar (NaN: no new target).  Without a collar
  every order fills, so this is loop-free and sparse: arithmetic only where a target
  changes, positions and per-symbol cash as runs between fills (``np.repeat``), then one
  mark-to-market pass over [T, N].
* ``simulate_weights``: target weights of equity (sized at each decision's close, in lots).
  Sizing depends on equity, so it loops over bars, vectorised over symbols.

The risk *limits* (gross, net, per-order caps, trading states) are the event engine's job;
size the weights within them (``risk.target_weights`` caps per symbol).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tinywindow.errors import DataError
from tinywindow.execution.accounting import position_after_fill
from tinywindow.execution.costs import Commission, Slippage
from tinywindow.risk.checks import target_quantity_array


@dataclass(frozen=True)
class SimResult:
    """The outcome of a simulation; [T] arrays per bar, [T, N] per bar and symbol."""

    equity: np.ndarray  # [T] at each close
    cash: np.ndarray  # [T]
    position: np.ndarray  # [T, N] held from the open of t (after its fills)
    fill_qty: np.ndarray  # [T, N] signed, executed at the open of t
    fill_price: np.ndarray  # [T, N] NaN where nothing filled
    fees: np.ndarray  # [T, N]
    column_pnl: np.ndarray  # [T, N] each symbol's P&L to date (cash flows + value at close)
    gross: np.ndarray  # [T] gross exposure at each close
    initial_cash: float
    expired: int  # orders that hit their collar

    @property
    def traded_notional(self) -> np.ndarray:
        return np.nansum(np.abs(self.fill_qty) * np.nan_to_num(self.fill_price), axis=1)

    @property
    def n_fills(self) -> int:
        return int(np.count_nonzero(self.fill_qty))

    @property
    def closed_trades(self) -> int:
        """Fills that reduced or closed a position (backtesting.py's trade count)."""
        prev = np.vstack([np.zeros((1, self.position.shape[1])), self.position[:-1]])
        return int(np.count_nonzero((self.fill_qty != 0) & (prev * self.fill_qty < 0)))

    def trade_pnls(self) -> list[float]:
        """Net P&L of every closed trade, in fill order per symbol (the portfolio's rule)."""
        out: list[float] = []
        sym_idx, bar_idx = np.nonzero(self.fill_qty.T)  # symbol-major, bars in order
        state: dict[int, tuple[float, float, float]] = {}
        for n, t in zip(sym_idx, bar_idx, strict=True):
            q, c, e = state.get(int(n), (0.0, 0.0, 0.0))
            q, c, e, _, trade = position_after_fill(
                q, c, e, float(self.fill_qty[t, n]), float(self.fill_price[t, n]), float(self.fees[t, n])
            )
            state[int(n)] = (q, c, e)
            if trade is not None:
                out.append(trade)
        return out


def _check_panel(open_: np.ndarray, close: np.ndarray) -> None:
    if open_.shape != close.shape or open_.ndim != 2:
        raise DataError(f"open and close must be [T, N] of one shape, got {open_.shape} and {close.shape}")
    for name, x in (("open", open_), ("close", close)):
        if x.size and bool(np.all(x > 0)) and np.isfinite(x.max()):  # NaN fails x > 0
            continue
        t, n = np.argwhere(~(np.isfinite(x) & (x > 0)))[0]
        raise DataError(f"{name} price not positive and finite at bar {t}, symbol {n}", row=int(t), column=name)


def simulate_targets(
    open_: np.ndarray,
    close: np.ndarray,
    target_qty: np.ndarray,
    *,
    initial_cash: float,
    commission: Commission | None = None,
    slippage: Slippage | None = None,
    collar: float | None = None,
) -> SimResult:
    """Trade to target quantities decided at each close (NaN: keep the last target)."""
    open_, close = np.asarray(open_, np.float64), np.asarray(close, np.float64)
    _check_panel(open_, close)
    commission, slippage = commission or Commission(), slippage or Slippage()
    if collar is not None:
        return _simulate_loop(open_, close, np.asarray(target_qty, np.float64), None, initial_cash,
                              commission, slippage, collar, lot=1.0)
    return _simulate_sparse(open_, close, np.asarray(target_qty, np.float64), initial_cash, commission, slippage)


def _steps(t_len: int, n: int, sym: np.ndarray, start: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[T, N]: 0 until each symbol's first step, then ``values[k]`` from bar ``start[k]`` on.

    Steps are sorted by symbol, then time; built as runs (``np.repeat``), not a T x N loop.
    """
    pos = np.concatenate([np.arange(n) * t_len, sym * t_len + start])
    val = np.concatenate([np.zeros(n), values])
    order = np.argsort(pos, kind="stable")
    pos, val = pos[order], val[order]
    flat = np.repeat(val, np.diff(np.append(pos, n * t_len)))
    return flat.reshape(n, t_len).T


def _simulate_sparse(
    open_: np.ndarray, close: np.ndarray, target: np.ndarray, initial_cash: float,
    commission: Commission, slippage: Slippage,
) -> SimResult:
    """Targets without a collar: every order fills, so only the bars where a target changes
    need arithmetic; positions and cash are runs between those fills."""
    t_len, n = close.shape
    sym, t = np.nonzero(np.isfinite(target[:-1]).T)  # decisions that can fill, symbol-major
    vals = target[t, sym]
    prev = np.concatenate([[0.0], vals[:-1]])
    first = np.concatenate([[True], sym[1:] != sym[:-1]])
    prev[first] = 0.0
    dq = vals - prev
    keep = dq != 0
    sym, fill_t, vals, dq = sym[keep], t[keep] + 1, vals[keep], dq[keep]
    price = slippage.price_array(np.sign(dq), open_[fill_t, sym])
    fee = commission.fee_array(dq, price)
    flow = -(dq * price) - fee
    csum = np.cumsum(flow)
    starts = np.flatnonzero(np.concatenate([[True], sym[1:] != sym[:-1]])) if sym.size else np.zeros(0, int)
    base = np.repeat((csum - flow)[starts], np.diff(np.append(starts, sym.size)))
    held = _steps(t_len, n, sym, fill_t, vals)
    value = held * close
    col_pnl = _steps(t_len, n, sym, fill_t, csum - base) + value
    equity = initial_cash + col_pnl.sum(axis=1)
    cash = initial_cash + np.cumsum(np.bincount(fill_t, weights=flow, minlength=t_len))
    fill_qty, fill_price, fees = np.zeros((t_len, n)), np.full((t_len, n), np.nan), np.zeros((t_len, n))
    fill_qty[fill_t, sym], fill_price[fill_t, sym], fees[fill_t, sym] = dq, price, fee
    gross = np.abs(value).sum(axis=1)
    return SimResult(equity, cash, held, fill_qty, fill_price, fees, col_pnl, gross, initial_cash, 0)


def simulate_weights(
    open_: np.ndarray,
    close: np.ndarray,
    weights: np.ndarray,
    *,
    initial_cash: float,
    commission: Commission | None = None,
    slippage: Slippage | None = None,
    collar: float | None = None,
    lot: float = 1.0,
) -> SimResult:
    """Trade to target weights of equity decided at each close (NaN: no new target)."""
    open_, close = np.asarray(open_, np.float64), np.asarray(close, np.float64)
    _check_panel(open_, close)
    return _simulate_loop(open_, close, None, np.asarray(weights, np.float64), initial_cash,
                          commission or Commission(), slippage or Slippage(), collar, lot)


def _simulate_loop(
    open_: np.ndarray,
    close: np.ndarray,
    target_qty: np.ndarray | None,
    weights: np.ndarray | None,
    initial_cash: float,
    commission: Commission,
    slippage: Slippage,
    collar: float | None,
    lot: float,
) -> SimResult:
    t_len, n = close.shape
    pos = np.zeros(n)
    cash = initial_cash
    order = np.zeros(n)  # signed quantity decided at the last close
    limit = np.full(n, np.nan)
    out_pos, out_q = np.zeros((t_len, n)), np.zeros((t_len, n))
    out_p, out_fee = np.full((t_len, n), np.nan), np.zeros((t_len, n))
    out_flow = np.zeros((t_len, n))
    equity, cash_t = np.zeros(t_len), np.zeros(t_len)
    expired = 0
    for t in range(t_len):
        if t > 0:
            side = np.sign(order)
            price = slippage.price_array(side, open_[t])
            ok = order != 0
            if collar is not None:
                beyond = ((side > 0) & (price > limit)) | ((side < 0) & (price < limit))
                expired += int(np.count_nonzero(ok & beyond))
                ok &= ~beyond
            dq = np.where(ok, order, 0.0)
            fee = commission.fee_array(dq, price)
            flow = -(dq * price) - fee
            cash += flow.sum()
            pos = pos + dq
            out_q[t], out_p[t], out_fee[t], out_flow[t] = dq, np.where(ok, price, np.nan), fee, flow
        out_pos[t] = pos
        value = pos * close[t]
        eq = cash + value.sum()
        equity[t], cash_t[t] = eq, cash
        if weights is not None:
            w = weights[t]
            tgt = np.where(np.isfinite(w), target_quantity_array(w, eq, close[t], lot), pos)
        else:
            assert target_qty is not None
            tq = target_qty[t]
            tgt = np.where(np.isfinite(tq), tq, pos)
        order = tgt - pos
        if collar is not None:
            limit = close[t] * (1.0 + np.sign(order) * collar)
    col_pnl = np.cumsum(out_flow, axis=0) + out_pos * close
    gross = np.abs(out_pos * close).sum(axis=1)
    return SimResult(equity, cash_t, out_pos, out_q, out_p, out_fee, col_pnl, gross, initial_cash, expired)


# --------------------------------------------------------------------------- strategies


def sma(close: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average per column (NaN for the first n - 1 rows), as pandas computes it."""
    return pd.DataFrame(close).rolling(n).mean().to_numpy()


def sma_crossover_actions(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """+1 where the fast SMA crosses above the slow one at this close, -1 below, else 0.

    The cross is backtesting.py's ``crossover``: ``f[t-1] < s[t-1] and f[t] > s[t]``.
    """
    c = np.asarray(close, np.float64)
    c2 = c[:, None] if c.ndim == 1 else c
    f, s = sma(c2, fast), sma(c2, slow)
    up = np.zeros(c2.shape, dtype=bool)
    dn = np.zeros(c2.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        up[1:] = (f[:-1] < s[:-1]) & (f[1:] > s[1:])
        dn[1:] = (f[:-1] > s[:-1]) & (f[1:] < s[1:])
    out = up.astype(np.int8) - dn.astype(np.int8)
    return out[:, 0] if c.ndim == 1 else out


def stop_and_reverse_targets(actions: np.ndarray, qty: np.ndarray | float) -> np.ndarray:
    """Target quantities ``action * qty`` on every cross, NaN (keep) in between."""
    a = np.asarray(actions, np.float64)
    return np.where(a != 0, a * qty, np.nan)
