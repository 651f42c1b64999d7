"""Training of the gradient-boosting agent: XGBoost on the same feature windows, predicting
the sign of the next bar's return (no Ray: it stays in the domain).

Inputs are the standardized window flattened to one row (window x features columns); the
label of the window ending at bar t is 1 when close t+1 > close t.  Labels come only from
the training window (``Series.between`` drops a label that needs a bar outside it).

Feedback: a retrain passes the training series with the agent's own realized outcomes
applied (``tinywindow.models.learning.apply_outcomes``): labels of traded bars are the sign
of the realized return, and ``weights`` (one array per series) are the sample weights,
``|reward|`` of the agent's own vote scaled to mean 1 and clipped to
``[1/outcome_weight_cap, outcome_weight_cap]``; rows without an outcome weigh 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xgboost as xgb

from tinywindow.errors import DataError
from tinywindow.models.params import XGBParams
from tinywindow.models.windows import Normalizer, Series, series_windows
from tinywindow.models.xgb.inference import XGBPredictor, flatten

RoundHook = Callable[[int, XGBPredictor], bool | None]


def train_xgb(
    series: Sequence[Series],
    normalizer: Normalizer,
    window: int,
    params: XGBParams,
    seed: int,
    weights: Sequence[np.ndarray] | None = None,
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
    w = None
    if weights is not None:
        w = np.concatenate([np.asarray(wt, dtype=np.float64)[u] for wt, u in zip(weights, used, strict=True)])
    dtrain = xgb.DMatrix(x, label=y, weight=w, nthread=threads)
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
        "weighted_rows": 0 if w is None else int((w != 1.0).sum()),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return XGBPredictor(booster, normalizer, window, model_config), stats
