"""Layer 2: the trading agents (LSTM and Transformer PPO policies, XGBoost) and how they serve.

* ``predictor``    the one inference contract: ``predict(FEATURES) -> VOTES``
* ``rl``           the RL agents: trading env, window encoders, the plain-torch policy and
  ``RLPredictor`` (inference needs torch only; PPO training is in ``actors.training``)
* ``xgb``          the boosting agent: ``inference`` and ``train`` (no Ray needed)
* ``loading``      a predictor back from its files, by the kind its ``model.json`` names
* ``registry``     signed model versions; ``ModelRegistry.load(agent, version) -> Predictor``
* ``params``       hyperparameters (config < tuned file < overrides) and training budgets
* ``retrain``      the retrain policy: the bar-clock schedule, and what a retrain uses
* ``promotion``    the champion/challenger gate a retrain passes before it is served
* ``experience``, ``learning``   an agent's own outcomes: buffered, then applied to training
* ``explain``, ``events``   explanations of the votes that trade, and the agent journal's
  ``explanations`` record
* ``windows``, ``evaluation``   feature windows, walk-forward scoring

Nothing here imports Ray (an import-linter contract in ``make lint`` keeps it so).  Heavy
imports (torch, XGBoost) happen in the modules that need them, so importing this package is
cheap.
"""

from __future__ import annotations

from tinywindow.models.params import AGENTS, DEMO_BUDGET, RL_AGENTS, TEST_BUDGET

__all__ = ["AGENTS", "DEMO_BUDGET", "RL_AGENTS", "TEST_BUDGET"]
