"""The retrain policy: the bar-clock schedule and what each run uses."""

from __future__ import annotations

import pytest

from tinywindow.config import AgentConfig
from tinywindow.errors import ConfigError
from tinywindow.models.retrain import RetrainPolicy, RetrainSchedule

CFG = AgentConfig(retrain_every_bars=20, retrain_lag_bars=3, retrain_bars=250, retrain_iterations=2)


def test_retrains_start_every_n_bars_and_are_decided_a_fixed_lag_later() -> None:
    sched = RetrainSchedule(CFG)
    starts = [i for i in range(62) if sched.starts(i, 62)]
    assert starts == [20, 40]  # not at bar 0; bar 60's decision (63) would fall after the last bar
    assert sched.decision_bar(20) == 23
    assert not any(RetrainSchedule(AgentConfig(retrain_every_bars=0)).starts(i, 1000) for i in range(1000))


@pytest.mark.parametrize("agent", ["lstm", "transformer"])
def test_rl_retrains_fine_tune_the_serving_weights_on_the_latest_bars(agent: str) -> None:
    plan = RetrainPolicy(agent, CFG).plan(warm=True, serving="v0003")
    assert plan.warm and plan.gated and plan.init_from_serving and plan.last_bars == 250
    assert plan.max_iterations == 2 and plan.parent == "v0003"
    fresh = RetrainPolicy(agent, CFG).plan(warm=False, serving="v0003")
    assert not fresh.init_from_serving and fresh.last_bars is None and fresh.parent is None and not fresh.gated


def test_xgboost_retrains_from_scratch_on_everything() -> None:
    plan = RetrainPolicy("xgboost", CFG).plan(warm=True, serving="v0002")
    assert plan.gated and not plan.init_from_serving and plan.last_bars is None and plan.max_iterations is None
    assert plan.parent == "v0002"


def test_unknown_agents_are_refused() -> None:
    with pytest.raises(ConfigError):
        RetrainPolicy("random-forest", CFG)
