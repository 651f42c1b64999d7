"""``EventSourced``: the one record/commit/apply core of every event-sourced state.

A state (the trading engine, the consensus book) changes *only* in ``apply(event)``, which
dispatches on the event's type to the method marked ``@applies(ThatType)``.  A live call
computes events from its inputs and ``record``s each (applied at once, in the spelling a
replay will read back, so later decisions in the same call see exactly the recovered state); ``commit`` ends the call: it hands the call's events to
``on_commit`` (the actor journals them through the codec, signed, all or nothing) and
returns them.  Start-up and recovery are the same path: ``restore`` a snapshot, then
``apply`` every journaled event after it (``tinywindow.durability.recovery``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event

__all__ = ["CommitHook", "EventSourced", "applies"]

CommitHook = Callable[[list[Event]], None]
F = TypeVar("F", bound=Callable[..., None])
_MARK = "__applies_events__"


def applies(*types: type[Event]) -> Callable[[F], F]:
    """Mark a method of an ``EventSourced`` class as the one that applies ``types``."""

    def mark(fn: F) -> F:
        setattr(fn, _MARK, types)
        return fn

    return mark


class EventSourced(ABC):
    """Record, commit, and apply-by-type (see the module docstring)."""

    _appliers: ClassVar[dict[type[Event], Callable[[Any, Any], None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type[Event], Callable[[Any, Any], None]] = {}
        for base in reversed(cls.__mro__):
            for attr in vars(base).values():
                for t in getattr(attr, _MARK, ()):
                    table[t] = attr
        cls._appliers = table

    def __init__(self, on_commit: CommitHook | None = None) -> None:
        self.on_commit = on_commit
        self._pending: list[Event] = []

    def apply(self, event: Event) -> None:
        """Apply one event to the state: the only way the state changes (live and replay)."""
        fn = self._appliers.get(type(event))
        if fn is None:
            raise ValueError(f"{type(self).__name__} cannot apply a {type(event).__name__} ({event.KIND!r}) event")
        fn(self, event)

    def record(self, event: Event) -> None:
        """A new event of the current call: applied now, journaled at ``commit``.

        What is applied (and kept for the journal) is the event as a replay will read it
        back (``EventCodec.canonical``), so live and recovered state cannot differ."""
        event = CODEC.canonical(event)
        self._pending.append(event)
        self.apply(event)

    def commit(self) -> list[Event]:
        """End the call: hand its events to ``on_commit`` (if any) and return them."""
        batch, self._pending = self._pending, []
        if batch and self.on_commit is not None:
            self.on_commit(batch)
        return batch

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data (a checkpoint)."""

    @abstractmethod
    def restore(self, d: Mapping[str, Any]) -> None:
        """Load a snapshot (before replaying the events after it)."""
