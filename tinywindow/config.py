"""Typed, frozen configuration: defaults < JSON/YAML file < ``TW_*`` env vars < CLI flags.

Every section is a pydantic model with ``extra="forbid"`` and ``frozen=True``: an unknown key
or a bad value raises ``ConfigError`` naming the key, the value and what is allowed.  Keys are
addressed with dots (``cfg.get("risk.max_position")``); ``cfg.set(...)`` returns a new,
re-validated config.  Environment variables use a double underscore between levels:
``TW_RISK__MAX_POSITION=0.2``.  Secrets are ``SecretStr``: masked in ``repr``, logs and saved
files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tinywindow.errors import ConfigError

ENV_PREFIX = "TW_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class SourceConfig(_Section):
    """One market-data source, served by one DataSourceActor."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["bundled", "file", "synthetic", "grpc"]
    # bundled: datasets from {"sp500", "nasdaq", "goog", "btcusd"}
    datasets: list[str] = Field(default_factory=list)
    # file: a CSV or Parquet path (or directory of them) and its column mapping
    path: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    symbol: str | None = None
    timezone: str = "UTC"
    # synthetic
    n_symbols: int = Field(default=20, ge=1, le=100_000)
    n_bars: int = Field(default=2520, ge=2)
    seed: int = 0
    start: str = "2007-01-01"
    freq: str = "B"
    # grpc
    address: str = "127.0.0.1:50051"
    symbols: list[str] = Field(default_factory=list)
    max_reconnects: int = Field(default=20, ge=0)  # in a row without progress, then give up
    # streaming (replay of any source through stream())
    replay_speed: float = Field(default=0.0, ge=0.0)


class DataConfig(_Section):
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(name="bundled", kind="bundled", datasets=["sp500", "nasdaq", "goog"])]
    )
    cache_bytes: int = Field(default=512 * 1024**2, ge=0)
    on_bad_rows: Literal["reject", "quarantine"] = "reject"
    persist: bool = False
    segment_rows: int = Field(default=1_000_000, ge=1)


class FeedConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    speed: float = Field(default=0.0, ge=0.0)  # 0 = as fast as possible
    batch_rows: int = Field(default=1, ge=1)


