"""The LSTM agent's RLModule: an ``nn.LSTM`` run over the observation window.

The encoder reads the window oldest row first and returns the last layer's final hidden
state.  No recurrent state is carried between env steps (the window is the memory), so
RLlib treats the module as stateless and inference is one batched call.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tinywindow.models.rl.rlmodule import WindowPolicyModule


class LSTMEncoder(nn.Module):
    def __init__(self, n_features: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        out: torch.Tensor = h[-1]
        return out


class LSTMModule(WindowPolicyModule):
    """PPO policy + value over an LSTM encoding of the feature window.

    ``model_config``: ``hidden`` (LSTM width, default 32), ``layers`` (default 1).
    """

    def build_encoder(
        self, window: int, n_features: int, model_config: dict[str, Any]
    ) -> tuple[nn.Module, int]:
        hidden = int(model_config.get("hidden", 32))
        layers = int(model_config.get("layers", 1))
        return LSTMEncoder(n_features, hidden, layers), hidden
