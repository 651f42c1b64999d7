"""Feature build at Qlib's published dataset-job size, cold, vs a per-symbol pandas/ta peer.

Qlib's README reports 147 s uncached and 7.4 s with its caches for 800 symbols x 2007-2020
daily x 14 features; Qlib itself is not run here (it needs its own binary data dump), so the
peer measured in this run is the straightforward implementation a researcher would write:
pandas groupby per symbol with the ``ta`` package.  Both build the same 14 features on the
same synthetic bars.

    python bench/features.py [--symbols 800] [--peer-symbols 800]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinywindow.cli._tables import table
from tinywindow.data import features
from tinywindow.data.sources.synthetic import generate


def peer_features(df: pd.DataFrame) -> pd.DataFrame:
    """The same 14 features, one symbol at a time, pandas + ta."""
    import ta

    def one(g: pd.DataFrame) -> pd.DataFrame:
        c, h, lo, v = g["close"], g["high"], g["low"], g["volume"]
        logc = np.log(c)
        r1 = logc.diff()
        m = ta.trend.MACD(c)
        sma = c.rolling(20).mean()
        return pd.DataFrame(
            {
                "ret_1": r1,
                "ret_5": logc.diff(5),
                "ret_20": logc.diff(20),
                "ret_60": logc.diff(60),
                "vol_20": r1.rolling(20).std(),
                "rsi_14": ta.momentum.RSIIndicator(c, 14).rsi(),
                "macd": m.macd() / c,
                "macd_signal": m.macd_signal() / c,
                "macd_hist": m.macd_diff() / c,
                "bb_pctb_20": ta.volatility.BollingerBands(c, 20, 2).bollinger_pband(),
                "atr_14": ta.volatility.AverageTrueRange(h, lo, c, 14).average_true_range() / c,
                "volume_z_20": (v - v.rolling(20).mean()) / v.rolling(20).std(),
                "hl_range": (h - lo) / c,
                "sma_ratio_20": c / sma - 1,
            },
            index=g.index,
        ).astype(np.float32)

    return df.groupby("symbol", observed=True, group_keys=False)[["close", "high", "low", "volume"]].apply(one)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=800)
    ap.add_argument("--peer-symbols", type=int, default=800)
    args = ap.parse_args()
    n_bars = len(pd.bdate_range("2007-01-01", "2020-12-31"))
    bars = generate(args.symbols, n_bars, seed=0)
    cells = bars.num_rows * len(features.FEATURE_NAMES)

    t0 = time.perf_counter()
    ours = features.compute(bars)  # cold: first call in this process
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    features.compute(bars)
    warm_s = time.perf_counter() - t0

    peer_bars = bars.slice(0, args.peer_symbols * n_bars)
    df = peer_bars.to_pandas()
    t0 = time.perf_counter()
    peer = peer_features(df)
    peer_s = time.perf_counter() - t0
    scale = args.symbols / args.peer_symbols
    # agreement on the peer's rows (after warm-up)
    a = ours.slice(0, peer_bars.num_rows).drop(["symbol", "ts"]).to_pandas().to_numpy(np.float64)
    b = peer[list(features.FEATURE_NAMES)].to_numpy(np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    max_rel = float(np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-3)))

    rows = [
        ["tinywindow (cold)", args.symbols, n_bars, len(features.FEATURE_NAMES), round(ours_s, 3), cells / ours_s / 1e6],
        ["tinywindow (warm)", args.symbols, n_bars, len(features.FEATURE_NAMES), round(warm_s, 3), cells / warm_s / 1e6],
        ["pandas groupby + ta (peer)", args.peer_symbols, n_bars, len(features.FEATURE_NAMES), round(peer_s, 3),
         peer_bars.num_rows * 14 / peer_s / 1e6],
        ["Qlib, uncached (published)", 800, "2007-2020", 14, 147.0, None],
        ["Qlib, cached (published)", 800, "2007-2020", 14, 7.4, None],
    ]
    print(f"Feature build, {bars.num_rows:,} bars ({args.symbols} symbols x {n_bars} days), 2 cores")
    print(table(rows, ["implementation", "symbols", "bars/symbol", "features", "seconds", "M values/s"]))
    print(f"\nspeed-up vs peer (same rows): {peer_s * scale / ours_s:.1f}x; max relative difference vs peer: {max_rel:.2e}")
    print(json.dumps({
        "feature_build_s": round(ours_s, 4),
        "feature_build_warm_s": round(warm_s, 4),
        "peer_pandas_ta_s": round(peer_s * scale, 2),
        "speedup_vs_peer": round(peer_s * scale / ours_s, 1),
    }))


if __name__ == "__main__":
    main()
