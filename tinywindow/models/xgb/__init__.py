"""The gradient-boosting agent: ``inference`` (``XGBPredictor``, votes from a booster) and
``train`` (``train_xgb``, with sample weights from realized outcomes).  XGBoost training needs
no Ray, so both halves live in the domain.  ``xs`` is the cross-sectional variant
(``XGBXSPredictor``, ``train_xgb_xs``): a ranker of the symbols of each bar."""

from __future__ import annotations

from tinywindow.models.xgb.inference import XGBPredictor
from tinywindow.models.xgb.train import train_xgb
from tinywindow.models.xgb.xs import XGBXSPredictor, train_xgb_xs

__all__ = ["XGBPredictor", "XGBXSPredictor", "train_xgb", "train_xgb_xs"]