class CryptoConfig(_Section):
    """Layer 4 (``tinywindow.crypto``); paths are under ``data_dir`` unless absolute."""

    backend: Literal["cryptography", "oqs", "auto"] = "cryptography"
    kem: Literal["hybrid", "mlkem768"] = "hybrid"
    keystore_dir: str = "keys"
    passphrase_env: str = Field(default="TW_PASSPHRASE", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # EncryptedStore root: a path or a pyarrow.fs URI (s3://bucket/prefix)
    store_dir: str = "store"
    journal_dir: str = "journal"
    # scrypt cost for new keystores: 2**n iterations (17: ~128 MiB, ~0.4 s per unlock)
    scrypt_log2_n: int = Field(default=17, ge=10, le=22)
    # fsync every journal append (a trading journal wants this; backtests may turn it off)
    journal_fsync: bool = True


class AgentConfig(_Section):
    """Layer 2 (``tinywindow.agents``); ``registry_dir`` and ``tune_dir`` are under ``data_dir``
    unless absolute.  Per-agent hyperparameters beyond these live in ``agents.params`` and in
    the tuned file a sweep writes."""

    window: int = Field(default=32, ge=2, le=1024)  # feature rows an agent sees
    cost: float = Field(default=0.0005, ge=0.0, le=0.1)  # per unit of exposure changed
    registry_dir: str = "models"
    train_iterations: int = Field(default=4, ge=1)  # PPO iterations per training run
    train_batch: int = Field(default=2048, ge=64)  # env steps per PPO iteration
    hidden: int = Field(default=32, ge=4)
    lr: float = Field(default=3e-4, gt=0)
    xgb_rounds: int = Field(default=200, ge=1)
    seed: int = 0
    retrain_every: int = Field(default=500, ge=1)  # outcomes between automatic retrains
    retrain_bars: int = Field(default=1260, ge=64)  # RL retrains on the latest bars (5 years)
    embargo_bars: int | None = Field(default=None, ge=0)  # walk-forward gap; None = window
    valid_bars: int = Field(default=504, ge=20)  # walk-forward validation length (2 years)
    tune_dir: str = "tune"
    num_cpus: float = Field(default=0.25, ge=0.0)


class ConsensusConfig(_Section):
    threshold: float = Field(default=0.55, ge=0.0, le=1.0)
    quorum: int = Field(default=2, ge=1)
    max_disagreement: float = Field(default=0.5, ge=0.0, le=1.0)
    stale_after_s: float = Field(default=300.0, gt=0)
    min_weight: float = Field(default=0.1, gt=0)
    max_weight: float = Field(default=10.0, gt=0)
    learning_rate: float = Field(default=0.1, gt=0, le=1.0)
    decisions_kept: int = Field(default=100_000, ge=1)  # decisions remembered for learning
    checkpoint_every: int = Field(default=200, ge=1)  # journal records between checkpoints
    num_cpus: float = Field(default=0.05, ge=0.0)


class RiskConfig(_Section):
    max_position: float = Field(default=0.2, gt=0, le=1.0)  # fraction of equity per symbol
    max_gross: float = Field(default=1.0, gt=0)
    max_net: float = Field(default=1.0, gt=0)
    max_order_notional_usd: float = Field(default=1_000_000.0, gt=0)
    collar: float = Field(default=0.05, gt=0, le=1.0)
    confidence_floor: float = Field(default=0.5, ge=0.0, le=1.0)
    max_weight: float = Field(default=0.25, gt=0, le=1.0)
    target_vol: float = Field(default=0.15, gt=0)
    reduce_drawdown: float = Field(default=0.10, gt=0, le=1.0)
    halt_drawdown: float = Field(default=0.20, gt=0, le=1.0)
    resume_drawdown: float = Field(default=0.05, ge=0, le=1.0)  # REDUCING -> ACTIVE below this
    max_price_age_s: float = Field(default=4 * 86400.0, gt=0)  # older reference price: fail closed
    vol_model: Literal["garch", "ewma"] = "garch"
    ewma_lambda: float = Field(default=0.94, gt=0, lt=1.0)
    min_vol_obs: int = Field(default=20, ge=2)  # fewer returns: no estimate, no new exposure
    garch_min_obs: int = Field(default=250, ge=50)  # fewer returns: EWMA
    garch_refit_every: int = Field(default=21, ge=1)
    vol_window: int = Field(default=1000, ge=50)
    periods_per_year: int = Field(default=252, ge=1)


class PortfolioConfig(_Section):
    initial_cash_usd: float = Field(default=1_000_000.0, gt=0)
    commission_bps: float = Field(default=1.0, ge=0)
    slippage_bps: float = Field(default=2.0, ge=0)
    mode: Literal["backtest", "paper", "live"] = "backtest"
    commission_per_share_usd: float = Field(default=0.0, ge=0)
    commission_min_usd: float = Field(default=0.0, ge=0)
    lot_size: float = Field(default=1.0, gt=0)  # quantities are multiples of this
    account: str = Field(default="default", min_length=1)  # part of every order id
    checkpoint_every: int = Field(default=200, ge=1)  # journal records between checkpoints
    events_kept: int = Field(default=100_000, ge=1)  # outcomes / risk events held in memory
    num_cpus: float = Field(default=0.05, ge=0.0)


class ServingConfig(_Section):
    host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    grpc_port: int = Field(default=9000, ge=0, le=65535)
    token: SecretStr | None = None
    max_request_bytes: int = Field(default=4 * 1024**2, ge=1024)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=2, ge=1)
    replica_cpus: float = Field(default=0.25, gt=0)
    max_batch_size: int = Field(default=64, ge=1)
    batch_wait_timeout_s: float = Field(default=0.0, ge=0)  # 0: batch whatever queued during the last pass


