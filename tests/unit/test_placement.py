"""Placement by resource (``tinywindow.config.placement``): every actor kind's custom resources
come from the config, reach the options Ray gets, and bad requests are refused naming the key.
Where the actors then land on a real multi-node cluster: tests/cluster/test_multinode.py."""

from __future__ import annotations

import pytest

from tinywindow.config import Config, build, env_overrides
from tinywindow.config.placement import (
    LOCAL_CAPACITY,
    local_resources,
    placement,
    requested,
    unoffered,
)
from tinywindow.errors import ConfigError

pytestmark = pytest.mark.unit

KEYS = ["agents.resources", "data.resources", "consensus.resources", "portfolio.resources", "serving.replica_resources"]


def test_defaults_ask_for_no_custom_resource() -> None:
    cfg = Config()
    assert requested(cfg) == {} and local_resources(cfg) == {}
    assert placement(0.25, cfg.agents.resources) == {"num_cpus": 0.25}  # a laptop places by CPU alone


@pytest.mark.parametrize("key", KEYS)
def test_each_actor_kind_takes_its_resources_from_the_config(key: str) -> None:
    cfg = Config().set(key, {"pool": 1})
    assert requested(cfg) == {key: {"pool": 1.0}}
    assert local_resources(cfg) == {"pool": LOCAL_CAPACITY}


def test_env_and_file_forms() -> None:
    over = env_overrides({"TW_AGENTS__RESOURCES": '{"agents": 1}', "TW_DATA__RESOURCES": "{sources: 0.5}"})
    cfg = build(over)
    assert cfg.agents.resources == {"agents": 1.0} and cfg.data.resources == {"sources": 0.5}
    assert Config().set("serving.replica_resources", {"b": 1, "a": 2}).serving.replica_resources == {"a": 2.0, "b": 1.0}


def test_options_merge_config_resources_with_the_callers() -> None:
    opts = placement(0.1, {"agents": 1}, {"max_restarts": 2, "resources": {"gpu_box": 1}})
    assert opts == {"num_cpus": 0.1, "max_restarts": 2, "resources": {"agents": 1, "gpu_box": 1}}
    # the caller's amount for the same name wins; an empty result leaves the key out
    assert placement(0.1, {"agents": 1}, {"resources": {"agents": 0.5}})["resources"] == {"agents": 0.5}
    assert "resources" not in placement(0.1, {}, {"resources": {}})


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"CPU": 1}, "Ray's own resources"),
        ({"memory": 1}, "Ray's own resources"),
        ({"two words": 1}, "resource name"),
        ({"": 1}, "resource name"),
        ({"x" * 65: 1}, "resource name"),
        ({"agents": 0}, "must be > 0"),
        ({"agents": -1}, "must be > 0"),
        ({"agents": 1.5}, "whole number"),
        ({"agents": 2e6}, "must be > 0"),
        ({f"r{i}": 1 for i in range(17)}, "at most 16"),
    ],
)
@pytest.mark.parametrize("key", ["agents.resources", "serving.replica_resources"])
def test_bad_requests_are_refused_naming_the_key(key: str, value: dict[str, float], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config().set(key, value)
    assert key in str(err.value) and words in str(err.value)


def test_a_resource_the_cluster_has_too_little_of_is_named() -> None:
    cfg = (Config().set("agents.resources", {"agents": 1}).set("data.resources", {"sources": 1})
           .set("run.agents", ["lstm", "xgboost"]))
    n_sources = len(cfg.data.sources)
    lines = unoffered(cfg, {"CPU": 4.0, "agents": 3.0, "sources": n_sources - 0.5})
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"the run asks for sources={n_sources:g} (data.resources sources=1 x {n_sources})")
    # every actor of a kind counts: two agents need two units, one is not enough
    assert "agents=2" in unoffered(cfg, {"agents": 1.0, "sources": 99.0})[0]
    assert unoffered(cfg, {"agents": 2.0, "sources": float(n_sources)}) == []
    # two kinds asking for the same resource add up
    both = cfg.set("portfolio.resources", {"agents": 0.5})
    assert unoffered(both, {"agents": 2.0, "sources": 99.0})[0].startswith("the run asks for agents=2.5")


def test_consensus_resources_cannot_change_on_a_running_engine() -> None:
    from tinywindow.consensus.config import STARTUP_ONLY

    assert "resources" in STARTUP_ONLY


def test_serve_replicas_ask_for_the_configured_resources() -> None:
    from actors.serving import build_app

    cfg = Config().set("serving.replica_resources", {"serve": 1}).set("serving.replica_cpus", 0.5)
    app = build_app(cfg, ["xgboost"], "0" * 64)
    gateway = app._bound_deployment
    deployments = [gateway, *(a._bound_deployment for a in gateway.init_args[0].values())]
    assert [d.name for d in deployments] == ["gateway", "model-xgboost"]
    for d in deployments:
        assert d.ray_actor_options == {"num_cpus": 0.5, "resources": {"serve": 1.0}}


def test_tune_trials_are_placed_like_agents() -> None:
    from actors.tune import trial_resources

    agents = Config().set("agents.resources", {"agents": 1}).set("agents.num_cpus", 0.5).agents
    # no Ray needed: with custom resources the trials wait for (or make) nodes that offer them
    assert trial_resources(samples=4, max_concurrent=3, agents=agents) == (3, 0.5)
