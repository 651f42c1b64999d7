"""Explained decisions: which (feature, lag) cells of its window made an agent vote as it did.

``explain(predictor, features, keys)`` explains only the requested (symbol, ts) decisions
(the ones that trade: explanations are not computed for every vote) on exactly the windows
``predict`` scored (``Predictor.windows_for``: the same scaler and, for a cross-sectional
model, the same per-ts ranks), and returns an EXPLANATIONS table: each decision's ``top_k``
cells by |contribution|, rank 1 first.

* XGBoost (``XGBPredictor``, ``XGBXSPredictor``): exact tree SHAP, the booster's
  ``pred_contribs`` on the flattened windows.  Per window the contributions plus the bias
  column sum to the margin (log-odds of an up move, or the ranker's score).
* Torch agents (``RLPredictor``): captum's integrated gradients of the chosen action's logit
  from an all-zero baseline (every feature at its training mean after scaling), ``n_steps``
  Gauss-Legendre points.  The attributions sum to logit(x) - logit(baseline) up to captum's
  convergence delta.

A contribution is signed towards the agent's vote: positive = pushed towards the action it
voted (for the binary booster, the raw SHAP value times the vote's sign; for the ranker,
towards the end of the ranking the action is at; for IG, towards the chosen logit).
Window column j (position i = j // F from the oldest row, feature j % F) is the feature at
lag ``window - 1 - i`` bars before the decision bar.  Everything is deterministic: the same
model and features give the same explanations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from tinywindow.contracts import EXPLANATIONS
from tinywindow.errors import ModelError
from tinywindow.models.predictor import Predictor
from tinywindow.models.windows import symbol_strings

IG_STEPS = 32  # Gauss-Legendre points: completeness within a few % of the logit gap, ~ms per decision
Key = tuple[str, int]  # (symbol, ts in ns since the epoch, UTC)


def explain(
    predictor: Predictor,
    features: pa.Table,
    keys: Sequence[Key],
    top_k: int = 5,
    *,
    n_steps: int = IG_STEPS,
) -> pa.Table:
    """EXPLANATIONS of ``predictor``'s votes on the ``keys`` rows of ``features`` (module
    doc).  A key with no row, or whose row does not end a full window (no vote), is skipped."""
    features = predictor.prepared(features)
    rows = key_rows(features, keys)
    windows, rows = predictor.windows_for(features, rows)
    if len(rows) == 0 or top_k < 1:
        return EXPLANATIONS.empty_table()
    contrib = signed_contributions(predictor, features, windows, rows, n_steps)
    return top_table(predictor, features, rows, contrib, top_k)


def key_rows(features: pa.Table, keys: Sequence[Key]) -> np.ndarray:
    """Input row numbers of ``keys`` (first occurrence of each, in the order asked)."""
    symbols = symbol_strings(features)
    ts = features.column("ts").cast(pa.int64()).to_numpy()
    at = {(str(s), int(t)): i for i, (s, t) in reversed(list(enumerate(zip(symbols, ts, strict=True))))}
    out = dict.fromkeys(at[k] for k in ((str(s), int(t)) for s, t in keys) if k in at)
    return np.fromiter(out, dtype=np.int64, count=len(out))


def signed_contributions(
    predictor: Predictor, features: pa.Table, windows: np.ndarray, rows: np.ndarray, n_steps: int = IG_STEPS
) -> np.ndarray:
    """[n, window * F] contributions towards each vote (module doc)."""
    from tinywindow.models.rl.inference import RLPredictor
    from tinywindow.models.xgb.inference import XGBPredictor, flatten
    from tinywindow.models.xgb.xs import XGBXSPredictor

    if isinstance(predictor, XGBXSPredictor):
        raw = tree_contributions(predictor.booster, flatten(windows))[:, :-1]
        return raw * ranker_sides(predictor, features, rows)[:, None]
    if isinstance(predictor, XGBPredictor):
        raw = tree_contributions(predictor.booster, flatten(windows))
        side = np.where(raw.sum(axis=1) > 0.0, 1.0, -1.0)  # the vote: up iff p > 0.5 (margin > 0)
        return raw[:, :-1] * side[:, None]
    if isinstance(predictor, RLPredictor):
        attr, _delta, _action = integrated_gradients(predictor, windows, n_steps)
        return attr.reshape(len(attr), -1)
    raise ModelError(f"no explainer for {type(predictor).__name__} ({predictor.kind or 'unknown kind'})")


def tree_contributions(booster: object, flat: np.ndarray) -> np.ndarray:
    """[n, columns + 1] exact tree SHAP values in margin units, the bias last: each row sums
    to the booster's margin for that input."""
    import xgboost as xgb

    assert isinstance(booster, xgb.Booster)
    out = booster.predict(xgb.DMatrix(flat, nthread=1), pred_contribs=True)
    return np.asarray(out, dtype=np.float64).reshape(len(flat), -1)


