"""Real market data shipped inside installed packages, loaded offline.

* ``sp500``, ``nasdaq``: S&P 500 and NASDAQ Composite daily OHLCV 1999-2018 (``arch``).
* ``goog``: Alphabet daily OHLCV 2004-2013 (``backtesting``).
* ``btcusd``: Bitcoin/USD monthly OHLCV 2012-2024 (``backtesting``).

Daily equity bars are stamped at the 16:00 New York close (converted to UTC), so a bar's
timestamp is when its close became known; monthly BTC bars at the end of their last day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from tinywindow.data.base import HistoricalSource, bars_from_frame
from tinywindow.errors import DataError


def _arch(name: str) -> pd.DataFrame:
    import importlib

    return importlib.import_module(f"arch.data.{name}").load()


def _backtesting(name: str) -> pd.DataFrame:
    from backtesting import test

    return getattr(test, name).copy()


@dataclass(frozen=True)
class Dataset:
    symbol: str
    description: str
    loader: Callable[[], pd.DataFrame]
    close_time: str  # "nyse" (16:00 America/New_York) or "eod" (24:00 UTC)


DATASETS: dict[str, Dataset] = {
    "sp500": Dataset("SP500", "S&P 500 index, daily 1999-2018 (arch)", lambda: _arch("sp500"), "nyse"),
    "nasdaq": Dataset("NASDAQ", "NASDAQ Composite, daily 1999-2018 (arch)", lambda: _arch("nasdaq"), "nyse"),
    "goog": Dataset("GOOG", "Alphabet (Google), daily 2004-2013 (backtesting)", lambda: _backtesting("GOOG"), "nyse"),
    "btcusd": Dataset("BTCUSD", "Bitcoin/USD, monthly 2012-2024 (backtesting)", lambda: _backtesting("BTCUSD"), "eod"),
}


def load_dataset(key: str) -> pa.Table:
    """One bundled dataset as a BARS table (not yet validated)."""
    if key not in DATASETS:
        raise DataError(f"unknown bundled dataset {key!r} (have: {', '.join(DATASETS)})", source="bundled")
    ds = DATASETS[key]
    raw = ds.loader()
    df = pd.DataFrame(
        {
            "open": raw["Open"],
            "high": raw["High"],
            "low": raw["Low"],
            "close": raw["Close"],
            "volume": raw["Volume"],
        }
    )
    dates = pd.DatetimeIndex(raw.index).normalize()
    if ds.close_time == "nyse":
        stamped = (dates + pd.Timedelta(hours=16)).tz_localize("America/New_York")
    else:
        stamped = (dates + pd.Timedelta(days=1)).tz_localize("UTC")
    df.index = stamped.tz_convert("UTC")
    return bars_from_frame(df, ds.symbol)


class BundledSource(HistoricalSource):
    """Any subset of the bundled datasets as one source."""

    def __init__(self, name: str, datasets: Sequence[str] = ("sp500", "nasdaq", "goog"),
                 on_bad_rows: str = "reject", replay_speed: float = 0.0) -> None:
        super().__init__()
        self.name = name
        self.datasets = list(datasets) or list(DATASETS)
        for key in self.datasets:
            if key not in DATASETS:
                raise DataError(f"unknown bundled dataset {key!r} (have: {', '.join(DATASETS)})", source=name)
        self.on_bad_rows = on_bad_rows
        self.replay_speed = replay_speed

    def parts(self) -> Iterator[tuple[str, pa.Table]]:
        for key in self.datasets:
            yield f"{self.name}:{key}", load_dataset(key)
