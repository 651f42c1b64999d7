"""The Transformer agent's window encoder: a small ``nn.TransformerEncoder`` over the window.

Rows are projected to ``d_model``, a fixed sinusoidal position encoding is added (row
order matters: the last row is "now"), and the encoder output at the last position is the
embedding.  Attention runs within the window only, whose rows are all at or before the
current bar, so no mask is needed for causality.  Dropout is off: PPO's ratio needs the
same network in sampling and in the update.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """[length, d_model] fixed position encoding (Vaswani et al., 2017)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d_model // 2])
    return pe


class TransformerEncoder(nn.Module):
    def __init__(self, window: int, n_features: int, d_model: int, heads: int, layers: int) -> None:
        super().__init__()
        self.proj = nn.Linear(n_features, d_model)
        self.positions: torch.Tensor
        self.register_buffer("positions", sinusoidal_positions(window, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            dim_feedforward=2 * d_model,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x) + self.positions[: x.shape[1]]
        h = self.encoder(h)
        out: torch.Tensor = self.norm(h[:, -1])
        return out


def transformer_encoder(window: int, n_features: int, model_config: dict[str, Any]) -> tuple[nn.Module, int]:
    """The encoder and its output width; ``model_config``: ``d_model`` (default ``hidden``,
    else 32), ``heads`` (default 4), ``layers`` (default 1)."""
    d_model = int(model_config.get("d_model", model_config.get("hidden", 32)))
    heads = int(model_config.get("heads", 4))
    layers = int(model_config.get("layers", 1))
    if d_model % heads:
        raise ValueError(f"d_model ({d_model}) must be a multiple of heads ({heads})")
    return TransformerEncoder(window, n_features, d_model, heads, layers), d_model