def ranker_sides(predictor: Predictor, features: pa.Table, rows: np.ndarray) -> np.ndarray:
    """+1 / -1 per row: the direction of the cross-sectional ranker's action on that row
    (ranked up for +1 and for a middle 0, down for -1), from its bar's ranking as
    ``XGBXSPredictor.predict`` decides it (every symbol of the bar that has a window)."""
    from tinywindow.models.xgb.xs import XGBXSPredictor, xs_decisions

    assert isinstance(predictor, XGBXSPredictor)
    ts = features.column("ts").cast(pa.int64()).to_numpy()
    bar_rows = np.flatnonzero(np.isin(ts, ts[rows]))
    windows, bar_rows = predictor.windows_for(features, bar_rows)
    action, _conf, _score = xs_decisions(ts[bar_rows], predictor.margins(windows))
    side = dict(zip(bar_rows.tolist(), np.where(action < 0, -1.0, 1.0).tolist(), strict=True))
    return np.array([side[int(r)] for r in rows])


def integrated_gradients(
    predictor: Predictor, windows: np.ndarray, n_steps: int = IG_STEPS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IG of each window's chosen-action logit from a zero baseline: attributions
    [n, window, F], captum's convergence deltas [n] (sum of attributions minus the logit
    gap) and the chosen actions [n] (0, 1, 2 for -1, 0, +1)."""
    import torch
    from captum.attr import IntegratedGradients

    module = getattr(predictor, "module", None)
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{type(predictor).__name__} has no torch module to explain")
    x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
    with torch.no_grad():
        action = module(x).argmax(dim=-1)
    ig = IntegratedGradients(module)
    attr, delta = ig.attribute(
        x, baselines=torch.zeros_like(x), target=action, n_steps=n_steps, return_convergence_delta=True
    )
    return attr.detach().numpy().astype(np.float64), delta.detach().numpy(), action.numpy()


def column_cells(window: int, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Feature name and lag of every flattened window column (module doc)."""
    f = len(names)
    j = np.arange(window * f)
    return np.asarray(names, dtype=object)[j % f], (window - 1 - j // f).astype(np.int16)


def top_table(
    predictor: Predictor, features: pa.Table, rows: np.ndarray, contrib: np.ndarray, top_k: int
) -> pa.Table:
    """EXPLANATIONS: per row the ``top_k`` columns by |contribution| (ties: earlier column)."""
    n, c = contrib.shape
    k = min(top_k, c)
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
    names, lags = column_cells(predictor.window, predictor.normalizer.names)
    keys = features.select(["symbol", "ts"]).take(pa.array(np.repeat(rows, k), pa.int64()))
    flat = order.reshape(-1)
    values = np.take_along_axis(contrib, order, axis=1).reshape(-1)
    m = n * k
    return pa.Table.from_arrays(
        [
            keys.column("symbol"),
            keys.column("ts"),
            pa.array([predictor.agent] * m, pa.string()),
            pa.array([predictor.version] * m, pa.string()),
            pa.array(names[flat].tolist(), pa.string()),
            pa.array(lags[flat]),
            pa.array(values.astype(np.float32)),
            pa.array(np.tile(np.arange(1, k + 1, dtype=np.int8), n)),
        ],
        schema=EXPLANATIONS,
    )


def explanation_records(table: pa.Table) -> dict[Key, list[dict[str, object]]]:
    """EXPLANATIONS as JSON-ready lists per (symbol, ts_ns), rank order (for the gateway)."""
    out: dict[Key, list[dict[str, object]]] = {}
    if table.num_rows == 0:
        return out
    table = table.sort_by([("ts", "ascending"), ("agent", "ascending"), ("rank", "ascending")])
    symbols = symbol_strings(table)
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    cols = {c: table.column(c).to_pylist() for c in ("agent", "model_version", "feature", "lag", "contribution", "rank")}
    for i, (s, t) in enumerate(zip(symbols, ts, strict=True)):
        out.setdefault((str(s), int(t)), []).append(
            {
                "agent": cols["agent"][i],
                "feature": cols["feature"][i],
                "lag": cols["lag"][i],
                "contribution": round(float(cols["contribution"][i]), 6),
                "rank": cols["rank"][i],
            }
        )
    return out
