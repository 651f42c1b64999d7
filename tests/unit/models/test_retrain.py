"""The retrain policy: when buffered outcomes start a retrain, and what each run uses."""

from __future__ import annotations

import pytest

from tinywindow.config import AgentConfig
from tinywindow.errors import ConfigError
from tinywindow.models.retrain import RetrainPolicy

CFG = AgentConfig(retrain_every=40, retrain_bars=250)


@pytest.mark.parametrize("agent", ["lstm", "transformer", "xgboost"])
def test_a_retrain_is_due_every_retrain_every_outcomes_with_data_and_none_running(agent: str) -> None:
    policy = RetrainPolicy(agent, CFG)
    assert not policy.due(39, has_data=True, busy=False)
    assert policy.due(40, has_data=True, busy=False)
    assert policy.due(400, has_data=True, busy=False)
    assert not policy.due(40, has_data=False, busy=False)  # nothing to train on yet
    assert not policy.due(40, has_data=True, busy=True)  # one retrain at a time
    assert not RetrainPolicy(agent, CFG, auto=False).due(10_000, has_data=True, busy=False)


@pytest.mark.parametrize("agent", ["lstm", "transformer"])
def test_rl_retrains_fine_tune_the_serving_weights_on_the_latest_bars(agent: str) -> None:
    plan = RetrainPolicy(agent, CFG).plan(warm=True, buffered=55, serving="v0003")
    assert plan.warm and plan.init_from_serving and plan.last_bars == 250
    assert not plan.refit and not plan.use_outcomes and plan.feedback_use == "trigger"
    assert plan.parent == "v0003"
    fresh = RetrainPolicy(agent, CFG).plan(warm=False, buffered=55, serving="v0003")
    assert not fresh.init_from_serving and fresh.last_bars is None and fresh.parent is None


def test_xgboost_retrains_refit_on_everything_with_outcome_weights() -> None:
    policy = RetrainPolicy("xgboost", CFG)
    plan = policy.plan(warm=True, buffered=55, serving="v0002")
    assert plan.refit and plan.use_outcomes and plan.feedback_use == "sample weights"
    assert not plan.init_from_serving and plan.last_bars is None and plan.parent == "v0002"
    fresh = policy.plan(warm=False, buffered=55, serving="v0002")
    assert not fresh.refit and fresh.use_outcomes and fresh.parent is None  # outcomes weigh a train too
    empty = policy.plan(warm=True, buffered=0, serving=None)
    assert not empty.use_outcomes and empty.feedback_use == "trigger" and empty.parent is None


def test_unknown_agents_are_refused() -> None:
    with pytest.raises(ConfigError):
        RetrainPolicy("random-forest", CFG)
