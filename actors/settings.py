"""Runtime settings of a running actor, in two phases (``tinywindow config set``).

``SettingsStage`` is the participant side an actor delegates to: ``prepare`` validates a change
of its section against the section in effect (``settings_change`` of its event-sourced state:
the section's model and the state's cross-checks) and stages the event without applying it;
``commit`` applies and journals it (``change_settings``); ``abort`` drops it.  The coordinator
is ``actors.graph.GraphActor.set_config``: it prepares on every actor a change touches, commits
on all of them only when every prepare succeeded, and aborts all otherwise.

A change is named by its ``change_id``.  A commit of an id already applied (a retried call,
or one replayed from the journal after a restart) applies nothing again; a commit whose
staged change is gone (the actor restarted between prepare and commit) validates the values
the coordinator sends with it again and applies them, so a restart between the phases does
not split the change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel

from tinywindow.core.events import Event
from tinywindow.errors import TransientError


class RuntimeSettings(Protocol):
    """What an event-sourced state offers for runtime settings (``TradingEngine``,
    ``ConsensusBook``)."""

    settings_id: str | None
    settings_overrides: dict[str, Any]

    @property
    def settings_section(self) -> BaseModel: ...

    def settings_change(self, ts: int, change_id: str, changes: Mapping[str, Any]) -> Any: ...

    def change_settings(self, event: Any) -> list[Event]: ...


class SettingsStage:
    """One actor's side of a two-phase settings change (see the module docstring)."""

    def __init__(self, section: str, state: RuntimeSettings, clock: Callable[[], int]) -> None:
        self.section, self.state, self.clock = section, state, clock
        self._staged: tuple[str, Any] | None = None  # (change id, event or None: nothing differs)

    def current(self) -> dict[str, Any]:
        """The section in effect (JSON values), the fields changed at runtime, the last
        change's id, and the id of a change prepared and not yet committed."""
        return {
            "section": self.section,
            "values": self.state.settings_section.model_dump(mode="json"),
            "overrides": dict(self.state.settings_overrides),
            "change_id": self.state.settings_id,
            "staged": None if self._staged is None else self._staged[0],
        }

    def prepare(self, values: Mapping[str, Any], change_id: str | None = None) -> str:
        """Validate ``values`` (fields of the section: a whole section or some of its fields)
        and stage the change; returns its id.  Raises ``ConfigError`` naming the key.  A new
        prepare replaces a change staged before (whose commit then fails)."""
        token = change_id or uuid.uuid4().hex[:16]
        if token == self.state.settings_id:
            return token  # applied already (a retried call)
        self._staged = (token, self.state.settings_change(self.clock(), token, values))
        return token

    def commit(self, token: str, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Apply and journal the change ``token`` staged; returns the changed values.
        ``values`` (what was prepared) lets an actor that restarted since prepare it again."""
        if token == self.state.settings_id:
            return {"change_id": token, "changed": {}, "already": True}
        if self._staged is None or self._staged[0] != token:
            if values is None:
                raise TransientError(f"{self.section}: settings change {token} is not prepared here "
                                     "(the actor restarted, or another change replaced it): prepare it again")
            self.prepare(values, token)
        assert self._staged is not None
        _, event = self._staged
        self._staged = None
        if event is not None:
            self.state.change_settings(event)
        return {"change_id": token, "changed": {} if event is None else dict(event.values), "already": False}

    def abort(self, token: str) -> bool:
        """Drop the change ``token`` if it is staged (True); nothing else changes."""
        if self._staged is not None and self._staged[0] == token:
            self._staged = None
            return True
        return False


class SettingsParticipant:
    """The two-phase methods of an actor whose ``_settings`` is a ``SettingsStage`` and whose
    journal (``durable.journal``) records ``SETTINGS_EVENT`` (the ConsensusActor and the
    PortfolioActor mix this in)."""

    _settings: SettingsStage
    durable: Any
    SETTINGS_EVENT: type[Event]

    def settings(self) -> dict[str, Any]:
        """The section in effect, and what changed it at runtime."""
        return self._settings.current()

    def prepare_settings(self, values: dict[str, Any], change_id: str | None = None) -> str:
        """Validate a change of the section (fields -> values) and stage it; returns its id."""
        return self._settings.prepare(values, change_id)

    def commit_settings(self, token: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Apply and journal a prepared change: the actor's next call uses it."""
        return self._settings.commit(token, values)

    def abort_settings(self, token: str) -> bool:
        return self._settings.abort(token)

    def settings_changes(self) -> list[dict[str, Any]]:
        """Every runtime settings change in the journal, oldest first."""
        from tinywindow.core.codec import CODEC

        kind = self.SETTINGS_EVENT.KIND
        return [CODEC.payload(CODEC.decode_as(self.SETTINGS_EVENT, rec.payload))
                for rec in self.durable.journal.records() if rec.kind == kind]
