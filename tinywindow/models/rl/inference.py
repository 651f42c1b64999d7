"""``RLPredictor``: the LSTM and Transformer agents' votes from a plain torch policy.

The policy (``rl.policy.WindowPolicy``) is rebuilt from the version's ``model.json`` and its
weights loaded from ``weights.pt`` (a ``state_dict``, ``weights_only=True``: no pickle).
Votes are the softmax of its action logits.  Nothing here imports Ray or RLlib: training
lives in ``actors.training.ppo``, which hands back an ``RLPredictor`` over the same policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinywindow.errors import ModelError
from tinywindow.models.predictor import WEIGHTS_FILE, Predictor
from tinywindow.models.rl.policy import WindowPolicy, build_policy
from tinywindow.models.windows import Normalizer


class RLPredictor(Predictor):
    """Votes from a ``WindowPolicy``: softmax of its action logits."""

    kind = "ppo"

    def __init__(
        self,
        agent: str,
        module: WindowPolicy,
        normalizer: Normalizer,
        window: int,
        model_config: dict[str, Any],
        version: str = "candidate",
    ) -> None:
        self.agent = agent
        self.module = module.eval()
        self.normalizer = normalizer
        self.window = window
        self.model_config = dict(model_config)
        self.version = version

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            probs = torch.softmax(self.module(torch.from_numpy(windows)), dim=-1)
        return np.asarray(probs.numpy(), dtype=np.float32)

    def weights(self) -> dict[str, np.ndarray]:
        """The policy's ``state_dict`` as numpy arrays (what warm-starts PPO)."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}

    def _save_weights(self, directory: Path) -> None:
        torch.save(self.module.state_dict(), directory / WEIGHTS_FILE)

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], normalizer: Normalizer, version: str) -> RLPredictor:
        agent, window = str(meta["agent"]), int(meta["window"])
        module = build_policy(agent, window, len(normalizer.names), dict(meta["model_config"]))
        try:
            state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
            module.load_state_dict(state, strict=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelError(f"cannot load weights of {agent} {version}: {exc}") from None
        return cls(agent, module, normalizer, window, dict(meta["model_config"]), version)
