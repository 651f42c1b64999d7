"""The RL agents' network as a plain ``torch.nn.Module``: a window encoder, a policy head and
a value head.

``WindowPolicy`` is what serves the LSTM and Transformer agents: ``forward`` maps a
[batch, window, features] observation to logits over the three exposures (-1, 0, +1).  Its
parameters carry the same names as the RLModule PPO trains (``encoder.*``, ``pi.*``,
``vf.*``; ``actors.training.rlmodule`` builds both from ``build_encoder`` and
``build_heads``), so a ``state_dict`` moves between them with ``strict=True`` and the logits
are bit-identical: inference needs torch only, never RLlib.

The policy is stateless across bars: the observation window *is* its memory, so a backtest
can score every (symbol, ts) row in one batched call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tinywindow.errors import ModelError
from tinywindow.models.rl.lstm import lstm_encoder
from tinywindow.models.rl.transformer import transformer_encoder

N_ACTIONS = 3  # exposures -1, 0, +1 (``rl.env.ACTIONS``)
EncoderBuilder = Callable[[int, int, dict[str, Any]], tuple[nn.Module, int]]
ENCODERS: dict[str, EncoderBuilder] = {"lstm": lstm_encoder, "transformer": transformer_encoder}


def build_encoder(agent: str, window: int, n_features: int, model_config: dict[str, Any]) -> tuple[nn.Module, int]:
    """``agent``'s window encoder and its output width."""
    if agent not in ENCODERS:
        raise ModelError(f"agent {agent!r} has no RL policy (have: {', '.join(ENCODERS)})")
    return ENCODERS[agent](window, n_features, model_config)


def build_heads(width: int, model_config: dict[str, Any], n_actions: int = N_ACTIONS) -> tuple[nn.Sequential, nn.Sequential]:
    """The policy head (logits) and the value head over an encoder output of ``width``."""
    hidden = int(model_config.get("head_hidden", width))
    pi = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, n_actions))
    vf = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    # Small initial logits: the untrained policy starts close to uniform.
    last = pi[-1]
    assert isinstance(last, nn.Linear)
    nn.init.orthogonal_(last.weight, gain=0.01)
    nn.init.zeros_(last.bias)
    return pi, vf


class WindowPolicy(nn.Module):
    """Policy + value over an encoding of the feature window (see the module docstring)."""

    def __init__(self, agent: str, window: int, n_features: int, model_config: dict[str, Any]) -> None:
        super().__init__()
        self.agent = agent
        self.encoder, width = build_encoder(agent, window, n_features, dict(model_config))
        self.pi, self.vf = build_heads(width, dict(model_config))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """[B, 3] action logits for [B, window, features] observations."""
        out: torch.Tensor = self.pi(self.encoder(obs))
        return out

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """[B] state values."""
        out: torch.Tensor = self.vf(self.encoder(obs)).squeeze(-1)
        return out


def build_policy(agent: str, window: int, n_features: int, model_config: dict[str, Any]) -> WindowPolicy:
    """A fresh (randomly initialized) policy for ``agent``; load a ``state_dict`` into it."""
    return WindowPolicy(agent, window, n_features, model_config)
