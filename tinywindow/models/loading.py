"""Rebuild a predictor from a model directory: read ``model.json`` and dispatch on its
``kind`` to the predictor class that knows the weight files.

It sits above ``predictor`` (the base class every model subclasses) and the model families
(``rl.inference``, ``xgb.inference``), so none of them needs to import another.
"""

from __future__ import annotations

import json
from pathlib import Path

from tinywindow.errors import ModelError
from tinywindow.models.predictor import FORMAT, MODEL_FILE, Predictor
from tinywindow.models.windows import Normalizer


def load_dir(directory: Path, version: str) -> Predictor:
    """A predictor from a model directory written by ``Predictor.save``.

    Callers outside the registry must verify the directory first (``registry.load`` does).
    Each model family is imported only when a model of that kind is loaded.
    """
    path = Path(directory) / MODEL_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model description {path}: {exc}") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path}: unknown model format {meta.get('format')!r}")
    normalizer = Normalizer.from_json(meta["normalizer"])
    kind = meta.get("kind")
    if kind == "ppo":
        from tinywindow.models.rl.inference import RLPredictor

        return RLPredictor.load(Path(directory), meta, normalizer, version)
    if kind == "xgboost":
        from tinywindow.models.xgb.inference import XGBPredictor

        return XGBPredictor.load(Path(directory), meta, normalizer, version)
    if kind == "xgboost_xs":
        from tinywindow.models.xgb.xs import XGBXSPredictor

        return XGBXSPredictor.load(Path(directory), meta, normalizer, version)
    raise ModelError(f"{path}: unknown model kind {kind!r}")
