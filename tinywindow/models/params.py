"""Hyperparameters of each agent: defaults < ``agents.*`` config < tuned file < overrides.

``tinywindow tune`` writes the best config of a sweep to ``<registry>/<agent>/tuned.json.twenc``,
a sealed file (``crypto.sealed``: encrypted to the keystore, signed, labelled
``<agent>/tuned.json``); ``resolve`` merges it in, given the unlocked keystore, so the next
training run picks it up without flags.  A tampered or swapped file raises ``IntegrityError``;
a plain ``tuned.json`` from before issue 12 is unsigned and refused (re-run the sweep).  The models
are frozen pydantic models that reject unknown keys, like every config section.

``DEMO_BUDGET`` and ``TEST_BUDGET`` are such overrides: the demo budget keeps all three
agents, with Ray start-up and evaluation, under three minutes on two cores; the test budget
trains in seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tinywindow.errors import ConfigError, IntegrityError, KeyStoreError
from tinywindow.models.config import AgentConfig

if TYPE_CHECKING:
    from tinywindow.crypto.keys import PrivateKeySource
    from tinywindow.crypto.keystore import KeyStore

AgentName = Literal["lstm", "transformer", "xgboost"]
AGENTS: tuple[str, ...] = ("lstm", "transformer", "xgboost")
RL_AGENTS: tuple[str, ...] = ("lstm", "transformer")
TUNED_FILE = "tuned.json"

# Overrides per agent; "iterations"/"rounds" are the training budget.
DEMO_BUDGET: dict[str, dict[str, Any]] = {
    "lstm": {"iterations": 16, "train_batch": 2048},
    "transformer": {"iterations": 10, "train_batch": 2048},
    "xgboost": {"rounds": 200},
}
TEST_BUDGET: dict[str, dict[str, Any]] = {
    "lstm": {"iterations": 2, "train_batch": 256, "minibatch": 64, "epochs": 2, "num_envs": 4, "episode_len": 64},
    "transformer": {"iterations": 2, "train_batch": 256, "minibatch": 64, "epochs": 2, "num_envs": 4, "episode_len": 64, "hidden": 16, "heads": 2},
    "xgboost": {"rounds": 20},
}


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PPOParams(_Params):
    """PPO + encoder settings shared by the LSTM and Transformer agents."""

    hidden: int = Field(default=32, ge=4, le=512)  # LSTM width / Transformer d_model
    layers: int = Field(default=1, ge=1, le=4)
    heads: int = Field(default=4, ge=1, le=16)  # Transformer only
    lr: float = Field(default=3e-4, gt=0, le=0.1)
    # An exposure moves only today's reward (and tomorrow's cost): a short horizon keeps the
    # noise of later, unrelated returns out of the advantages.
    gamma: float = Field(default=0.5, ge=0, le=1.0)
    lambda_: float = Field(default=0.95, ge=0, le=1.0)
    entropy_coeff: float = Field(default=0.01, ge=0)
    clip_param: float = Field(default=0.2, gt=0)
    vf_loss_coeff: float = Field(default=0.5, ge=0)
    iterations: int = Field(default=4, ge=1)
    train_batch: int = Field(default=2048, ge=64)
    minibatch: int = Field(default=256, ge=16)
    epochs: int = Field(default=4, ge=1)
    num_envs: int = Field(default=8, ge=1, le=64)
    episode_len: int = Field(default=256, ge=8)
    reward_scale: float = Field(default=100.0, gt=0)
    outcome_weight_cap: float = Field(default=10.0, ge=1.0)  # max reward weight of a traded bar (feedback)

    def model_config_dict(self) -> dict[str, Any]:
        """``model_config`` of the RLModule (architecture only)."""
        return {"hidden": self.hidden, "d_model": self.hidden, "layers": self.layers, "heads": self.heads}


class XGBParams(_Params):
    """Gradient-boosting settings (``xgboost.train``)."""

    rounds: int = Field(default=200, ge=1)
    max_depth: int = Field(default=3, ge=1, le=12)
    eta: float = Field(default=0.05, gt=0, le=1.0)
    subsample: float = Field(default=0.8, gt=0, le=1.0)
    colsample_bytree: float = Field(default=0.5, gt=0, le=1.0)
    min_child_weight: float = Field(default=5.0, ge=0)
    reg_lambda: float = Field(default=1.0, ge=0)
    outcome_weight_cap: float = Field(default=10.0, ge=1.0)  # max sample weight of a traded bar (feedback)
    # the cross-sectional agent (``xgb.xs``): rank the symbols of each bar, or regress the
    # per-bar z-score of the forward return; the single-symbol agent ignores it
    xs_objective: Literal["rank:pairwise", "rank:ndcg", "reg:squarederror"] = "rank:pairwise"


Params = PPOParams | XGBParams


def check_agent(agent: str) -> str:
    if agent not in AGENTS:
        raise ConfigError(f"unknown agent {agent!r} (have: {', '.join(AGENTS)})", key="agent")
    return agent


def defaults(agent: str, cfg: AgentConfig) -> dict[str, Any]:
    """The parameters ``agents.*`` sets for ``agent``."""
    check_agent(agent)
    if agent == "xgboost":
        return {"rounds": cfg.xgb_rounds}
    return {"hidden": cfg.hidden, "lr": cfg.lr, "iterations": cfg.train_iterations, "train_batch": cfg.train_batch}


def tuned_path(registry_root: Path, agent: str) -> Path:
    """The sealed tuned file of ``agent`` (``<registry>/<agent>/tuned.json.twenc``)."""
    from tinywindow.crypto.sealed import SUFFIX

    return Path(registry_root) / check_agent(agent) / f"{TUNED_FILE}{SUFFIX}"


def read_tuned_file(registry_root: Path, agent: str, keys: PrivateKeySource | None) -> dict[str, Any]:
    """The whole stored document (``params`` plus the sweep's info; {} when there is none),
    decrypted and verified with ``keys`` (the unlocked keystore)."""
    from tinywindow.crypto.sealed import open_sealed

    path = tuned_path(registry_root, agent)
    legacy = path.parent / TUNED_FILE
    if not os.path.lexists(path):
        if os.path.lexists(legacy):
            raise IntegrityError(
                f"tuned parameters {legacy} are stored in the clear and unsigned (written before "
                f"issue 12): re-run 'tinywindow tune --agent {agent}' to store them sealed, or delete it"
            )
        return {}
    if keys is None:
        raise KeyStoreError(f"tuned parameters {path} are encrypted: reading them needs the unlocked keystore")
    text = open_sealed(path, keys, f"{agent}/{TUNED_FILE}")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"tuned parameters {path} are not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("params", {}), dict):
        raise ConfigError(f"tuned parameters {path} hold no 'params' mapping")
    return data


def read_tuned(registry_root: Path, agent: str, keys: PrivateKeySource | None = None) -> dict[str, Any]:
    """The tuned parameters stored by ``tinywindow tune`` ({} when there are none)."""
    params: dict[str, Any] = read_tuned_file(registry_root, agent, keys).get("params", {})
    return params


def write_tuned(
    registry_root: Path, agent: str, params: Mapping[str, Any], info: Mapping[str, Any], keystore: KeyStore
) -> Path:
    """Seal a sweep's best parameters where ``resolve`` finds them (validated first); a plain
    ``tuned.json`` left from before issue 12 is removed once the sealed one is in place."""
    from tinywindow.crypto.sealed import write_sealed

    build(agent, dict(params))
    path = tuned_path(registry_root, agent)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"params": dict(params), **dict(info)}, indent=2, default=str)
    write_sealed(path, text.encode("utf-8"), keystore, f"{agent}/{TUNED_FILE}")
    (path.parent / TUNED_FILE).unlink(missing_ok=True)
    return path


def build(agent: str, values: Mapping[str, Any]) -> Params:
    model: type[PPOParams] | type[XGBParams] = XGBParams if check_agent(agent) == "xgboost" else PPOParams
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"bad {agent} parameter {key!r}: {err['msg']}", key=key) from None


def resolve(
    agent: str,
    cfg: AgentConfig,
    registry_root: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    use_tuned: bool = True,
    keys: PrivateKeySource | None = None,
) -> Params:
    """Defaults < ``agents.*`` < tuned file (when present; ``keys`` decrypts it) < explicit
    overrides."""
    values = defaults(agent, cfg)
    if use_tuned and registry_root is not None:
        values.update(read_tuned(registry_root, agent, keys))
    values.update(dict(overrides or {}))
    return build(agent, values)
