"""One inference contract for every agent: ``predict(FEATURES) -> VOTES``.

A ``Predictor`` is a trained model plus what it needs to read features: the window length,
the feature names and the scaler fitted on its training window.  ``predict`` builds the
window ending at every row of every symbol at once (a strided view, no loop per row), runs
the model in batches and turns its probabilities over {-1, 0, +1} into votes:
``action`` = the most probable exposure, ``confidence`` = its probability.

Rows without a full window of finite features (a symbol's first ``window - 1`` rows, the
feature warm-up) get **no vote**: VOTES holds one row per input row that ends a full window,
in input order.  ``latest_only=True`` votes only on each symbol's newest row (the live path).

The RL predictors (``rl.inference``) run a plain torch policy and the XGBoost predictor
(``xgb.inference``) the booster: no Ray or RLlib on the serving path.  ``save`` writes plain
files (JSON, a torch ``state_dict`` loaded with ``weights_only=True``, the booster's UBJSON),
so loading executes no pickle even before the registry has verified the signature;
``loading.load_dir`` reads them back.  The registry seals each file (encrypted and signed,
``crypto.sealed``) before it is stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tinywindow.contracts import VOTES
from tinywindow.errors import ModelError
from tinywindow.models.windows import Normalizer, WindowIndex, windows_view
from tinywindow.models.xs import xs_normalize

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"
BOOSTER_FILE = "booster.ubj"
FORMAT = "tinywindow.agent/1"
BATCH_ROWS = 4096  # windows per forward pass (bounds the gathered copy to a few MB)


class Predictor:
    """Base class: subclasses implement ``probabilities`` and ``_save_weights``."""

    kind: str = ""  # "ppo" | "xgboost" | "xgboost_xs": how ``loading.load_dir`` rebuilds the model
    agent: str
    version: str
    window: int
    normalizer: Normalizer
    model_config: dict[str, Any]

    # True for a model whose vote on a symbol depends on the other symbols of the bar (a
    # ranker): offline evaluation then ranks ``window_scores`` per bar (``xgb.xs.xs_decisions``)
    ranks_across_symbols: bool = False

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """[B, 3] probabilities of exposures (-1, 0, +1) for [B, window, F] windows."""
        raise NotImplementedError

    def window_scores(self, windows: np.ndarray) -> np.ndarray:
        """[B] scores of [B, window, F] (scaled) windows: the expected exposure P(+1) - P(-1)
        unless the model scores otherwise (a ranker's margin)."""
        probs = self.probabilities(windows)
        return np.asarray(probs[:, 2] - probs[:, 0], dtype=np.float64)

    # ------------------------------------------------------------------ inference
    def predict(
        self, features: pa.Table, *, latest_only: bool = False, batch_rows: int = BATCH_ROWS
    ) -> pa.Table:
        """VOTES for every row of ``features`` that ends a full window (see module doc)."""
        features = self.prepared(features)
        index = WindowIndex.build(features, self.normalizer, self.window, latest_only)
        n = len(index)
        probs = np.empty((n, 3), dtype=np.float32)
        for lo in range(0, n, batch_rows):
            hi = min(lo + batch_rows, n)
            probs[lo:hi] = self.probabilities(index.batch(lo, hi))
        return self.votes(features, index.rows, probs)

    def prepared(self, features: pa.Table) -> pa.Table:
        """``features`` as the model reads them: a Table, cross-sectionally normalised when
        the model is (per-ts ranks, ``models.xs``)."""
        if not isinstance(features, pa.Table):
            if isinstance(features, pa.RecordBatch):
                features = pa.Table.from_batches([features])
            else:
                raise ModelError(f"predict expects a FEATURES pyarrow Table, got {type(features).__name__}")
        if self.model_config.get("cross_sectional"):
            features = xs_normalize(features, self.normalizer.names)
        return features

    def windows_for(self, features: pa.Table, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scaled [n, window, F] windows ``predict`` scores for those input ``rows`` that
        end a full window, and which rows they are (in the order asked)."""
        index = WindowIndex.build(self.prepared(features), self.normalizer, self.window)
        where = {int(r): i for i, r in enumerate(index.rows)}
        found = np.array([int(r) for r in rows if int(r) in where], dtype=np.int64)
        ends = index.ends[[where[int(r)] for r in found]]
        view = windows_view(index.z, self.window)
        return np.ascontiguousarray(view[ends - (self.window - 1)]), found

    def votes(
        self, features: pa.Table, rows: np.ndarray, probs: np.ndarray, scores: np.ndarray | None = None
    ) -> pa.Table:
        """VOTES rows (input order) from per-window probabilities; ``score`` is ``scores``
        when given (a ranker's raw output), else the expected exposure P(+1) - P(-1)."""
        order = np.argsort(rows, kind="stable")
        rows, probs = rows[order], probs[order]
        choice = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
        confidence = probs[np.arange(len(probs)), choice] if len(probs) else np.zeros(0)
        if scores is None:
            score = (probs[:, 2] - probs[:, 0]) if len(probs) else np.zeros(0)
        else:
            score = np.asarray(scores, dtype=np.float64)[order]
        keys = features.select(["symbol", "ts"]).take(pa.array(rows, pa.int64()))
        n = len(rows)
        return pa.Table.from_arrays(
            [
                keys.column("symbol"),
                keys.column("ts"),
                pa.array([self.agent] * n, pa.string()),
                pa.array([self.version] * n, pa.string()),
                pa.array((choice - 1).astype(np.int8)),
                pa.array(np.clip(confidence, 0.0, 1.0).astype(np.float32)),
                pa.array(np.nan_to_num(score, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)),
            ],
            schema=VOTES,
        )

    # ------------------------------------------------------------------ storage
    def describe(self) -> dict[str, Any]:
        """What ``model.json`` records (architecture and scaler; no weights)."""
        return {
            "format": FORMAT,
            "agent": self.agent,
            "kind": self.kind,
            "window": self.window,
            "normalizer": self.normalizer.to_json(),
            "model_config": self.model_config,
        }

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_text(json.dumps(self.describe(), indent=2))
        self._save_weights(directory)

    def _save_weights(self, directory: Path) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(agent={self.agent!r}, version={self.version!r}, window={self.window})"

