"""The RL policies as RLlib ``RLModule``s, for PPO training on RLlib's new API stack.

``WindowPolicyModule`` is a torch ``RLModule`` built from the same pieces as the serving
policy (``tinywindow.models.rl.policy``: ``build_encoder`` and ``build_heads``, in the same
order), so its ``state_dict`` has the same parameter names and loads into a
``WindowPolicy`` unchanged.  ``LSTMModule`` and ``TransformerModule`` only name their
encoder.  The value head implements ``ValueFunctionAPI`` (PPO needs it); policy and value
share the encoder, so one pass serves both during training.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from tinywindow.errors import ModelError
from tinywindow.models.rl.env import ACTIONS
from tinywindow.models.rl.policy import build_encoder, build_heads
from tinywindow.models.windows import CLIP


class WindowPolicyModule(TorchRLModule, ValueFunctionAPI):
    """Base class: subclasses name their encoder with ``agent`` (a key of ``policy.ENCODERS``)."""

    agent: str = ""
    encoder: nn.Module
    pi: nn.Module
    vf: nn.Module

    def setup(self) -> None:
        obs_space, action_space = self.observation_space, self.action_space
        assert isinstance(obs_space, gym.spaces.Box) and isinstance(action_space, gym.spaces.Discrete)
        window, n_features = obs_space.shape
        config: dict[str, Any] = dict(self.model_config or {})  # type: ignore[arg-type]
        self.encoder, width = build_encoder(self.agent, int(window), int(n_features), config)
        self.pi, self.vf = build_heads(width, config, int(action_space.n))

    def train(self, mode: bool = True) -> WindowPolicyModule:
        """Set train/eval mode on this module and every submodule, cheaply.

        RLlib flips the mode twice around every ``forward_exploration`` call (eval, then back
        to train); ``nn.Module.train`` walks the module tree through ``__setattr__`` each
        time, which cost ~8% of a sampling step.  The tree is fixed after ``setup``, so the
        flag is set on a cached list of its modules instead.  (No layer here behaves
        differently in the two modes anyway: no dropout, no batch norm.)
        """
        tree = self.__dict__.get("_module_tree")
        if tree is None:
            tree = list(self.modules())
            object.__setattr__(self, "_module_tree", tree)
        for m in tree:
            object.__setattr__(m, "training", mode)
        return self

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        embeddings = self.encoder(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: self.pi(embeddings)}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        embeddings = self.encoder(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: self.pi(embeddings), Columns.EMBEDDINGS: embeddings}

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        if embeddings is None:
            embeddings = self.encoder(batch[Columns.OBS])
        out: torch.Tensor = self.vf(embeddings).squeeze(-1)
        return out


class LSTMModule(WindowPolicyModule):
    """PPO policy + value over an LSTM encoding of the feature window (``rl.lstm``)."""

    agent = "lstm"


class TransformerModule(WindowPolicyModule):
    """PPO policy + value over a Transformer encoding of the feature window (``rl.transformer``)."""

    agent = "transformer"


MODULES: dict[str, type[WindowPolicyModule]] = {"lstm": LSTMModule, "transformer": TransformerModule}


def spaces(window: int, n_features: int) -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    """The env's observation and action spaces for a window of ``n_features`` features."""
    obs = gym.spaces.Box(-CLIP, CLIP, shape=(window, n_features), dtype=np.float32)
    return obs, gym.spaces.Discrete(len(ACTIONS))


def build_module(agent: str, window: int, n_features: int, model_config: dict[str, Any]) -> WindowPolicyModule:
    """A fresh RLModule for ``agent`` (what PPO trains)."""
    if agent not in MODULES:
        raise ModelError(f"agent {agent!r} has no RLModule (have: {', '.join(MODULES)})")
    obs, act = spaces(window, n_features)
    return MODULES[agent](observation_space=obs, action_space=act, inference_only=False, model_config=model_config)