class RayConfig(_Section):
    address: str | None = None  # None: start an embedded local Ray
    num_cpus: int | None = Field(default=None, ge=1)
    object_store_bytes: int | None = Field(default=None, ge=78 * 1024**2)


class Config(_Section):
    data_dir: str = "var"
    log: LogConfig = LogConfig()
    ray: RayConfig = RayConfig()
    data: DataConfig = DataConfig()
    feed: FeedConfig = FeedConfig()
    crypto: CryptoConfig = CryptoConfig()
    agents: AgentConfig = AgentConfig()
    consensus: ConsensusConfig = ConsensusConfig()
    risk: RiskConfig = RiskConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    serving: ServingConfig = ServingConfig()

    # ------------------------------------------------------------------ access
    def get(self, key: str) -> Any:
        node: Any = self
        for part in key.split("."):
            if not isinstance(node, BaseModel) or part not in type(node).model_fields:
                raise ConfigError(f"unknown config key {key!r}", key=key)
            node = getattr(node, part)
        return node

    def set(self, key: str, value: Any) -> Config:
        """A new config with ``key`` set to ``value`` (validated)."""
        self.get(key)  # unknown keys fail here with the full key named
        data = self.model_dump(mode="python")
        _assign(data, key.split("."), value)
        return build(data)

    def path(self, *parts: str) -> Path:
        """A path under ``data_dir``."""
        return Path(self.data_dir).joinpath(*parts)

    def save(self, path: str | Path) -> None:
        """Write the config as YAML or JSON (by extension); secrets are left out."""
        data = self.model_dump(mode="json", exclude=_secret_paths(self))
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, indent=2) if p.suffix == ".json" else yaml.safe_dump(data, sort_keys=False)
        p.write_text(text)


def _secret_paths(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            out[name] = True
        elif isinstance(value, BaseModel):
            sub = _secret_paths(value)
            if sub:
                out[name] = sub
    return out


def _assign(data: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _parse_scalar(text: str) -> Any:
    """Parse an env/CLI value the way YAML would ("0.2" -> 0.2, "[a, b]" -> list)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def build(data: Mapping[str, Any]) -> Config:
    """Validate a nested mapping into a Config, turning pydantic errors into ConfigError."""
    try:
        return Config.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            parent = ".".join(str(p) for p in err["loc"][:-1])
            raise ConfigError(
                f"unknown config key {key!r} (allowed: {', '.join(_allowed(parent))})", key=key
            ) from None
        shown = "<secret>" if "token" in key or "passphrase" in key else repr(value)
        raise ConfigError(f"bad value for {key!r}: {shown} - {err['msg']}", key=key) from None


def _allowed(parent: str) -> list[str]:
    model: type[BaseModel] = Config
    for part in [p for p in parent.split(".") if p]:
        if part.isdigit():
            continue
        ann = model.model_fields[part].annotation
        for cand in (ann, *getattr(ann, "__args__", ())):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                model = cand
                break
    return sorted(model.model_fields)


def read_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        loaded = json.loads(p.read_text()) if p.suffix == ".json" else yaml.safe_load(p.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {p} is not valid {p.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return loaded


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``TW_SECTION__KEY=value`` pairs as a nested mapping (``TW_PASSPHRASE`` and the like,
    without a double underscore and not naming a top-level key, are ignored)."""
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if len(parts) == 1 and parts[0] not in Config.model_fields:
            continue
        _assign(out, parts, _parse_scalar(raw))
    return out


def load(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> Config:
    """Defaults < file < env (``TW_*``) < overrides (``key=value`` strings or a mapping)."""
    data: dict[str, Any] = {}
    if path is not None:
        data = _merge(data, read_file(path))
    data = _merge(data, env_overrides(os.environ if environ is None else environ))
    items = overrides.items() if isinstance(overrides, Mapping) else (_split(o) for o in overrides)
    cfg = build(data)
    for key, value in items:
        cfg = cfg.set(key, value)
    return cfg


def _split(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value")
    key, raw = item.split("=", 1)
    return key.strip(), _parse_scalar(raw)
