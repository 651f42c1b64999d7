"""Runtime changes of one config section: a running component's settings, changed by key.

``changed_section`` applies ``field -> value`` changes to the section in effect, validates the
whole section again with its pydantic model (types, ranges, ordered pairs) and returns it with
the values that differ, in their JSON spelling: what a settings-changed event journals, so a
replay rebuilds exactly the section the live call validated.  Every refusal is a
``ConfigError`` naming the dotted key (``risk.max_position``), in the words of
``tinywindow.config.Config.set``.  ``fixed`` names fields a component reads only at start-up
(placement, the shape of its estimators): changing one needs a restart, and says so (giving
one at the value in effect, as a whole section does, is no change).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from tinywindow.core.settings import Section, config_error, shorten
from tinywindow.errors import ConfigError

__all__ = ["changed_section", "replayed_section"]

S = TypeVar("S", bound=Section)


def changed_section(
    current: S, section: str, changes: Mapping[str, Any], fixed: Collection[str] = ()
) -> tuple[S, dict[str, Any]]:
    """``current`` with ``changes`` applied and validated, and the changed values (field ->
    JSON value; empty: nothing differs).  ``section`` is the section's dotted name in the
    root config, for the messages."""
    fields = type(current).model_fields
    for name in changes:
        key = f"{section}.{name}"
        if name not in fields:
            raise config_error(f"unknown config key {shorten(key)!r} (allowed: {', '.join(sorted(fields))})", key=key)
    before = current.model_dump(mode="python")
    try:
        new = type(current).model_validate({**before, **changes})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        err = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        key = ".".join([section, *(str(p) for p in err["loc"])]) if err["loc"] else section
        shown = shorten(repr(err.get("input")), 120)
        raise config_error(f"bad value for {shorten(key)!r}: {shown} - {shorten(err['msg'], 300)}{more}",
                           key=key) from None
    old_json, new_json = current.model_dump(mode="json"), new.model_dump(mode="json")
    values = {k: new_json[k] for k in sorted(new_json) if new_json[k] != old_json[k]}
    for name in values:
        if name in fixed:  # given at its value in effect (a whole section) is no change
            key = f"{section}.{name}"
            raise config_error(
                f"{key} is read only when the run starts; it cannot change on a running engine "
                "(set it in the config and restart the run)", key=key)
    return new, values


def replayed_section(current: S, section: str, values: Mapping[str, Any]) -> S:
    """``current`` with journaled runtime ``values`` applied (a replay or a checkpoint's
    overrides).  They held when they were made; if they do not hold over the start-up
    section of this run (its config changed since), the start fails and says why."""
    try:
        return changed_section(current, section, values)[0]
    except ConfigError as exc:
        keys = ", ".join(f"{section}.{k}" for k in sorted(values))
        raise config_error(
            f"settings changed at runtime ({keys}, journaled) do not hold over this run's start-up "
            f"{section} section: {exc}; change the start-up config so they do, or set them again", key=exc.key,
        ) from None
