"""``tinywindow config set`` on a running paper engine (``actors/graph.py``): the change lands
on the portfolio and the consensus together, mid-run, is journaled by both, and a bad value
changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from actors import pipeline
from tinywindow.cli import main
from tinywindow.config import Config, SourceConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.params import TEST_BUDGET

pytestmark = pytest.mark.usefixtures("ray_cluster")

PASSPHRASE = "config set test passphrase"
TRAIN_END, TRADE_START, TRADE_END = "2014-01-01", "2015-01-01", "2015-04-01"
SOURCES = ["sp500"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root: Path = tmp_path_factory.mktemp("config-set")
    KeyStore.init(root / "keys", PASSPHRASE, scrypt_log2_n=10)
    cfg = (Config().set("data_dir", str(root)).set("data.persist", False).set("crypto.journal_fsync", False)
           .set("agents.retrain_every_bars", 0).set("consensus.threshold", 0.0).set("consensus.quorum", 1)
           .set("risk.confidence_floor", 0.0).set("run.name", "cs")
           .set("run.paper.speed", 86400.0 * 20))  # ~20 market days a second: the change lands mid-run
    opts: dict[str, Any] = {"runtime_env": {"env_vars": {cfg.crypto.passphrase_env: PASSPHRASE}}}
    data = pipeline.start_data(cfg, [SourceConfig(name=s, kind="bundled", datasets=[s]) for s in SOURCES],
                               actor_options=opts)
    features = pipeline.features_of(data, SOURCES, "2011-01-01", TRAIN_END)
    # one agent (the quickest to train) is enough: consensus.quorum is 1
    agents = pipeline.start_agents(cfg, features, {"xgboost": dict(TEST_BUDGET["xgboost"])}, ["xgboost"],
                                   actor_options=opts)
    try:
        yield {"cfg": cfg, "data": data, "agents": agents, "opts": opts}
    finally:
        for actor in [*agents.actors.values(), *data.actors.values()]:
            ray.kill(actor)


def test_config_set_changes_a_running_engine_on_both_actors_or_neither(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    stream = pipeline.start_stream(world["cfg"], world["data"], world["agents"], SOURCES, TRADE_START, TRADE_END,
                                   actor_options=world["opts"])
    cli = ["-s", f"ray.address={ray.get_runtime_context().gcs_address}", "config", "set"]
    done: dict[str, Any] = {}

    def mid_run(status: dict[str, Any]) -> None:
        if done or status["state"] != "running" or status["bars"] < 5:
            return
        capsys.readouterr()
        # a bad value first: refused naming the key, nothing changes on either actor
        done["bad_rc"] = main([*cli, "risk.max_position", "0.1", "consensus.threshold", "2", "--name", "cs-paper"])
        done["bad"] = capsys.readouterr().err
        # valid alone, refused by the consensus's own check after the portfolio prepared: both abort
        done["quorum_rc"] = main([*cli, "risk.max_position", "0.1", "consensus.quorum", "2"])
        done["quorum"] = capsys.readouterr().err
        done["good_rc"] = main([*cli, "risk.max_position", "0.05", "consensus.threshold", "0.01", "--json"])
        done["good"] = json.loads(capsys.readouterr().out)
        done["bars"] = status["bars"]

    status = pipeline.watch_stream(stream, on_status=mid_run, poll_s=0.05)
    try:
        assert status["state"] == "finished", status
        assert done, "the run ended before the change could be made"
        assert done["bad_rc"] == 2 and "ConfigError" in done["bad"] and "'consensus.threshold'" in done["bad"]
        assert done["quorum_rc"] == 2 and "more than the 1 agents" in done["quorum"], done["quorum"]
        assert done["good_rc"] == 0
        result = done["good"]
        assert result["changes"] == {"risk.max_position": {"from": 0.2, "to": 0.05},
                                     "consensus.threshold": {"from": 0.0, "to": 0.01}}
        assert result["after_bar"] is not None and status["bars"] > done["bars"]  # mid-run

        settings = ray.get(stream.graph.settings.remote())
        assert settings["risk"]["values"]["max_position"] == 0.05
        assert settings["consensus"]["values"]["threshold"] == 0.01
        assert settings["risk"]["change_id"] == settings["consensus"]["change_id"] == result["change_id"]
        # journaled by both, once: the refused change left no trace
        (p,) = ray.get(stream.portfolio.settings_changes.remote())
        (c,) = ray.get(stream.consensus.settings_changes.remote())
        assert p["values"] == {"max_position": 0.05} and c["values"] == {"threshold": 0.01}
        assert p["change_id"] == c["change_id"] == result["change_id"]
        assert ray.get(stream.portfolio.verify_journal.remote())["ok"]
    finally:
        for actor in (stream.graph, stream.consensus, stream.portfolio):
            ray.kill(actor, no_restart=True)
