"""The gradient-boosting agent: ``inference`` (``XGBPredictor``, votes from a booster) and
``train`` (``train_xgb``, with sample weights from realized outcomes).  XGBoost training needs
no Ray, so both halves live in the domain."""

from __future__ import annotations

from tinywindow.models.xgb.inference import XGBPredictor
from tinywindow.models.xgb.train import train_xgb

__all__ = ["XGBPredictor", "train_xgb"]
