"""Training of the agents, the part of ``tinywindow.models`` that needs Ray.

* ``train``     entry points: ``train_agent`` (one agent, hold-out validated, published),
  ``walk_forward`` and ``train_demo``
* ``challenger`` a retrain for the promotion gate (``train_challenger``: trained before the
  gate window with the agent's own outcomes, scored next to the champion, published)
* ``ppo``       RLlib PPO of the LSTM and Transformer agents (``train_ppo``, ``ppo_config``)
* ``rlmodule``  their RLlib ``RLModule`` wrappers over the domain's torch policy

What training produces is a domain predictor (``tinywindow.models``), served without Ray.
RLlib is imported only when an RL agent actually trains, so importing this package is cheap.
"""

from __future__ import annotations

from actors.training.challenger import Challenger, train_challenger
from actors.training.train import (
    DemoResult,
    TrainResult,
    bundled_features,
    train_agent,
    train_demo,
    walk_forward,
)
from tinywindow.models.params import DEMO_BUDGET, TEST_BUDGET

__all__ = [
    "DEMO_BUDGET",
    "TEST_BUDGET",
    "Challenger",
    "DemoResult",
    "TrainResult",
    "bundled_features",
    "train_agent",
    "train_challenger",
    "train_demo",
    "walk_forward",
]
