"""Synthetic FEATURES tables for agent tests: a planted, learnable signal.

Feature ``signal`` at bar t is the sign of the return from t to t+1 (a perfect, causal
forecast only because the generator plants it); the other features are noise.  A model
that learns anything should follow ``signal``; a model that cannot learn stays near 50%.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tinywindow.contracts import features_schema

NAMES = ("ret_1", "signal", "noise_a", "noise_b")
SCHEMA = features_schema(NAMES)


def planted_features(
    n_symbols: int = 3, n_bars: int = 400, seed: int = 0, warmup: int = 5, strength: float = 0.01
) -> pa.Table:
    rng = np.random.default_rng(seed)
    symbols, ts, cols = [], [], {n: [] for n in NAMES}
    start = np.datetime64("2010-01-04T21:00:00", "ns").astype(np.int64)
    day = np.int64(86_400 * 10**9)
    for k in range(n_symbols):
        s = rng.choice([-1.0, 1.0], size=n_bars)
        r = np.empty(n_bars)
        r[0] = 0.0
        r[1:] = strength * s[:-1] + 0.002 * rng.standard_normal(n_bars - 1)  # r[t+1] follows s[t]
        ret_1 = np.log1p(r)
        feats = {
            "ret_1": ret_1,
            "signal": s,
            "noise_a": rng.standard_normal(n_bars),
            "noise_b": rng.standard_normal(n_bars),
        }
        for name in NAMES:
            v = feats[name].astype(np.float32)
            v[:warmup] = np.nan
            cols[name].append(v)
        symbols += [f"SYM{k}"] * n_bars
        ts.append(start + day * np.arange(n_bars, dtype=np.int64))
    arrays = [
        pa.array(symbols, pa.string()).dictionary_encode(),
        pa.array(np.concatenate(ts), pa.timestamp("ns", tz="UTC")),
        *(pa.array(np.concatenate(cols[n])) for n in NAMES),
    ]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
