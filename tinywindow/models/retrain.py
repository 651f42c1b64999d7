"""The retrain policy of an agent: when it retrains, and what a training run uses.  Pure (no
Ray, no clock, no I/O): ``actors.pipeline`` and ``actors.agent.AgentActor`` ask it and do
what it says.

* ``RetrainSchedule``: retrains happen at fixed points of the trading bar clock, never at a
  time that depends on how fast anything ran.  A retrain starts after every
  ``agents.retrain_every_bars``-th bar (with the features up to that bar only) and its
  promotion is decided ``agents.retrain_lag_bars`` bars later, the caller waiting for the
  retrain if it is not done; one whose decision would fall after the last bar is not started.
* ``RetrainPolicy.plan``: a fresh ``train`` starts from scratch on all the data.  A
  ``retrain`` makes a challenger for the promotion gate (``tinywindow.models.promotion``):
  trained on data ending an embargo before the gate window, including the bars traded since
  the last version, with the agent's own realized outcomes applied
  (``tinywindow.models.learning``: labels and sample weights for XGBoost, realized returns
  and reward weights for the RL agents).  An RL retrain fine-tunes the serving version's
  weights on each symbol's latest ``agents.retrain_bars`` bars for at most
  ``agents.retrain_iterations`` PPO iterations; XGBoost retrains from scratch on everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinywindow.models.config import AgentConfig
from tinywindow.models.params import RL_AGENTS, check_agent


class RetrainSchedule:
    """Which bars of the trading clock start a retrain and which decide its promotion."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.every = cfg.retrain_every_bars
        self.lag = cfg.retrain_lag_bars

    def starts(self, bar: int, n_bars: int) -> bool:
        """Whether a retrain starts after bar number ``bar`` (0-based) of ``n_bars``."""
        return self.every > 0 and bar > 0 and bar % self.every == 0 and bar + self.lag < n_bars

    def decision_bar(self, start_bar: int) -> int:
        return start_bar + self.lag


@dataclass(frozen=True)
class TrainPlan:
    """What one training run of an agent uses (see the module docstring)."""

    warm: bool  # a retrain (True) or a fresh train
    init_from_serving: bool  # warm-start from the serving version's weights
    last_bars: int | None  # train on each symbol's latest bars only (None: all)
    max_iterations: int | None  # cap on PPO iterations (RL fine-tunes)
    parent: str | None  # the version this run would replace, as recorded in its manifest

    @property
    def gated(self) -> bool:
        """A retrain goes live only through the promotion gate."""
        return self.warm


class RetrainPolicy:
    """What a training run of ``agent`` uses (see the module docstring)."""

    def __init__(self, agent: str, cfg: AgentConfig) -> None:
        self.agent = check_agent(agent)
        self.cfg = cfg

    @property
    def rl(self) -> bool:
        return self.agent in RL_AGENTS

    def plan(self, *, warm: bool, serving: str | None) -> TrainPlan:
        """The run for a ``train`` (``warm=False``) or a ``retrain`` (``warm=True``), with
        ``serving`` the version now served (None if none)."""
        fine_tune = warm and self.rl
        return TrainPlan(
            warm=warm,
            init_from_serving=fine_tune,
            last_bars=self.cfg.retrain_bars if fine_tune else None,
            max_iterations=self.cfg.retrain_iterations if fine_tune else None,
            parent=serving if warm else None,
        )
