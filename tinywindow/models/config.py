"""Configuration of the agents' models: windows, training budgets, retraining, walk-forward.

Defined beside the package that uses it and composed into the root ``tinywindow.config.Config``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tinywindow.core.settings import PlacementResources, Section


class PromotionConfig(Section):
    """The champion/challenger gate (``tinywindow.models.promotion``), ``agents.promotion``.

    A challenger is trained on data ending ``embargo_bars`` before the most recent
    ``eval_bars`` bars; champion and challenger are scored there the same way, and the
    challenger goes live only if its ``metric`` beats the champion's by more than ``margin``
    and its max drawdown is not worse than the champion's by more than
    ``max_drawdown_worsening``.  The default margin (0.1 Sharpe) keeps a challenger that only
    ties, or wins by noise-level amounts, from churning the served version."""

    metric: Literal["sharpe", "total_return"] = "sharpe"
    margin: float = Field(default=0.1, ge=-100.0, le=100.0)  # in units of the metric
    max_drawdown_worsening: float = Field(default=0.05, ge=0.0, le=1.0)  # fraction of equity
    eval_bars: int = Field(default=126, ge=10, le=100_000)  # the gate's evaluation window
    embargo_bars: int | None = Field(default=None, ge=0, le=100_000)  # None = agents.window


class AgentConfig(Section):
    """Layer 2 (``tinywindow.models``); ``registry_dir`` and ``tune_dir`` are under ``data_dir``
    unless absolute.  Per-agent hyperparameters beyond these live in ``agents.params`` and in
    the tuned file a sweep writes."""

    window: int = Field(default=32, ge=2, le=1024)  # feature rows an agent sees
    # score every symbol of a bar against the others: features rank-normalised across the
    # bar's symbols (``tinywindow.models.xs``), XGBoost as a ranker on forward returns
    # (``xgb.xs``), the RL agents trained on the cross-sectional vector env (reward: the
    # return relative to the bar's mean); VOTES scores then rank symbols against each other
    cross_sectional: bool = False
    cost: float = Field(default=0.0005, ge=0.0, le=0.1)  # per unit of exposure changed
    registry_dir: str = "models"
    train_iterations: int = Field(default=4, ge=1, le=100_000)  # PPO iterations per training run
    train_batch: int = Field(default=2048, ge=64, le=10_000_000)  # env steps per PPO iteration
    hidden: int = Field(default=32, ge=4, le=4096)
    lr: float = Field(default=3e-4, gt=0, le=1.0)
    xgb_rounds: int = Field(default=200, ge=1, le=100_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    # the retrain schedule, on the trading bar clock (0 = never): a retrain starts at every
    # ``retrain_every_bars``-th bar and its promotion is decided ``retrain_lag_bars`` later
    retrain_every_bars: int = Field(default=252, ge=0, le=1_000_000)
    retrain_lag_bars: int = Field(default=5, ge=0, le=100_000)
    retrain_iterations: int = Field(default=4, ge=1, le=100_000)  # PPO iterations of an RL fine-tune (at most)
    retrain_bars: int = Field(default=1260, ge=64, le=10_000_000)  # RL retrains on the latest bars (5 years)
    embargo_bars: int | None = Field(default=None, ge=0, le=100_000)  # walk-forward gap; None = window
    valid_bars: int = Field(default=504, ge=20, le=10_000_000)  # walk-forward validation length (2 years)
    tune_dir: str = "tune"
    num_cpus: float = Field(default=0.25, ge=0.0, le=1024)
    # Ray custom resources every AgentActor and every Tune trial of a sweep asks for (e.g.
    # ``{agents: 1}``): on a cluster they run on nodes offering them, and an autoscaler adds
    # such nodes for them; ``{}`` places by CPU alone (docs/scaling.md)
    resources: PlacementResources = Field(default_factory=dict)
    promotion: PromotionConfig = PromotionConfig()
