"""Time as the engine keeps it: integer nanoseconds since the epoch, UTC.

``to_utc_ns`` is the one conversion from anything a user or a file gives (ISO text, dates,
datetimes, pandas timestamps, integers) to that form.  Naive times are taken as UTC, and
words that would read the wall clock of the call ("now", "today") are refused: a market
timestamp never depends on when the code ran.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeAlias

import numpy as np
import pandas as pd

from tinywindow.errors import DataError

__all__ = ["RELATIVE_TIME_WORDS", "TimeLike", "to_utc_ns"]

TimeLike: TypeAlias = str | datetime | date | pd.Timestamp | int | None

# Words pandas would read as the wall-clock time of the call: never a market timestamp.
RELATIVE_TIME_WORDS = frozenset({"now", "today", "yesterday", "tomorrow"})


def to_utc_ns(value: TimeLike) -> int | None:
    """A time as integer nanoseconds since the epoch, UTC; naive times are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise DataError(f"not a time: {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in RELATIVE_TIME_WORDS:
        raise DataError(f"not a time: {value!r} (relative words are refused; give an absolute time)")
    try:
        ts = pd.Timestamp(value)
        if ts is pd.NaT:
            raise DataError(f"not a time: {value!r}")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int(ts.as_unit("ns").value)
    except (ValueError, TypeError, OverflowError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise DataError(f"not a time: {value!r} ({exc})") from exc
