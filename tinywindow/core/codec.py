"""The one versioned codec between typed events and journal records ``(kind, payload)``.

Each event type registers an encoder (event -> JSON-able payload dict) and a decoder
(payload, codec version -> event) beside its definition; ``CODEC`` is the one registry that
every journal writer and reader goes through, so a payload has a single spelling.

Versioning: a payload carries its codec version in the reserved key ``"v"``, per event
kind.  Version 1 is the format journals were written in before the typed events existed, and
it is written *without* the key (an absent ``"v"`` reads as 1): journals written by older
code verify and replay unchanged.  A kind whose spelling changed registers a later version
(``register(..., version=N)``): it writes ``"v": N`` and its decoder receives the version to
read every older one (``ConsensusDecided`` is at 3, ``VotesRecorded`` and ``WeightsLearned`` at 2; every other kind is still 1).  A payload from a newer codec than this code knows is refused
(``IntegrityError``): replaying what we cannot read would silently corrupt the state.

``canonical(event)`` is the event as a replay will read it back, ``decode(payload(event))``.
Live processing applies every event in that form, once per event, so it is on the hot path:
a kind may register ``is_canonical``, a cheap test that the event already *is* its decoded
form (every field of the exact type and Decimal spelling the decoder produces); such an
event is returned as it is, and any other still takes the encode/decode round trip.  A
property test holds ``canonical(e)`` identical to ``decode(payload(e))`` for those kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tinywindow.core.events import Event, JournalRecord
from tinywindow.errors import IntegrityError

__all__ = ["CODEC", "CODEC_VERSION", "VERSION_KEY", "EventCodec"]

CODEC_VERSION = 1  # the default version of a kind; a kind whose spelling changes registers a later one
VERSION_KEY = "v"

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class _Entry(Generic[E]):
    cls: type[E]
    encode: Callable[[E], dict[str, Any]]
    decode: Callable[[Mapping[str, Any], int], E]
    version: int = CODEC_VERSION
    is_canonical: Callable[[E], bool] | None = None


class EventCodec:
    """Event types by kind and by class, each with its encoder and decoder."""

    def __init__(self, version: int = CODEC_VERSION) -> None:
        self.version = version
        self._by_kind: dict[str, _Entry[Any]] = {}
        self._by_cls: dict[type[Event], _Entry[Any]] = {}

    def register(
        self,
        cls: type[E],
        encode: Callable[[E], dict[str, Any]],
        decode: Callable[[Mapping[str, Any], int], E],
        version: int | None = None,
        is_canonical: Callable[[E], bool] | None = None,
    ) -> None:
        """Add an event type under its ``KIND`` (a kind belongs to one type only), written in
        ``version`` (default: the codec's) and read from 1 up to it.  ``is_canonical``: true
        only for an event that ``decode(payload(event))`` would reproduce field for field
        (see the module docstring)."""
        kind = cls.KIND
        if not kind:
            raise ValueError(f"{cls.__name__} has no KIND")
        old = self._by_kind.get(kind)
        if old is not None and old.cls is not cls:
            raise ValueError(f"event kind {kind!r} is taken by {old.cls.__name__}")
        entry = _Entry(cls, encode, decode, self.version if version is None else version, is_canonical)
        self._by_kind[kind] = entry
        self._by_cls[cls] = entry

    def kinds(self) -> dict[str, type[Event]]:
        return {k: e.cls for k, e in sorted(self._by_kind.items())}

    def encode(self, event: Event) -> JournalRecord:
        """``(kind, payload)`` of an event, in this codec's version."""
        entry = self._by_cls.get(type(event))
        if entry is None:
            raise TypeError(f"{type(event).__name__} is not a registered event type")
        payload = entry.encode(event)
        if entry.version != 1:
            payload[VERSION_KEY] = entry.version
        return entry.cls.KIND, payload

    def encode_all(self, events: Iterable[Event]) -> list[JournalRecord]:
        return [self.encode(e) for e in events]

    def payload(self, event: Event) -> dict[str, Any]:
        """Just the payload (the JSON form an API returns)."""
        return self.encode(event)[1]

    def decode(self, kind: str, payload: Mapping[str, Any]) -> Event:
        """The event a journal record holds, written by this codec version or an older one."""
        entry = self._by_kind.get(kind)
        if entry is None:
            raise IntegrityError(f"journal record of unknown kind {kind!r}")
        version = payload.get(VERSION_KEY, 1)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= entry.version:
            raise IntegrityError(
                f"journal record {kind!r} has codec version {version!r}; this code reads 1..{entry.version}"
            )
        body = {k: v for k, v in payload.items() if k != VERSION_KEY} if VERSION_KEY in payload else payload
        return entry.decode(body, version)

    def decode_as(self, cls: type[E], payload: Mapping[str, Any]) -> E:
        """``decode`` of a payload known to be a ``cls`` (checkpoints hold such lists)."""
        event = self.decode(cls.KIND, payload)
        if not isinstance(event, cls):
            raise IntegrityError(f"a {cls.KIND!r} payload decoded to {type(event).__name__}")
        return event

    def canonical(self, event: E) -> E:
        """The event as a replay of its journal record will see it (amounts in their
        journaled spelling): live processing applies this, so live and replayed state are
        the same state, exponent for exponent.  An event its kind's ``is_canonical`` accepts
        is that already and is returned as it is."""
        entry = self._by_cls.get(type(event))
        if entry is not None and entry.is_canonical is not None and entry.is_canonical(event):
            return event
        return self.decode_as(type(event), self.payload(event))


CODEC = EventCodec()
