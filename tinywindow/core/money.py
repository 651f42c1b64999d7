"""Exact money: Decimal amounts, the one way a float price becomes a Decimal, and the one
canonical text a Decimal is journaled and checkpointed as.

Quantities, prices and fees are ``Decimal`` wherever the books are kept (accounting, orders,
risk).  A float from a BARS batch enters through ``to_decimal``, which keeps its shortest
decimal spelling (``0.1`` stays ``0.1``); NaN and infinities are refused where they enter.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from tinywindow.errors import DataError

__all__ = ["BPS", "ONE", "ZERO", "dec_str", "to_decimal"]

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal(10_000)


def to_decimal(value: float | int | str | Decimal, *, name: str = "value") -> Decimal:
    """An exact Decimal for a price, quantity or amount; NaN and infinities are refused."""
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            raise DataError(f"{name} is not finite: {value!r}", column=name)
        out = Decimal(repr(float(value)))
    else:
        out = Decimal(value)
    if not out.is_finite():
        raise DataError(f"{name} is not finite: {value!r}", column=name)
    return out


def dec_str(value: Decimal) -> str:
    """Canonical text for a Decimal in journals and checkpoints (no exponent surprises)."""
    return format(value.normalize(), "f") if value != 0 else "0"
