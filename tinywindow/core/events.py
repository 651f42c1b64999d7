"""The base of every typed event: a frozen, slotted dataclass naming its journal ``KIND``.

State that is event-sourced (the trading engine, the consensus book) changes only by
applying events (``tinywindow.durability.eventsourced.EventSourced``), and events reach the
journal only through the one codec (``tinywindow.core.codec``).  The concrete types live
beside the package whose state they change and register themselves with the codec:

* ``tinywindow.execution.events``: ``DecisionMade``, ``OrderSubmitted``, ``OrderFilled``,
  ``OrderExpired``, ``OutcomeRealized``, ``BarMarked``, ``VolatilityFitted``, ``StateChanged``,
  ``RiskSettingsChanged``
* ``tinywindow.risk.events``: ``RiskDenied`` (a denial, a clip, or a trading-state change)
* ``tinywindow.consensus.events``: ``VotesRecorded``, ``ConsensusDecided``, ``WeightsLearned``,
  ``AgentOutcomesScored``, ``CalibrationFitted``, ``ConsensusSettingsChanged``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

__all__ = ["Event", "JournalRecord"]

JournalRecord: TypeAlias = tuple[str, dict[str, Any]]  # (kind, JSON payload): what a journal stores


@dataclass(frozen=True, slots=True)
class Event:
    """A fact that changed some state.  Subclasses are frozen, slotted dataclasses with a
    class-level ``KIND``: the record kind the codec journals them under."""

    KIND: ClassVar[str] = ""
