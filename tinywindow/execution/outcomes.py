"""Outcome labelling: each decision's realized return, the label agents learn from.

A ``DecisionMade`` with a reference close leaves the symbol *pending*; the first later bar
of that symbol realizes it as the close-to-close return over the bar after the decision
(``OutcomeRealized``, numbered by ``seq`` so consumers ask for "everything since n").  A
newer decision replaces a pending one.  The last ``kept`` outcomes stay in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tinywindow.core.codec import CODEC
from tinywindow.core.money import dec_str
from tinywindow.execution.events import DecisionMade, OutcomeRealized

__all__ = ["OutcomeBook"]


class OutcomeBook:
    """Pending decisions per symbol and the realized outcomes (see the module docstring)."""

    def __init__(self, kept: int) -> None:
        self.pending: dict[str, tuple[int, int, Decimal]] = {}  # symbol -> (ts, action, ref close)
        self.realized: deque[OutcomeRealized] = deque(maxlen=kept)
        self.seq = 0  # the next outcome's number

    def due(self, symbol: str, ts: int, close: Decimal) -> OutcomeRealized | None:
        """The outcome a bar of ``symbol`` at ``ts`` closing at ``close`` realizes, if any."""
        pend = self.pending.get(symbol)
        if pend is None or pend[0] >= ts:
            return None
        ret = float(close / pend[2] - 1)
        return OutcomeRealized(self.seq, symbol, pend[0], pend[1], ret)

    def on_decision(self, e: DecisionMade) -> None:
        if e.ref is not None:
            self.pending[e.symbol] = (e.ts, e.action, e.ref)

    def on_outcome(self, e: OutcomeRealized) -> None:
        self.seq = e.seq + 1
        self.realized.append(e)
        pend = self.pending.get(e.symbol)
        if pend is not None and pend[0] == e.ts:
            del self.pending[e.symbol]

    def since(self, seq: int) -> list[OutcomeRealized]:
        """Outcomes numbered ``seq`` or later still in memory (read from the newest end: a
        caller polling every bar pays for what is new, not for the ``kept`` history)."""
        out = []
        for o in reversed(self.realized):
            if o.seq < seq:
                break
            out.append(o)
        out.reverse()
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "pending_outcome": {s: [ts, a, dec_str(ref)] for s, (ts, a, ref) in sorted(self.pending.items())},
            "outcomes": [CODEC.payload(o) for o in self.realized],
            "outcome_seq": self.seq,
        }

    def restore(self, d: Mapping[str, Any]) -> None:
        self.pending = {s: (int(v[0]), int(v[1]), Decimal(v[2])) for s, v in d["pending_outcome"].items()}
        self.realized.clear()
        self.realized.extend(CODEC.decode_as(OutcomeRealized, o) for o in d["outcomes"])
        self.seq = int(d["outcome_seq"])
