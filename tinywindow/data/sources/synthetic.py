"""A seeded multi-symbol market generator for scale tests and benchmarks.

Returns follow a regime-switching factor model: a two-state Markov chain (calm / turbulent)
sets the market's drift and volatility, every symbol loads on the market factor with its own
beta and adds idiosyncratic noise, so symbols are correlated through the common factor.
Bars are consistent by construction (low <= open, close <= high) and volume rises with the
size of the move.  Same seed, same table, on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from tinywindow.contracts import BARS
from tinywindow.data.base import HistoricalSource


@dataclass(frozen=True)
class Regime:
    drift: float  # daily log drift of the market factor
    vol: float  # daily volatility of the market factor
    idio_scale: float  # multiplies each symbol's idiosyncratic volatility
    stay: float  # probability of staying in this regime on the next bar


CALM = Regime(drift=0.0004, vol=0.008, idio_scale=1.0, stay=0.985)
TURBULENT = Regime(drift=-0.0010, vol=0.025, idio_scale=1.8, stay=0.95)


def regimes(n_bars: int, rng: np.random.Generator, states: tuple[Regime, Regime] = (CALM, TURBULENT)) -> np.ndarray:
    """A two-state Markov chain of regime indices, one per bar (starts calm)."""
    u = rng.random(n_bars)
    out = np.empty(n_bars, dtype=np.int8)
    state = 0
    stay = np.array([states[0].stay, states[1].stay])
    for t in range(n_bars):  # n_bars steps, not rows x symbols: cheap
        out[t] = state
        if u[t] > stay[state]:
            state = 1 - state
    return out


def generate_panel(
    n_symbols: int, n_bars: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """OHLCV arrays of shape [n_bars, n_symbols]."""
    rng = np.random.default_rng(seed)
    reg = regimes(n_bars, rng)
    drift = np.where(reg == 0, CALM.drift, TURBULENT.drift)
    vol = np.where(reg == 0, CALM.vol, TURBULENT.vol)
    idio_scale = np.where(reg == 0, CALM.idio_scale, TURBULENT.idio_scale)

    beta = rng.uniform(0.5, 1.5, n_symbols)
    idio_vol = rng.uniform(0.006, 0.02, n_symbols)
    alpha = rng.normal(0.0, 0.0002, n_symbols)
    market = drift + vol * rng.standard_normal(n_bars)
    eps = rng.standard_normal((n_bars, n_symbols)) * (idio_scale[:, None] * idio_vol[None, :])
    r = alpha[None, :] + beta[None, :] * market[:, None] + eps
    sigma = np.sqrt((beta[None, :] * vol[:, None]) ** 2 + (idio_scale[:, None] * idio_vol) ** 2)

    p0 = rng.uniform(10.0, 500.0, n_symbols)
    close = p0[None, :] * np.exp(np.cumsum(r, axis=0))
    prev_close = np.vstack([p0[None, :], close[:-1]])
    gap = 0.25 * sigma * rng.standard_normal((n_bars, n_symbols))
    open_ = prev_close * np.exp(gap)
    wick_up = np.abs(rng.standard_normal((n_bars, n_symbols))) * 0.5 * sigma
    wick_dn = np.abs(rng.standard_normal((n_bars, n_symbols))) * 0.5 * sigma
    high = np.maximum(open_, close) * np.exp(wick_up)
    low = np.minimum(open_, close) * np.exp(-wick_dn)
    base_volume = rng.uniform(1e5, 5e6, n_symbols)
    surprise = np.abs(r) / sigma
    volume = np.round(
        base_volume[None, :] * np.exp(0.3 * rng.standard_normal((n_bars, n_symbols)) + 0.4 * surprise)
    )
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def symbol_names(n_symbols: int) -> list[str]:
    width = max(4, len(str(n_symbols - 1)))
    return [f"SYN{i:0{width}d}" for i in range(n_symbols)]


def timestamps(n_bars: int, start: str = "2007-01-01", freq: str = "B") -> pd.DatetimeIndex:
    """Bar close times in UTC (daily bars close at 21:00 UTC)."""
    idx = pd.date_range(start=start, periods=n_bars, freq=freq, tz="UTC")
    if freq in ("B", "D", "C"):
        idx = idx + pd.Timedelta(hours=21)
    return idx


def generate(
    n_symbols: int,
    n_bars: int,
    seed: int = 0,
    start: str = "2007-01-01",
    freq: str = "B",
) -> pa.Table:
    """A BARS table of ``n_symbols`` x ``n_bars``, symbol-major (all bars of one symbol, then
    the next), timestamps increasing within each symbol."""
    panel = generate_panel(n_symbols, n_bars, seed)
    ts = timestamps(n_bars, start, freq).as_unit("ns").asi8
    names = symbol_names(n_symbols)
    indices = np.repeat(np.arange(n_symbols, dtype=np.int32), n_bars)
    symbol = pa.DictionaryArray.from_arrays(pa.array(indices), pa.array(names, pa.string()))
    columns: list[pa.Array] = [symbol, pa.array(np.tile(ts, n_symbols), BARS.field("ts").type)]
    for k in ("open", "high", "low", "close", "volume"):
        columns.append(pa.array(panel[k].T.ravel()))
    return pa.Table.from_arrays(columns, schema=BARS)


class SyntheticSource(HistoricalSource):
    """The generator as a source (N symbols x T bars, seeded)."""

    def __init__(
        self,
        name: str,
        n_symbols: int = 20,
        n_bars: int = 2520,
        seed: int = 0,
        start: str = "2007-01-01",
        freq: str = "B",
        replay_speed: float = 0.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.n_symbols, self.n_bars, self.seed = n_symbols, n_bars, seed
        self.start, self.freq = start, freq
        self.replay_speed = replay_speed

    def parts(self) -> Iterator[tuple[str, pa.Table]]:
        yield self.name, generate(self.n_symbols, self.n_bars, self.seed, self.start, self.freq)
