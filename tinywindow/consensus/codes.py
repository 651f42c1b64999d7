"""Why a consensus decided what it did: the reason codes and the words its reason texts use
(shared by the vote and the score consensus)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ACTION_TEXT", "CODE_TEXT", "NO_DECISION_TEXT", "Code"]


class Code(IntEnum):
    """DECIDED (long or short) and FLAT are decisions, the others are no-decisions (action
    0, ``decided`` False).  FLAT was HOLD_MAJORITY when a flat majority was a fallback (same
    value).  TOO_FEW_NAMES is the score consensus's: a bar of fewer than ``min_names``
    symbols cannot be ranked."""

    DECIDED = 0
    NO_QUORUM = 1
    FLAT = 2
    TIE = 3
    DISAGREEMENT = 4
    LOW_CONFIDENCE = 5
    TOO_FEW_NAMES = 6

    @property
    def is_decision(self) -> bool:
        return self in (Code.DECIDED, Code.FLAT)


CODE_TEXT = {
    Code.DECIDED: "decided",
    Code.NO_QUORUM: "no quorum",
    Code.FLAT: "flat majority",
    Code.TIE: "tie",
    Code.DISAGREEMENT: "disagreement",
    Code.LOW_CONFIDENCE: "low confidence",
    Code.TOO_FEW_NAMES: "too few names",
}
ACTION_TEXT = {-1: "SHORT", 0: "FLAT", 1: "LONG"}
NO_DECISION_TEXT = "NO DECISION"
