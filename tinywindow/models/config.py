"""Configuration of the agents' models: windows, training budgets, retraining, walk-forward.

Defined beside the package that uses it and composed into the root ``tinywindow.config.Config``."""

from __future__ import annotations

from pydantic import Field

from tinywindow.core.settings import Section


class AgentConfig(Section):
    """Layer 2 (``tinywindow.models``); ``registry_dir`` and ``tune_dir`` are under ``data_dir``
    unless absolute.  Per-agent hyperparameters beyond these live in ``agents.params`` and in
    the tuned file a sweep writes."""

    window: int = Field(default=32, ge=2, le=1024)  # feature rows an agent sees
    cost: float = Field(default=0.0005, ge=0.0, le=0.1)  # per unit of exposure changed
    registry_dir: str = "models"
    train_iterations: int = Field(default=4, ge=1, le=100_000)  # PPO iterations per training run
    train_batch: int = Field(default=2048, ge=64, le=10_000_000)  # env steps per PPO iteration
    hidden: int = Field(default=32, ge=4, le=4096)
    lr: float = Field(default=3e-4, gt=0, le=1.0)
    xgb_rounds: int = Field(default=200, ge=1, le=100_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    retrain_every: int = Field(default=500, ge=1, le=1_000_000_000)  # outcomes between automatic retrains
    retrain_bars: int = Field(default=1260, ge=64, le=10_000_000)  # RL retrains on the latest bars (5 years)
    embargo_bars: int | None = Field(default=None, ge=0, le=100_000)  # walk-forward gap; None = window
    valid_bars: int = Field(default=504, ge=20, le=10_000_000)  # walk-forward validation length (2 years)
    tune_dir: str = "tune"
    num_cpus: float = Field(default=0.25, ge=0.0, le=1024)
