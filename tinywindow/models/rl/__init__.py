"""The RL agents (LSTM and Transformer PPO policies) as far as the domain needs them.

* ``env``           the gymnasium trading environment they learn in
* ``vector_env``    ``VectorTradingEnv``: N of them stepped at once in numpy, per symbol or
                    cross-sectional (the policy ranks symbols against each other)
* ``lstm``, ``transformer``   the window encoders
* ``policy``        ``WindowPolicy``: encoder + policy and value heads, plain torch
* ``inference``     ``RLPredictor``: votes from a policy loaded from a signed ``state_dict``

Training (RLlib PPO and its RLModule wrappers) lives in ``actors.training``: nothing in this
package imports Ray.
"""

from __future__ import annotations

from tinywindow.models.rl.inference import RLPredictor
from tinywindow.models.rl.policy import WindowPolicy, build_policy
from tinywindow.models.rl.vector_env import VectorTradingEnv

__all__ = ["RLPredictor", "VectorTradingEnv", "WindowPolicy", "build_policy"]
