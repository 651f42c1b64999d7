"""The cross-sectional gradient-boosting agent: rank the symbols of each bar.

Features are first replaced per bar by their cross-sectional rank-gaussian values
(``models.xs.xs_normalize``), then windowed and flattened like ``XGBPredictor``'s.  Training
groups the rows by bar (XGBoost query groups, ``qid``): the label is the bar's rank of the
forward return, in ``LEVELS`` relevance grades 0..LEVELS-1 for the ranking objectives
(``rank:pairwise``, ``rank:ndcg``: XGBoost wants small integer grades) or its per-bar z-score
for ``reg:squarederror``.

Votes (``XGBXSPredictor.predict``), per bar among the symbols of that ts in the batch:

* ``score``: the booster's margin, z-scored across the bar's symbols (0 for a lone symbol),
  so scores of different agents are on one scale;
* ``action``: +1 for the top third of the bar's ranking (rank percentile p = (rank - 0.5) / n
  above 2/3), -1 for the bottom third (p below 1/3), 0 between; a lone symbol gets 0;
* ``confidence``: 0.5 + |p - 0.5|, in [0.5, 1): how far from the middle of the bar the symbol
  ranks (0.5 at the median, near 1 at either end).

The booster is stored as UBJSON (``booster.ubj``): loading executes no pickle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import xgboost as xgb

from tinywindow.errors import DataError, ModelError
from tinywindow.models.params import XGBParams
from tinywindow.models.predictor import BATCH_ROWS, BOOSTER_FILE, Predictor
from tinywindow.models.windows import Normalizer, Series, WindowIndex, series_windows
from tinywindow.models.xgb.inference import flatten
from tinywindow.models.xs import group_ranks, rank_gauss, xs_normalize

LEVELS = 5  # relevance grades of the ranking label (quintiles of the bar's forward return)
PAIRS_PER_ROW = 4  # lambdarank_num_pair_per_sample ("mean" pair sampling over the whole bar)


class XGBXSPredictor(Predictor):
    kind = "xgboost_xs"
    ranks_across_symbols = True

    def __init__(
        self,
        booster: xgb.Booster,
        normalizer: Normalizer,
        window: int,
        model_config: dict[str, Any],
        version: str = "candidate",
        agent: str = "xgboost",
    ) -> None:
        self.agent = agent
        self.booster = booster
        self.normalizer = normalizer
        self.window = window
        self.model_config = {**dict(model_config), "cross_sectional": True}
        self.version = version

    def margins(self, windows: np.ndarray) -> np.ndarray:
        """Raw booster output for [B, window, F] windows (higher = ranked higher)."""
        out = self.booster.inplace_predict(flatten(windows), predict_type="margin")
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        raise ModelError("a cross-sectional ranker has no per-window probabilities: use predict")

    def window_scores(self, windows: np.ndarray) -> np.ndarray:
        return self.margins(windows)

    def predict(
        self, features: pa.Table, *, latest_only: bool = False, batch_rows: int = BATCH_ROWS
    ) -> pa.Table:
        """VOTES ranked within each bar (see the module doc)."""
        if isinstance(features, pa.RecordBatch):
            features = pa.Table.from_batches([features])
        if not isinstance(features, pa.Table):
            raise ModelError(f"predict expects a FEATURES pyarrow Table, got {type(features).__name__}")
        features = xs_normalize(features, self.normalizer.names)
        index = WindowIndex.build(features, self.normalizer, self.window, latest_only)
        n = len(index)
        margin = np.empty(n, dtype=np.float64)
        for lo in range(0, n, batch_rows):
            hi = min(lo + batch_rows, n)
            margin[lo:hi] = self.margins(index.batch(lo, hi))
        ts = features.column("ts").cast(pa.int64()).to_numpy()[index.rows]
        action, confidence, score = xs_decisions(ts, margin)
        probs = np.repeat(((1.0 - confidence) / 2.0)[:, None], 3, axis=1).astype(np.float32)
        probs[np.arange(n), action + 1] = confidence
        return self.votes(features, index.rows, probs, score)

    def _save_weights(self, directory: Path) -> None:
        self.booster.save_model(str(directory / BOOSTER_FILE))

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], normalizer: Normalizer, version: str) -> XGBXSPredictor:
        booster = xgb.Booster()
        try:
            booster.load_model(str(directory / BOOSTER_FILE))
        except xgb.core.XGBoostError as exc:
            raise ModelError(f"cannot load booster of xgboost_xs {version}: {exc}") from None
        booster.set_param({"nthread": 1})
        return cls(booster, normalizer, int(meta["window"]), dict(meta["model_config"]), version)


def xs_decisions(ts: np.ndarray, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar action (top / bottom third), confidence and z-scored margin (module doc)."""
    n = len(margin)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0)
    groups = np.unique(ts, return_inverse=True)[1].reshape(-1)
    ranks, counts = group_ranks(groups, margin)
    p = (ranks - 0.5) / counts
    action = np.where(p > 2.0 / 3.0, 1, np.where(p < 1.0 / 3.0, -1, 0)).astype(np.int64)
    action[counts < 2] = 0
    confidence = (0.5 + np.abs(p - 0.5)).astype(np.float32)
    size = np.bincount(groups).astype(np.float64)
    mean = np.bincount(groups, margin) / size
    dev = margin - mean[groups]
    sd = np.sqrt(np.bincount(groups, dev * dev) / size)[groups]
    score = np.where(sd > 1e-12, dev / np.where(sd > 1e-12, sd, 1.0), 0.0)
    return action, confidence, score


