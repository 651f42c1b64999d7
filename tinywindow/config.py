"""Typed, frozen configuration: defaults < JSON/YAML file < ``TW_*`` env vars < CLI flags.

Every section is a pydantic model with ``extra="forbid"`` and ``frozen=True``: an unknown key
or a bad value raises ``ConfigError`` naming the key, the value and what is allowed.  Keys are
addressed with dots (``cfg.get("risk.max_position")``); ``cfg.set(...)`` returns a new,
re-validated config.  Environment variables use a double underscore between levels:
``TW_RISK__MAX_POSITION=0.2``.  Secrets are ``SecretStr``: masked in ``repr``, logs, saved
files and error messages.

Nothing hostile passes silently (docs/reliability/config.md): every number is finite and inside a
documented range, paired limits are ordered (``resume <= reduce <= halt`` drawdowns, min <= max),
time zones must exist, source names are unique.  An env or ``-s`` value for a text field (a
token, a path) is taken verbatim, never YAML-typed; one for a number or flag is converted by the
field's type; lists and sections are parsed as strict YAML.  Files are read by
``tinywindow._config_file``: size, UTF-8, depth, duplicate keys and YAML aliases are checked first.
"""

from __future__ import annotations

import itertools
import json
import os
import types
import typing
import zoneinfo
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from tinywindow._config_file import MAX_VALUE_CHARS, config_error, load_yaml, shorten, show
from tinywindow._config_file import read_file as read_file
from tinywindow.serving.limits import GatewayLimits

ENV_PREFIX = "TW_"
_SECRET_WORDS = ("token", "passphrase", "password", "secret")


class _Section(BaseModel):
    # allow_inf_nan=False: inf/-inf/NaN in any float field is refused, whatever its bounds
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


