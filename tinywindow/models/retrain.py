"""The retrain policy of an agent: when buffered outcomes call for a retrain, and what a
training run uses.  Pure (no Ray, no clock, no I/O): ``actors.agent.AgentActor`` asks it and
does what it says.

* ``due``: every ``agents.retrain_every`` new outcomes, when automatic retraining is on,
  there is data to train on and no retrain is already running.
* ``plan``: a fresh ``train`` starts from scratch on all the data.  A ``retrain`` of an RL
  agent fine-tunes the serving version's weights on each symbol's latest
  ``agents.retrain_bars`` bars (for RL the outcomes are a trigger, not a training signal:
  its reward is computed from the same market returns the outcomes report).  A retrain of
  XGBoost is validated on the hold-out as usual, then refitted on everything, hold-out
  included (outcomes are about recent bars, which a hold-out would otherwise always
  exclude).  XGBoost uses the buffered outcomes as sample weights in either case.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinywindow.models.config import AgentConfig
from tinywindow.models.params import RL_AGENTS, check_agent


@dataclass(frozen=True)
class TrainPlan:
    """What one training run of an agent uses (see the module docstring)."""

    warm: bool  # a retrain (True) or a fresh train
    init_from_serving: bool  # warm-start from the serving version's weights
    last_bars: int | None  # train on each symbol's latest bars only (None: all)
    refit: bool  # publish a model refitted on everything, hold-out included
    use_outcomes: bool  # the buffered outcomes are training data (sample weights)
    parent: str | None  # the version this run replaces, as recorded in its manifest

    @property
    def feedback_use(self) -> str:
        """What the buffered outcomes are to this run, as its manifest records it."""
        return "sample weights" if self.use_outcomes else "trigger"


class RetrainPolicy:
    """When ``agent`` retrains from buffered outcomes and on which window of data."""

    def __init__(self, agent: str, cfg: AgentConfig, *, auto: bool = True) -> None:
        self.agent = check_agent(agent)
        self.cfg = cfg
        self.auto = auto

    @property
    def rl(self) -> bool:
        return self.agent in RL_AGENTS

    def due(self, pending: int, *, has_data: bool, busy: bool) -> bool:
        """Whether ``pending`` outcomes since the last retrain should start one now."""
        return self.auto and pending >= self.cfg.retrain_every and has_data and not busy

    def plan(self, *, warm: bool, buffered: int, serving: str | None) -> TrainPlan:
        """The run for a ``train`` (``warm=False``) or a ``retrain`` (``warm=True``), with
        ``buffered`` outcomes held and ``serving`` the version now served (None if none)."""
        return TrainPlan(
            warm=warm,
            init_from_serving=warm and self.rl,
            last_bars=self.cfg.retrain_bars if (warm and self.rl) else None,
            refit=warm and not self.rl,
            use_outcomes=buffered > 0 and not self.rl,
            parent=serving if warm else None,
        )
