"""The core every domain package shares: exact money, UTC nanosecond time, the typed event
base and the one versioned event codec, and the config-section base and logging.

* ``money``: ``to_decimal``, ``dec_str``, ``ZERO``/``ONE``/``BPS``
* ``time``: ``to_utc_ns``, ``TimeLike``
* ``events``: ``Event`` (frozen, slotted, with a journal ``KIND``), ``JournalRecord``
* ``codec``: ``CODEC`` (event <-> journal record, versioned), ``EventCodec``
* ``settings`` (``Section``), ``log`` (``get_logger``)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinywindow.core.lazy import lazy_exports

if TYPE_CHECKING:
    from tinywindow.core.codec import CODEC, CODEC_VERSION, EventCodec
    from tinywindow.core.events import Event, JournalRecord
    from tinywindow.core.money import dec_str, to_decimal
    from tinywindow.core.time import TimeLike, to_utc_ns

__all__ = [
    "CODEC",
    "CODEC_VERSION",
    "Event",
    "EventCodec",
    "JournalRecord",
    "TimeLike",
    "dec_str",
    "to_decimal",
    "to_utc_ns",
]

_EXPORTS = {
    "CODEC": "tinywindow.core.codec",
    "CODEC_VERSION": "tinywindow.core.codec",
    "Event": "tinywindow.core.events",
    "EventCodec": "tinywindow.core.codec",
    "JournalRecord": "tinywindow.core.events",
    "TimeLike": "tinywindow.core.time",
    "dec_str": "tinywindow.core.money",
    "to_decimal": "tinywindow.core.money",
    "to_utc_ns": "tinywindow.core.time",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)