def _existing_timezone(name: str) -> str:
    if name == "UTC":
        return name
    try:
        if len(name) > 64:
            raise ValueError
        zoneinfo.ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise ValueError("unknown time zone; use an IANA name such as 'UTC' or 'America/New_York'") from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_existing_timezone)]


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class SourceConfig(_Section):
    """One market-data source, served by one DataSourceActor."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["bundled", "file", "synthetic", "grpc"]
    # bundled: datasets from {"sp500", "nasdaq", "goog", "btcusd"}
    datasets: list[str] = Field(default_factory=list)
    # file: a CSV or Parquet path (or directory of them) and its column mapping
    path: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    symbol: str | None = None
    timezone: TimeZoneName = "UTC"
    # file: timestamps, one format per file (docs/reliability/files.md); unset = inferred from
    # the whole column and refused when ambiguous
    ts_format: str | None = Field(default=None, min_length=2, max_length=64)  # strftime, e.g. "%d.%m.%Y %H:%M"
    dayfirst: bool | None = None  # 01/02/2020 is 1 Feb (true) or 2 Jan (false)
    epoch_unit: Literal["s", "ms", "us", "ns"] | None = None  # integer epoch column
    time_column: str | None = Field(default=None, min_length=1, max_length=256)  # Date + Time
    close_time: str | None = Field(  # "16:00": date-only bars stamped at this time in `timezone`
        default=None, pattern=r"^(?:(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?|24:00)$"
    )
    dst_policy: Literal["refuse", "shift"] = "refuse"  # shift: gap -> forward, overlap -> earlier
    mixed_offsets: Literal["refuse", "utc"] = "refuse"  # utc: each time by its own UTC offset
    # file: value bounds (finite, > 0 already required) and resource limits
    min_price: float = Field(default=1e-9, ge=1e-300, le=1e6)
    max_price: float = Field(default=1e12, ge=1.0, le=1e300)
    max_volume: float = Field(default=1e18, gt=0, le=1e300)
    max_file_mb: float = Field(default=2048.0, gt=0, le=1_048_576)  # up to 1 TiB
    max_rows: int = Field(default=50_000_000, ge=1, le=2_000_000_000)
    max_columns: int = Field(default=256, ge=2, le=10_000)
    max_uncompressed_mb: float = Field(default=8192.0, gt=0, le=1_048_576)  # Parquet, decompressed
    chunk_rows: int = Field(default=65_536, ge=1, le=10_000_000)  # CSV rows per read block (about)

    @model_validator(mode="after")
    def _check_file_options(self) -> SourceConfig:
        from datetime import datetime

        if self.min_price >= self.max_price:
            raise ValueError(f"min_price ({self.min_price:g}) must be below max_price ({self.max_price:g})")
        if self.ts_format is not None:
            if "%Y" not in self.ts_format and "%y" not in self.ts_format:
                raise ValueError(f"ts_format {self.ts_format!r} has no year (%Y or %y)")
            sample = datetime(2001, 2, 3, 4, 5, 6, 7000)
            try:
                datetime.strptime(sample.strftime(self.ts_format), self.ts_format)
            except ValueError as exc:
                raise ValueError(f"ts_format {self.ts_format!r} is not a usable strftime format: {exc}") from None
        given = [k for k in ("ts_format", "dayfirst", "epoch_unit") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"set at most one of ts_format, dayfirst, epoch_unit (got {', '.join(given)})")
        if self.close_time is not None and (self.epoch_unit is not None or self.time_column is not None):
            raise ValueError("close_time is for date-only timestamps; it cannot go with epoch_unit or time_column")
        return self

    # synthetic
    n_symbols: int = Field(default=20, ge=1, le=100_000)
    n_bars: int = Field(default=2520, ge=2, le=10_000_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    start: str = "2007-01-01"
    freq: str = "B"
    # grpc
    address: str = "127.0.0.1:50051"
    symbols: list[str] = Field(default_factory=list)
    max_reconnects: int = Field(default=20, ge=0, le=1_000_000)  # in a row without progress, then give up
    # streaming (replay of any source through stream())
    replay_speed: float = Field(default=0.0, ge=0.0, le=1e6)


class DataConfig(_Section):
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(name="bundled", kind="bundled", datasets=["sp500", "nasdaq", "goog"])],
        max_length=256,
    )
    cache_bytes: int = Field(default=512 * 1024**2, ge=0, le=2**40)  # up to 1 TiB
    on_bad_rows: Literal["reject", "quarantine"] = "reject"
    persist: bool = False
    segment_rows: int = Field(default=1_000_000, ge=1, le=100_000_000)

    @model_validator(mode="after")
    def _unique_source_names(self) -> DataConfig:
        first: dict[str, int] = {}
        for i, src in enumerate(self.sources):
            if src.name in first:
                raise config_error(
                    f"duplicate source name {src.name!r} at data.sources.{i}.name (already used by "
                    f"data.sources.{first[src.name]}): each source needs its own name",
                    key=f"data.sources.{i}.name",
                )
            first[src.name] = i
        return self


class FeedConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    speed: float = Field(default=0.0, ge=0.0, le=1e6)  # 0 = as fast as possible
    batch_rows: int = Field(default=1, ge=1, le=1_000_000)


class CryptoConfig(_Section):
    """Layer 4 (``tinywindow.crypto``); paths are under ``data_dir`` unless absolute."""

    backend: Literal["cryptography", "oqs", "auto"] = "cryptography"
    kem: Literal["hybrid", "mlkem768"] = "hybrid"
    keystore_dir: str = "keys"
    passphrase_env: str = Field(default="TW_PASSPHRASE", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)
    # EncryptedStore root: a path or a pyarrow.fs URI (s3://bucket/prefix)
    store_dir: str = "store"
    journal_dir: str = "journal"
    # scrypt cost for new keystores: 2**n iterations (17: ~128 MiB, ~0.4 s per unlock)
    scrypt_log2_n: int = Field(default=17, ge=10, le=20)  # the keystore refuses more on open
    # fsync every journal append (a trading journal wants this; backtests may turn it off)
    journal_fsync: bool = True


class AgentConfig(_Section):
    """Layer 2 (``tinywindow.agents``); ``registry_dir`` and ``tune_dir`` are under ``data_dir``
    unless absolute.  Per-agent hyperparameters beyond these live in ``agents.params`` and in
    the tuned file a sweep writes."""

    window: int = Field(default=32, ge=2, le=1024)  # feature rows an agent sees
    cost: float = Field(default=0.0005, ge=0.0, le=0.1)  # per unit of exposure changed
    registry_dir: str = "models"
    train_iterations: int = Field(default=4, ge=1, le=100_000)  # PPO iterations per training run
    train_batch: int = Field(default=2048, ge=64, le=10_000_000)  # env steps per PPO iteration
    hidden: int = Field(default=32, ge=4, le=4096)
    lr: float = Field(default=3e-4, gt=0, le=1.0)
    xgb_rounds: int = Field(default=200, ge=1, le=100_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    retrain_every: int = Field(default=500, ge=1, le=1_000_000_000)  # outcomes between automatic retrains
    retrain_bars: int = Field(default=1260, ge=64, le=10_000_000)  # RL retrains on the latest bars (5 years)
    embargo_bars: int | None = Field(default=None, ge=0, le=100_000)  # walk-forward gap; None = window
    valid_bars: int = Field(default=504, ge=20, le=10_000_000)  # walk-forward validation length (2 years)
    tune_dir: str = "tune"
    num_cpus: float = Field(default=0.25, ge=0.0, le=1024)


class ConsensusConfig(_Section):
    threshold: float = Field(default=0.55, ge=0.0, le=1.0)
    quorum: int = Field(default=2, ge=1, le=1000)
    max_disagreement: float = Field(default=0.5, ge=0.0, le=1.0)
    stale_after_s: float = Field(default=300.0, gt=0, le=365 * 86400.0)
    min_weight: float = Field(default=0.1, gt=0, le=1e6)
    max_weight: float = Field(default=10.0, gt=0, le=1e6)
    learning_rate: float = Field(default=0.1, gt=0, le=1.0)
    decisions_kept: int = Field(default=100_000, ge=1, le=100_000_000)  # decisions remembered for learning
    checkpoint_every: int = Field(default=200, ge=1, le=10_000_000)  # journal records between checkpoints
    num_cpus: float = Field(default=0.05, ge=0.0, le=1024)

    @model_validator(mode="after")
    def _ordered(self) -> ConsensusConfig:
        _require_ordered("consensus", ("min_weight", self.min_weight), ("max_weight", self.max_weight))
        return self


class RiskConfig(_Section):
    max_position: float = Field(default=0.2, gt=0, le=1.0)  # fraction of equity per symbol
    max_gross: float = Field(default=1.0, gt=0, le=100.0)  # sum of |exposure| / equity
    max_net: float = Field(default=1.0, gt=0, le=100.0)
    max_order_notional_usd: float = Field(default=1_000_000.0, gt=0, le=1e15)
    collar: float = Field(default=0.05, gt=0, le=1.0)
    confidence_floor: float = Field(default=0.5, ge=0.0, le=1.0)
    max_weight: float = Field(default=0.25, gt=0, le=1.0)
    target_vol: float = Field(default=0.15, gt=0, le=10.0)
    reduce_drawdown: float = Field(default=0.10, gt=0, le=1.0)
    halt_drawdown: float = Field(default=0.20, gt=0, le=1.0)
    resume_drawdown: float = Field(default=0.05, ge=0, le=1.0)  # REDUCING -> ACTIVE below this
    max_price_age_s: float = Field(default=4 * 86400.0, gt=0, le=365 * 86400.0)  # older reference price: fail closed
    vol_model: Literal["garch", "ewma"] = "garch"
    ewma_lambda: float = Field(default=0.94, gt=0, lt=1.0)
    min_vol_obs: int = Field(default=20, ge=2, le=100_000)  # fewer returns: no estimate, no new exposure
    garch_min_obs: int = Field(default=250, ge=50, le=100_000)  # fewer returns: EWMA
    garch_refit_every: int = Field(default=21, ge=1, le=100_000)
    vol_window: int = Field(default=1000, ge=50, le=1_000_000)
    periods_per_year: int = Field(default=252, ge=1, le=365 * 86400)  # up to one per second

    @model_validator(mode="after")
    def _ordered(self) -> RiskConfig:
        _require_ordered(
            "risk",
            ("resume_drawdown", self.resume_drawdown),
            ("reduce_drawdown", self.reduce_drawdown),
            ("halt_drawdown", self.halt_drawdown),
        )
        # a window shorter than garch_min_obs would never fit GARCH: EWMA forever, silently
        _require_ordered("risk", ("garch_min_obs", self.garch_min_obs), ("vol_window", self.vol_window))
        return self


class PortfolioConfig(_Section):
    initial_cash_usd: float = Field(default=1_000_000.0, gt=0, le=1e15)
    commission_bps: float = Field(default=1.0, ge=0, le=10_000)
    slippage_bps: float = Field(default=2.0, ge=0, le=10_000)
    mode: Literal["backtest", "paper", "live"] = "backtest"
    commission_per_share_usd: float = Field(default=0.0, ge=0, le=1_000)
    commission_min_usd: float = Field(default=0.0, ge=0, le=1e6)
    lot_size: float = Field(default=1.0, gt=0, le=1e9)  # quantities are multiples of this
    account: str = Field(default="default", min_length=1, max_length=128)  # part of every order id
    checkpoint_every: int = Field(default=200, ge=1, le=10_000_000)  # journal records between checkpoints
    events_kept: int = Field(default=100_000, ge=1, le=100_000_000)  # outcomes / risk events held in memory
    num_cpus: float = Field(default=0.05, ge=0.0, le=1024)


class ServingConfig(_Section):
    host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    grpc_port: int = Field(default=9000, ge=0, le=65535)
    token: SecretStr | None = Field(default=None, max_length=4096)
    max_request_bytes: int = Field(default=4 * 1024**2, ge=1024, le=1024**3)
    min_replicas: int = Field(default=1, ge=0, le=10_000)
    max_replicas: int = Field(default=2, ge=1, le=10_000)
    replica_cpus: float = Field(default=0.25, gt=0, le=1024)
    max_batch_size: int = Field(default=64, ge=1, le=100_000)
    batch_wait_timeout_s: float = Field(default=0.0, ge=0, le=60.0)  # 0: batch whatever queued during the last pass
    limits: GatewayLimits = Field(default_factory=GatewayLimits)  # hostile-input bounds (docs/reliability/gateway.md)

    @model_validator(mode="after")
    def _consistent(self) -> ServingConfig:
        _require_ordered("serving", ("min_replicas", self.min_replicas), ("max_replicas", self.max_replicas))
        if self.http_port and self.http_port == self.grpc_port:
            raise config_error(
                f"serving.http_port and serving.grpc_port are both {self.http_port}: they need different ports",
                key="serving.grpc_port",
            )
        token = self.token.get_secret_value() if self.token is not None else ""
        if token != token.strip() or not token.isprintable():
            # a client's "Bearer <token>" header is stripped, so such a token could never match
            raise config_error(
                "serving.token has leading/trailing whitespace or control characters (value not shown)",
                key="serving.token",
            )
        return self


class RayConfig(_Section):
    address: str | None = None  # None: start an embedded local Ray
    num_cpus: int | None = Field(default=None, ge=1, le=100_000)
    object_store_bytes: int | None = Field(default=None, ge=78 * 1024**2, le=2**44)  # up to 16 TiB


def _require_ordered(section: str, *pairs: tuple[str, float]) -> None:
    """Refuse ``a <= b <= ...`` out of order, naming the first key that breaks it."""
    for (_, low), (high_name, high) in itertools.pairwise(pairs):
        if low > high:
            chain = " <= ".join(f"{section}.{name}" for name, _ in pairs)
            got = ", ".join(f"{section}.{name}={value!r}" for name, value in pairs)
            raise config_error(f"need {chain}; got {got}", key=f"{section}.{high_name}")


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
                allowed = f" (allowed: {', '.join(type(node).model_fields)})" if isinstance(node, BaseModel) else ""
                raise config_error(f"unknown config key {shorten(key)!r}{allowed}", key=key)
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


def _model_in(ann: Any) -> type[BaseModel] | None:
    for cand in (ann, *typing.get_args(ann)):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return cand
    return None


def _field_annotation(parts: Sequence[str]) -> Any:
    """The type of the field at ``parts`` below ``Config``, or None when there is no such field."""
    model: type[BaseModel] | None = Config
    ann: Any = None
    for part in parts:
        if model is None or part not in model.model_fields:
            return None
        ann = model.model_fields[part].annotation
        model = _model_in(ann)
    return ann


def _value_kind(ann: Any) -> tuple[Literal["text", "number", "structured"], bool]:
    """How an env / ``-s`` string becomes a value of type ``ann``, and whether it may be None."""
    union = typing.get_origin(ann) in (typing.Union, types.UnionType)
    args = typing.get_args(ann) if union else (ann,)
    nullable = type(None) in args
    args = tuple(a for a in args if a is not type(None))

    def is_text(a: Any) -> bool:
        if typing.get_origin(a) is Literal:
            return all(isinstance(v, str) for v in typing.get_args(a))
        return a in (str, SecretStr)

    if args and all(is_text(a) for a in args):
        return "text", nullable
    if any(typing.get_origin(a) in (list, dict) or _model_in(a) is not None for a in args):
        return "structured", nullable
    return "number", nullable


def _parse_value(parts: Sequence[str], raw: str, origin: str) -> Any:
    """A ``TW_*`` or ``-s`` string as the value for the field at ``parts``.

    Text fields (tokens, paths, names) take the string verbatim: ``abc #def``, ``yes``, ``0123``
    and ``null`` stay exactly that.  Numbers and flags get the stripped string, which pydantic
    converts by the field's type (``inf``, ``1e400`` and ``nan`` are refused); ``null`` (or
    empty) clears an optional one.  Lists and sections are parsed as strict YAML.
    """
    key = ".".join(parts)
    if len(raw) > MAX_VALUE_CHARS:
        raise config_error(f"{origin} is {len(raw)} characters long; the limit is {MAX_VALUE_CHARS}", key=key)
    ann = _field_annotation(parts)
    if ann is None:
        return raw  # an unknown key: validation names it (and never echoes the value)
    kind, nullable = _value_kind(ann)
    if kind == "text":
        return raw
    if kind == "structured":
        return load_yaml(raw, origin, key=key)
    text = raw.strip()
    if nullable and text.lower() in ("", "null", "none", "~"):
        return None
    return text


def _is_secret(loc: Sequence[str | int]) -> bool:
    parts = [str(p) for p in loc]
    if any(word in p.lower() for p in parts for word in _SECRET_WORDS):
        return True
    ann = _field_annotation(parts)
    return ann is SecretStr or SecretStr in typing.get_args(ann)


def build(data: Mapping[str, Any]) -> Config:
    """Validate a nested mapping into a Config, turning pydantic errors into ConfigError."""
    try:
        return Config.model_validate(dict(data))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        err = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parent = ".".join(str(p) for p in err["loc"][:-1])
            raise config_error(
                f"unknown config key {shorten(key)!r} (allowed: {', '.join(_allowed(parent))}){more}", key=key
            ) from None
        shown = "<secret>" if _is_secret(err["loc"]) else show(err.get("input"))
        raise config_error(f"bad value for {shorten(key)!r}: {shown} - {shorten(err['msg'], 300)}{more}", key=key) from None


def _allowed(parent: str) -> list[str]:
    model: type[BaseModel] = Config
    for part in [p for p in parent.split(".") if p]:
        if part.isdigit():
            continue
        if part not in model.model_fields:
            break
        model = _model_in(model.model_fields[part].annotation) or model
    return sorted(model.model_fields)


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``TW_SECTION__KEY=value`` pairs as a nested mapping (``TW_PASSPHRASE`` and the like,
    without a double underscore and not naming a top-level key, are ignored).  Two variables
    naming the same key (``TW_RISK__X`` and ``TW_risk__x``) are refused."""
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if len(parts) == 1 and parts[0] not in Config.model_fields:
            continue
        key = ".".join(parts)
        if key in seen:
            raise config_error(f"environment variables {seen[key]} and {shorten(name, 80)} both set {key!r}", key=key)
        seen[key] = shorten(name, 80)
        _assign(out, parts, _parse_value(parts, raw, f"environment variable {shorten(name, 80)}"))
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
        raise config_error(f"override {shorten(item)!r} must look like key=value", key=item)
    key, raw = item.split("=", 1)
    key = key.strip()
    return key, _parse_value(key.split("."), raw, f"--set {shorten(key, 80)}")
