"""The base of every config section and the checks sections share (time zones, ordered pairs,
one-line bounded errors).  Each package defines its own section beside its code and the root
``tinywindow.config.Config`` composes them."""

from __future__ import annotations

import itertools
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