def xs_series(series: Sequence[Series]) -> list[Series]:
    """``series`` with every feature replaced per ts by its rank-gaussian value across these
    series (the same transform as ``xs_normalize``; idempotent, so already-normalised series
    come back unchanged)."""
    if not series:
        return []
    ts = np.concatenate([s.ts for s in series])
    groups = np.unique(ts, return_inverse=True)[1].reshape(-1)
    x = np.concatenate([s.x for s in series], axis=0)
    z = np.empty_like(x, dtype=np.float32)
    for j in range(x.shape[1]):
        z[:, j] = rank_gauss(groups, x[:, j])
    cuts = np.cumsum([len(s) for s in series])[:-1]
    return [Series(s.symbol, s.ts, part, s.fwd_ret) for s, part in zip(series, np.split(z, cuts), strict=True)]


def xs_labels(qid: np.ndarray, fwd: np.ndarray, objective: str) -> np.ndarray:
    """Per-bar label: rank grade 0..LEVELS-1 (ranking objectives) or z-score (regression)."""
    if objective.startswith("rank:"):
        ranks, counts = group_ranks(qid, fwd)
        grade = np.floor(LEVELS * (ranks - 0.5) / counts)
        return np.clip(grade, 0, LEVELS - 1).astype(np.float32)
    size = np.bincount(qid).astype(np.float64)
    mean = np.bincount(qid, fwd) / size
    dev = fwd - mean[qid]
    sd = np.sqrt(np.bincount(qid, dev * dev) / size)[qid]
    return np.where(sd > 0, dev / np.where(sd > 0, sd, 1.0), 0.0).astype(np.float32)


RoundHook = Callable[[int, XGBXSPredictor], bool | None]


def train_xgb_xs(
    series: Sequence[Series],
    normalizer: Normalizer,
    window: int,
    params: XGBParams,
    seed: int,
    weights: Sequence[np.ndarray] | None = None,
    threads: int = 1,
    on_round: RoundHook | None = None,
    report_every: int = 25,
) -> tuple[XGBXSPredictor, dict[str, Any]]:
    """Fit the cross-sectional booster on every labelled window of ``series``.

    The series (raw or already xs-normalised: the transform is idempotent) are rank-gaussed
    per bar across all of them; the scaler is refitted on those values with
    ``normalizer.names`` (a scaler fitted on raw features would clip the ranks).  ``weights``
    are per row as in ``train_xgb``; the ranking objectives weigh query groups, so each bar
    gets the mean weight of its rows.  ``on_round`` as in ``train_xgb``.
    """
    objective = params.xs_objective
    xs = xs_series(series)
    rows = [s.x for s in xs if len(s)]
    if not rows:
        raise DataError("no rows to train the cross-sectional XGBoost agent on")
    scaler = Normalizer.fit(normalizer.names, np.concatenate(rows, axis=0))
    windows, fwd, used = series_windows(xs, scaler, window)
    if len(windows) < 50:
        raise DataError(f"only {len(windows)} labelled windows to train cross-sectional XGBoost on (need >= 50)")
    ts = np.concatenate([s.ts[u] for s, u in zip(xs, used, strict=True)])
    order = np.argsort(ts, kind="stable")  # XGBoost wants the rows sorted by query group
    qid = np.unique(ts[order], return_inverse=True)[1].reshape(-1).astype(np.int64)
    n_bars = int(qid.max()) + 1
    per_bar = len(qid) / n_bars
    if per_bar < 2.0:
        raise DataError(
            f"cross-sectional XGBoost needs >= 2 symbols per bar on average, got {per_bar:.2f} "
            f"({len(qid)} labelled rows over {n_bars} bars): train it on a universe, not one symbol"
        )
    x = flatten(windows)[order]
    fwd = fwd[order]
    y = xs_labels(qid, fwd, objective)
    w = None
    if weights is not None:
        w_rows = np.concatenate([np.asarray(wt, dtype=np.float64)[u] for wt, u in zip(weights, used, strict=True)])[order]
        w = np.bincount(qid, w_rows) / np.bincount(qid) if objective.startswith("rank:") else w_rows
    ranking = objective.startswith("rank:")
    dtrain = xgb.DMatrix(x, label=y, weight=w, qid=qid if ranking else None, nthread=threads)
    booster_params: dict[str, Any] = {
        "objective": objective,
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
    if ranking:
        booster_params.update(
            eval_metric="ndcg",
            lambdarank_pair_method="mean",
            lambdarank_num_pair_per_sample=PAIRS_PER_ROW,
        )
    else:
        booster_params["eval_metric"] = "rmse"
    model_config = {**params.model_dump(), "objective": objective, "cross_sectional": True}
    t0 = time.perf_counter()
    booster: xgb.Booster | None = None
    done = 0
    while done < params.rounds:
        step = min(report_every if on_round is not None else params.rounds, params.rounds - done)
        booster = xgb.train(booster_params, dtrain, num_boost_round=step, xgb_model=booster)
        done += step
        if on_round is not None and on_round(done, XGBXSPredictor(booster, scaler, window, model_config)):
            break
    assert booster is not None
    booster.set_param({"nthread": 1})
    stats = {
        "rows": len(y),
        "bars": n_bars,
        "symbols_per_bar": round(per_bar, 2),
        "objective": objective,
        "rounds": done,
        "weighted_rows": 0 if weights is None else int((np.asarray(w) != 1.0).sum()),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return XGBXSPredictor(booster, scaler, window, model_config), stats
