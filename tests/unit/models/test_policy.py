"""The plain-torch policy that serves the RL agents: the same weights and votes as the RLlib
module PPO trains, loaded from a signed registry without importing Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from ray.rllib.core.columns import Columns

from actors.training.rlmodule import build_module
from tests.unit.models.conftest import PASSPHRASE
from tests.unit.models.synth import NAMES
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.params import PPOParams
from tinywindow.models.registry import ModelRegistry
from tinywindow.models.rl import RLPredictor, build_policy
from tinywindow.models.windows import Normalizer, fit_normalizer, to_series

WINDOW = 8
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["lstm", "transformer"])
def rl_agent(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _config() -> dict[str, object]:
    return PPOParams(hidden=16, heads=2).model_config_dict()


def test_rlmodule_state_dict_loads_into_the_plain_policy_with_identical_logits(rl_agent: str) -> None:
    torch.manual_seed(1)
    module = build_module(rl_agent, WINDOW, len(NAMES), _config())
    state = module.state_dict()
    policy = build_policy(rl_agent, WINDOW, len(NAMES), _config())
    assert list(policy.state_dict()) == list(state)  # the same parameter names, in order
    policy.load_state_dict(state, strict=True)
    module.eval(), policy.eval()  # how both serve (RLPredictor has always put its module in eval mode)
    obs = torch.randn(64, WINDOW, len(NAMES), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
        assert torch.equal(policy(obs), expected)  # bit-identical, not just close
        assert torch.equal(policy.value(obs), module.compute_values({Columns.OBS: obs}))


def test_plain_policy_weights_warm_start_the_rlmodule(rl_agent: str) -> None:
    torch.manual_seed(3)
    policy = build_policy(rl_agent, WINDOW, len(NAMES), _config())
    predictor = RLPredictor(rl_agent, policy, _normalizer(), WINDOW, _config())
    module = build_module(rl_agent, WINDOW, len(NAMES), _config())
    module.load_state_dict({k: torch.as_tensor(v) for k, v in predictor.weights().items()}, strict=True)
    module.eval()
    obs = np.random.default_rng(4).normal(size=(16, WINDOW, len(NAMES))).astype(np.float32)
    with torch.inference_mode():
        logits = module.forward_inference({Columns.OBS: torch.from_numpy(obs)})[Columns.ACTION_DIST_INPUTS]
    np.testing.assert_array_equal(predictor.probabilities(obs), torch.softmax(logits, dim=-1).numpy())


def _normalizer() -> Normalizer:
    n = len(NAMES)
    return Normalizer(tuple(NAMES), np.zeros(n, np.float32), np.ones(n, np.float32))


_CHILD = """
import json, os, sys
import pyarrow as pa
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.registry import ModelRegistry

root, keys, features = sys.argv[1:4]
table = pa.ipc.open_file(features).read_all()
keystore = KeyStore.open(keys, os.environ["TW_TEST_PASSPHRASE"])  # model files are encrypted
votes = ModelRegistry(root, keystore).load("{agent}").predict(table)
print(json.dumps({{
    "actions": votes.column("action").to_pylist(),
    "confidence": votes.column("confidence").to_pylist(),
    "ray": sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")),
    "actors": sorted(m for m in sys.modules if m == "actors" or m.startswith("actors.")),
}}))
"""


def test_a_published_rl_version_serves_without_importing_ray(
    rl_agent: str, planted: pa.Table, keystore: KeyStore, registry_dir: Path, tmp_path: Path
) -> None:
    norm = fit_normalizer(to_series(planted), NAMES)
    torch.manual_seed(5)
    model = RLPredictor(rl_agent, build_policy(rl_agent, WINDOW, len(NAMES), _config()), norm, WINDOW, _config())
    ModelRegistry(registry_dir, keystore, signer=keystore).publish(model, {"source": "test"})
    features = tmp_path / "features.arrow"
    with pa.ipc.new_file(features, planted.schema) as writer:
        writer.write_table(planted)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(agent=rl_agent), str(registry_dir), str(keystore.directory), str(features)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "TW_TEST_PASSPHRASE": PASSPHRASE},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    child = json.loads(out.stdout.strip().splitlines()[-1])
    assert child["ray"] == [] and child["actors"] == []  # "ray" not in sys.modules
    votes = model.predict(planted)
    assert child["actions"] == votes.column("action").to_pylist()
    np.testing.assert_array_equal(np.asarray(child["confidence"], np.float32), votes.column("confidence").to_numpy())
