"""Merging the bar streams of several sources into one clock, by watermark.

Each source publishes its bar times in increasing order, so once it has published time ``t``
it has nothing left at or before ``t``: ``t`` is its watermark.  A bar time is released when
every source still running has a watermark at or past it (it published that time, or a
later one because it has no bar then), or has finished.  Released times come out in order,
each with the parts of every source that had a bar then, so a universe of an exchange's
stocks and a 7-day crypto market trade on one clock and the order of events never depends
on which source's message arrived first.  A source that publishes a time at or before its
watermark is refused (``DataError``): out-of-order bars would otherwise be traded late.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tinywindow.errors import DataError


@dataclass
class Released:
    ts: int
    parts: dict[str, Any] = field(default_factory=dict)  # source -> what it published at ts


class WatermarkMerge:
    def __init__(self, sources: Iterable[str]) -> None:
        self.running = set(sources)
        if not self.running:
            raise ValueError("a merge needs at least one source")
        self.marks: dict[str, int | None] = dict.fromkeys(self.running)
        self.pending: dict[int, dict[str, Any]] = {}

    def add(self, source: str, ts: int, part: Any) -> list[Released]:
        """``source`` published ``part`` at ``ts``; returns the times now released, in order."""
        if source not in self.marks:
            raise DataError(f"unknown source {source!r} (merging {', '.join(sorted(self.marks))})")
        if source not in self.running:
            raise DataError(f"source {source!r} published ts {ts} after it finished")
        mark = self.marks[source]
        if mark is not None and ts <= mark:
            raise DataError(f"source {source!r} published ts {ts} at or before its previous one ({mark})")
        self.marks[source] = ts
        self.pending.setdefault(ts, {})[source] = part
        return self._release()

    def finish(self, source: str) -> list[Released]:
        """``source`` will publish nothing more."""
        self.running.discard(source)
        return self._release()

    def watermark(self) -> int | None:
        """The latest time every running source has reached (None: one has published nothing)."""
        marks = [self.marks[s] for s in self.running]
        if any(m is None for m in marks):
            return None
        return min(m for m in marks if m is not None) if marks else None

    def _release(self) -> list[Released]:
        if not self.running:
            upto = max(self.pending, default=None)
        else:
            upto = self.watermark()
        if upto is None:
            return []
        out = [Released(t, self.pending.pop(t)) for t in sorted(t for t in self.pending if t <= upto)]
        return out
