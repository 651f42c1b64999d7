"""The shared shape of the two RL policies: a window encoder, a policy head, a value head.

``WindowPolicyModule`` is a torch ``RLModule`` for PPO on RLlib's new API stack.  Its
subclasses only say how to encode a [batch, window, features] observation into one vector
(``lstm.LSTMModule``, ``transformer.TransformerModule``); the policy head turns that vector
into logits over the three exposures and the value head into a state value
(``ValueFunctionAPI``, which PPO needs).  Policy and value share the encoder, so one pass
serves both during training.

The module is stateless across env steps: the observation window *is* its memory, so a
backtest can score every (symbol, ts) row in one batched ``forward_inference`` call.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn


class WindowPolicyModule(TorchRLModule, ValueFunctionAPI):
    """Base class: subclasses implement ``build_encoder`` returning (module, output size)."""

    encoder: nn.Module
    pi: nn.Module
    vf: nn.Module

    def setup(self) -> None:
        obs_space, action_space = self.observation_space, self.action_space
        assert isinstance(obs_space, gym.spaces.Box) and isinstance(action_space, gym.spaces.Discrete)
        window, n_features = obs_space.shape
        config: dict[str, Any] = dict(self.model_config or {})  # type: ignore[arg-type]
        self.encoder, width = self.build_encoder(int(window), int(n_features), config)
        hidden = int(config.get("head_hidden", width))
        self.pi = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, int(action_space.n)))
        self.vf = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        # Small initial logits: the untrained policy starts close to uniform.
        last = self.pi[-1]
        assert isinstance(last, nn.Linear)
        nn.init.orthogonal_(last.weight, gain=0.01)
        nn.init.zeros_(last.bias)

    def build_encoder(
        self, window: int, n_features: int, model_config: dict[str, Any]
    ) -> tuple[nn.Module, int]:
        raise NotImplementedError

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
