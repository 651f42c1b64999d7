"""The base of every config section and the checks sections share (time zones, ordered pairs,
one-line bounded errors).  Each package defines its own section beside its code and the root
``tinywindow.config.Config`` composes them."""

from __future__ import annotations

import itertools
import re
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from tinywindow.errors import ConfigError

MAX_SHOWN_CHARS = 200  # of a value quoted in an error message
MAX_MESSAGE_CHARS = 900  # of a whole error message


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


def config_error(message: str, key: str | None = None) -> ConfigError:
    """A ``ConfigError`` with a one-line message and key of bounded length."""
    line = " ".join(message.split())
    if len(line) > MAX_MESSAGE_CHARS:
        line = line[: MAX_MESSAGE_CHARS - 3] + "..."
    return ConfigError(line, key=None if key is None else shorten(key))


class Section(BaseModel):
    # allow_inf_nan=False: inf/-inf/NaN in any float field is refused, whatever its bounds
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

def existing_timezone(name: str) -> str:
    if name == "UTC":
        return name
    try:
        if len(name) > 64:
            raise ValueError
        zoneinfo.ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise ValueError("unknown time zone; use an IANA name such as 'UTC' or 'America/New_York'") from None
    return name

TimeZoneName = Annotated[str, AfterValidator(existing_timezone)]

def require_ordered(section: str, *pairs: tuple[str, float]) -> None:
    """Refuse ``a <= b <= ...`` out of order, naming the first key that breaks it."""
    for (_, low), (high_name, high) in itertools.pairwise(pairs):
        if low > high:
            chain = " <= ".join(f"{section}.{name}" for name, _ in pairs)
            got = ", ".join(f"{section}.{name}={value!r}" for name, value in pairs)
            raise config_error(f"need {chain}; got {got}", key=f"{section}.{high_name}")


# Ray's own resources: asked for with ``num_cpus`` (and never by a TinyWindow actor: no GPU,
# memory by the node), so a custom-resource mapping that names one is a mistake.
_RAY_BUILTIN_RESOURCES = frozenset({"CPU", "GPU", "memory", "object_store_memory"})
_RESOURCE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
MAX_RESOURCE_AMOUNT = 1_000_000.0


def placement_resources(value: dict[str, float]) -> dict[str, float]:
    """A Ray custom-resource request (``{"agents": 1}``): names Ray accepts, not Ray's built-in
    resources, amounts finite and positive; an amount above 1 whole (Ray rejects a fractional
    amount above 1).  Sorted by name, so two configs asking for the same thing are equal."""
    if len(value) > 16:
        raise ValueError(f"at most 16 custom resources, got {len(value)}")
    for name, amount in value.items():
        if not _RESOURCE_NAME.fullmatch(name):
            raise ValueError(f"resource name {shorten(name, 64)!r} must be 1-64 letters, digits or _.:- "
                             "and start with a letter or _")
        if name in _RAY_BUILTIN_RESOURCES:
            raise ValueError(f"{name!r} is one of Ray's own resources: set it with num_cpus, not as a custom resource")
        if not (0 < amount <= MAX_RESOURCE_AMOUNT):
            raise ValueError(f"resource {name!r} amount {amount!r} must be > 0 and <= {MAX_RESOURCE_AMOUNT:g}")
        if amount > 1 and amount != int(amount):
            raise ValueError(f"resource {name!r} amount {amount!r}: above 1 Ray needs a whole number")
    return dict(sorted(value.items()))


# ``{"agents": 1}``: the Ray custom resources one actor of a kind asks for, on top of its CPUs.
# A node offering them (``ray start --resources``, a launcher node type, a KubeRay worker group)
# is where such an actor may run; on an autoscaling cluster the demand launches such nodes.
PlacementResources = Annotated[dict[str, float], AfterValidator(placement_resources)]
