"""``XGBPredictor``: the gradient-boosting agent's votes from its booster.

Inputs are the standardized window flattened to one row (window x features columns).  The
booster gives p, the probability of an up move next bar; the agent votes +1 with
probability p or -1 with 1 - p, whichever is larger: it never holds.  The booster is stored
as UBJSON (``booster.ubj``), so loading executes no pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from tinywindow.errors import ModelError
from tinywindow.models.predictor import BOOSTER_FILE, Predictor
from tinywindow.models.windows import Normalizer


def flatten(windows: np.ndarray) -> np.ndarray:
    return windows.reshape(len(windows), -1)


class XGBPredictor(Predictor):
    kind = "xgboost"

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
        self.model_config = dict(model_config)
        self.version = version

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        p_up = np.asarray(self.booster.inplace_predict(flatten(windows)), dtype=np.float32).reshape(-1)
        probs = np.zeros((len(p_up), 3), dtype=np.float32)
        probs[:, 0] = 1.0 - p_up
        probs[:, 2] = p_up
        return probs

    def _save_weights(self, directory: Path) -> None:
        self.booster.save_model(str(directory / BOOSTER_FILE))

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], normalizer: Normalizer, version: str) -> XGBPredictor:
        booster = xgb.Booster()
        try:
            booster.load_model(str(directory / BOOSTER_FILE))
        except xgb.core.XGBoostError as exc:
            raise ModelError(f"cannot load booster of xgboost {version}: {exc}") from None
        booster.set_param({"nthread": 1})
        return cls(booster, normalizer, int(meta["window"]), dict(meta["model_config"]), version)
