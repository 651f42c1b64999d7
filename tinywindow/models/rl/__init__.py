"""The RL agents (LSTM and Transformer PPO policies) as far as the domain needs them.

* ``env``           the gymnasium trading environment they learn in
* ``lstm``, ``transformer``   the window encoders
* ``policy``        ``WindowPolicy``: encoder + policy and value heads, plain torch
* ``inference``     ``RLPredictor``: votes from a policy loaded from a signed ``state_dict``

Training (RLlib PPO and its RLModule wrappers) lives in ``actors.training``: nothing in this
package imports Ray.
"""

from __future__ import annotations

from tinywindow.models.rl.inference import RLPredictor
from tinywindow.models.rl.policy import WindowPolicy, build_policy

__all__ = ["RLPredictor", "WindowPolicy", "build_policy"]
