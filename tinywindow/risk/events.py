"""``RiskDenied``: the event risk emits for every order it denies or clips, and for every
trading-state change; it carries the reason code (``tinywindow.risk.checks.Reason``).

Denials are events, never exceptions (STYLE rule 5).  Its journal kind is ``risk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event

__all__ = ["RiskDenied"]


@dataclass(frozen=True, slots=True)
class RiskDenied(Event):
    """One risk decision: ``action`` is ``denied``, ``clipped``, ``cancelled`` or ``state``."""

    KIND: ClassVar[str] = "risk"
    ts: int
    symbol: str
    order_id: str
    reason: str
    action: str
    requested_qty: str = "0"
    allowed_qty: str = "0"
    detail: str = ""


_FIELDS = tuple(f.name for f in fields(RiskDenied))


def _encode(e: RiskDenied) -> dict[str, Any]:
    return {k: getattr(e, k) for k in _FIELDS}


def _decode(p: Mapping[str, Any], version: int) -> RiskDenied:
    return RiskDenied(**{k: p[k] for k in _FIELDS})


def _is_canonical(e: RiskDenied) -> bool:
    """Always: the decoder rebuilds a denial from its payload's own objects, untouched."""
    return True


CODEC.register(RiskDenied, _encode, _decode, is_canonical=_is_canonical)
