"""Layer 2: the trading agents (LSTM and Transformer PPO policies, XGBoost), trained for real.

* ``env``          the gymnasium trading environment the RL agents learn in
* ``lstm``, ``transformer``, ``rlmodule``   the torch RLModules (PPO, RLlib new API stack)
* ``ppo``, ``xgb`` training, and the predictors that serve each model
* ``predictor``    the one inference contract: ``predict(FEATURES) -> VOTES``
* ``registry``     signed model versions; ``ModelRegistry.load(agent, version) -> Predictor``
* ``walkforward``, ``scoring``   out-of-sample evaluation next to buy-and-hold
* ``train``        entry points (one agent, walk-forward, the demo run); ``tune`` sweeps

Heavy imports (torch, RLlib, XGBoost) happen in the modules that need them, so importing
this package is cheap.
"""

from __future__ import annotations

from tinywindow.models.params import AGENTS, RL_AGENTS

__all__ = ["AGENTS", "RL_AGENTS"]
