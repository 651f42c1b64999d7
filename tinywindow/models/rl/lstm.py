"""The LSTM agent's window encoder: an ``nn.LSTM`` run over the observation window.

The encoder reads the window oldest row first and returns the last layer's final hidden
state.  No recurrent state is carried between env steps (the window is the memory), so the
policy is stateless and inference is one batched call.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LSTMEncoder(nn.Module):
    def __init__(self, n_features: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        out: torch.Tensor = h[-1]
        return out


def lstm_encoder(window: int, n_features: int, model_config: dict[str, Any]) -> tuple[nn.Module, int]:
    """The encoder and its output width; ``model_config``: ``hidden`` (LSTM width, default
    32), ``layers`` (default 1)."""
    hidden = int(model_config.get("hidden", 32))
    layers = int(model_config.get("layers", 1))
    return LSTMEncoder(n_features, hidden, layers), hidden
