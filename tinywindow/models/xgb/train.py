"""Training of the gradient-boosting agent: XGBoost on the same feature windows, predicting
the sign of the next bar's return (no Ray: it stays in the domain).

Inputs are the standardized window flattened to one row (window x features columns); the
label of the window ending at bar t is 1 when close t+1 > close t.  Labels come only from
the training window (``Series.between`` drops a label that needs a bar outside it).

Feedback: once realized outcomes exist for training rows, their sample weight is
|realized return| / mean |realized return| over the matched rows, clipped to
[1/cap, cap]; rows without an outcome weigh 1.  Misclassifying the sign on a day that
moved a lot costs more than on a quiet day, so weighting by the size of the realized move
makes the classifier's loss track trading P&L (cost-sensitive classification).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import xgboost as xgb

from tinywindow.errors import DataError
from tinywindow.models.params import XGBParams
from tinywindow.models.windows import Normalizer, Series, series_windows
from tinywindow.models.xgb.inference import XGBPredictor, flatten


def outcome_weights(
    keys: pd.MultiIndex, outcomes: pa.Table | None, cap: float
) -> tuple[np.ndarray, int]:
    """Sample weights for training rows keyed by (symbol, ts ns) and how many matched."""
    w = np.ones(len(keys), dtype=np.float64)
    if outcomes is None or outcomes.num_rows == 0:
        return w, 0
    sym = outcomes.column("symbol")
    if pa.types.is_dictionary(sym.type):
        sym = sym.cast(sym.type.value_type)
    frame = pd.DataFrame(
        {
            "symbol": sym.to_numpy(zero_copy_only=False),
            "ts": outcomes.column("ts").cast(pa.int64()).to_numpy(),
            "size": np.abs(outcomes.column("realized_return").to_numpy()),
        }
    )
    frame = frame[np.isfinite(frame["size"])].groupby(["symbol", "ts"], sort=False)["size"].mean()
    pos = frame.index.get_indexer(keys)
    hit = pos >= 0
    if not hit.any():
        return w, 0
    size = frame.to_numpy()[pos[hit]]
    mean = size.mean()
    scaled = size / mean if mean > 0 else np.ones_like(size)
    w[hit] = np.clip(scaled, 1.0 / cap, cap)
    return w, int(hit.sum())


RoundHook = Callable[[int, XGBPredictor], bool | None]


def train_xgb(
    series: Sequence[Series],
    normalizer: Normalizer,
    window: int,
    params: XGBParams,
    seed: int,
    outcomes: pa.Table | None = None,
    threads: int = 1,
    on_round: RoundHook | None = None,
    report_every: int = 25,
) -> tuple[XGBPredictor, dict[str, Any]]:
    """Fit the booster on every labelled window of ``series`` (cut to the training window).

    ``on_round(rounds_done, predictor)`` runs every ``report_every`` rounds (Tune reports
    there) and stops training early by returning True.
    """
    windows, fwd, used = series_windows(series, normalizer, window)
    if len(windows) < 50:
        raise DataError(f"only {len(windows)} labelled windows to train XGBoost on (need >= 50)")
    x = flatten(windows)
    y = (fwd > 0).astype(np.float32)
    keys = pd.MultiIndex.from_arrays(
        [
            np.concatenate([np.full(len(u), s.symbol, dtype=object) for s, u in zip(series, used, strict=True)]),
            np.concatenate([s.ts[u] for s, u in zip(series, used, strict=True)]),
        ]
    )
    weights, matched = outcome_weights(keys, outcomes, params.outcome_weight_cap)
    dtrain = xgb.DMatrix(x, label=y, weight=weights, nthread=threads)
    booster_params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": params.max_depth,
        "eta": params.eta,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "lambda": params.reg_lambda,
        "seed": seed,
        "nthread": threads,
    }
    model_config = params.model_dump()
    t0 = time.perf_counter()
    booster: xgb.Booster | None = None
    done = 0
    while done < params.rounds:
        step = min(report_every if on_round is not None else params.rounds, params.rounds - done)
        booster = xgb.train(booster_params, dtrain, num_boost_round=step, xgb_model=booster)
        done += step
        if on_round is not None and on_round(done, XGBPredictor(booster, normalizer, window, model_config)):
            break
    assert booster is not None
    booster.set_param({"nthread": 1})
    stats = {
        "rows": len(y),
        "up_fraction": round(float(y.mean()), 4),
        "rounds": done,
        "outcomes_matched": matched,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return XGBPredictor(booster, normalizer, window, model_config), stats
