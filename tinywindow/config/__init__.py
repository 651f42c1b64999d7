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
``tinywindow.config._file``: size, UTF-8, depth, duplicate keys and YAML aliases are checked first.
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from tinywindow.config._file import MAX_VALUE_CHARS, config_error, load_yaml, shorten, show
from tinywindow.config._file import read_file as read_file
from tinywindow.consensus.config import ConsensusConfig
from tinywindow.core.settings import Section
from tinywindow.core.storage import StorageConfig
from tinywindow.crypto.config import CryptoConfig
from tinywindow.data.config import DataConfig, FeedConfig, SourceConfig
from tinywindow.engine.config import RunConfig
from tinywindow.execution.config import PortfolioConfig
from tinywindow.models.config import AgentConfig
from tinywindow.risk.config import RiskConfig
from tinywindow.serving.config import ServingConfig

__all__ = [
    "AgentConfig",
    "Config",
    "ConsensusConfig",
    "CryptoConfig",
    "DataConfig",
    "FeedConfig",
    "LogConfig",
    "PortfolioConfig",
    "RayConfig",
    "RiskConfig",
    "RunConfig",
    "ServingConfig",
    "SourceConfig",
    "build",
    "env_overrides",
    "load",
    "parse_override",
    "read_file",
    "runtime_changes",
]

ENV_PREFIX = "TW_"
_SECRET_WORDS = ("token", "passphrase", "password", "secret")


class LogConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class RayConfig(Section):
    address: str | None = None  # None: start an embedded local Ray
    num_cpus: int | None = Field(default=None, ge=1, le=100_000)
    object_store_bytes: int | None = Field(default=None, ge=78 * 1024**2, le=2**44)  # up to 16 TiB


class Config(Section):
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
    run: RunConfig = RunConfig()
    serving: ServingConfig = ServingConfig()
    storage: StorageConfig = StorageConfig()

    @model_validator(mode="after")
    def _run_names_known(self) -> Config:
        """``run.train_sources`` / ``run.trade_sources`` name sources of ``data.sources``."""
        names = [s.name for s in self.data.sources]
        for key in ("train_sources", "trade_sources"):
            for i, name in enumerate(getattr(self.run, key)):
                if name not in names:
                    raise config_error(
                        f"run.{key}.{i} names source {shorten(name, 64)!r}, which data.sources does not have "
                        f"(sources: {', '.join(names) or 'none'})", key=f"run.{key}.{i}")
        return self

    @model_validator(mode="after")
    def _construction_reads_scores(self) -> Config:
        """Portfolio construction sizes by the consensus's cross-sectional score: it needs the
        score mode (a vote-mode score is a mean of the agents' expected exposures, which can
        disagree with the decided action), and holds only what the consensus affirms (a
        no-decision kept at its old weight would sit outside the constraints)."""
        c = self.portfolio.construction
        if c.method == "none":
            return self
        if self.consensus.mode != "score":
            raise config_error(f"portfolio.construction.method {c.method} needs consensus.mode score "
                               f"(it is {self.consensus.mode})", key="consensus.mode")
        if self.portfolio.no_decision == "keep":
            raise config_error(f"portfolio.no_decision keep cannot be used with portfolio.construction.method "
                               f"{c.method}: a kept weight would sit outside the constraints", key="portfolio.no_decision")
        return self

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


RUNTIME_SECTIONS = ("risk", "consensus")  # the sections ``tinywindow config set`` changes on a running engine


def parse_override(key: str, raw: str) -> Any:
    """A command-line string as the value for ``key``, parsed as ``-s key=value`` parses it."""
    return _parse_value(key.split("."), raw, f"the value of {shorten(key, 80)}")


def runtime_changes(changes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Dotted changes (``{"risk.max_position": 0.1}``) by section (``{"risk": {"max_position":
    0.1}}``); only fields of ``RUNTIME_SECTIONS`` can change on a running engine, anything else
    is refused naming the key (values are validated by the running components)."""
    out: dict[str, dict[str, Any]] = {}
    defaults = Config()
    for key, value in changes.items():
        defaults.get(key)  # an unknown key says so first
        parts = key.split(".")
        if parts[0] not in RUNTIME_SECTIONS:
            raise config_error(
                f"{shorten(key)!r} cannot change on a running engine: only {', '.join(f'{s}.*' for s in RUNTIME_SECTIONS)} "
                "can (set it in the config and restart the run)", key=key)
        if len(parts) != 2:
            raise config_error(f"{shorten(key)!r} names the {parts[0]} section, not one of its keys", key=key)
        out.setdefault(parts[0], {})[parts[1]] = value
    return out


def _split(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise config_error(f"override {shorten(item)!r} must look like key=value", key=item)
    key, raw = item.split("=", 1)
    key = key.strip()
    return key, _parse_value(key.split("."), raw, f"--set {shorten(key, 80)}")
