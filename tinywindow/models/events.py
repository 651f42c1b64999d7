"""Typed events of an agent's own journal (``agent-<name>.twj``).

======================== ================== ==============================================
event                    journal kind       what happened
======================== ================== ==============================================
``ExplanationsRecorded`` ``explanations``   EXPLANATIONS of the agent's votes on decisions
                                            that traded (``tinywindow.models.explain``)
======================== ================== ==============================================

The agent's other records (``outcomes``, ``model_promotion``, ``promotion_decision``) are
plain payloads written before the typed events existed.  An explanation is a pure function
of the model version and the features, so the agent records a (symbol, ts, version) once:
a replayed bar, or a second run of the same bars and version, adds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

import pyarrow as pa

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event

__all__ = ["ExplanationRecord", "ExplanationsRecorded", "explanation_rows"]

# symbol, ts, model_version, feature, lag, contribution, rank (an EXPLANATIONS row of one agent)
ExplanationRecord: TypeAlias = tuple[str, int, str, str, int, float, int]


@dataclass(frozen=True, slots=True)
class ExplanationsRecorded(Event):
    """``agent``'s explanations of its votes on some (symbol, ts) decisions, each decision's
    rows in rank order."""

    KIND: ClassVar[str] = "explanations"
    agent: str
    rows: tuple[ExplanationRecord, ...]

    def keys(self) -> set[tuple[str, int, str]]:
        """The (symbol, ts, model_version) decisions it explains."""
        return {(s, ts, v) for s, ts, v, *_ in self.rows}


def explanation_rows(table: pa.Table) -> tuple[ExplanationRecord, ...]:
    """An EXPLANATIONS table of one agent as records (contributions as float32 values)."""
    names = ("symbol", "ts", "model_version", "feature", "lag", "contribution", "rank")
    cols = [table.column(c).cast(pa.int64()) if c == "ts" else table.column(c) for c in names]
    return tuple(
        (str(s), int(t), str(v), str(f), int(g), float(c), int(r))
        for s, t, v, f, g, c, r in zip(*(c.to_pylist() for c in cols), strict=True)
    )


def _enc_explanations(e: ExplanationsRecorded) -> dict[str, Any]:
    return {"agent": e.agent, "rows": [list(r) for r in e.rows]}


def _dec_explanations(p: Mapping[str, Any], version: int) -> ExplanationsRecorded:
    if any(len(r) != 7 for r in p["rows"]):
        raise ValueError("explanations: rows must have 7 fields")
    return ExplanationsRecorded(str(p["agent"]), tuple(
        (str(s), int(t), str(v), str(f), int(g), float(c), int(r)) for s, t, v, f, g, c, r in p["rows"]))


CODEC.register(ExplanationsRecorded, _enc_explanations, _dec_explanations)
