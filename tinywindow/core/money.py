"""Exact money: Decimal amounts, the one way a float price becomes a Decimal, and the one
canonical text a Decimal is journaled and checkpointed as.

Quantities, prices and fees are ``Decimal`` wherever the books are kept (accounting, orders,
risk).  A float from a BARS batch enters through ``to_decimal``, which keeps its shortest
decimal spelling (``0.1`` stays ``0.1``); NaN and infinities are refused where they enter.

``canonical_decimal`` is the Decimal a journaled amount reads back as (``Decimal(dec_str(x))``,
coefficient and exponent), computed without the text; ``is_canonical`` says whether a Decimal
already is it.  Event-sourced state applies amounts in this form, so live and replayed state
agree exponent for exponent (``tinywindow.core.codec``).
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from tinywindow.errors import DataError

__all__ = ["BPS", "ONE", "ZERO", "canonical_decimal", "dec_str", "is_canonical", "to_canonical_decimal", "to_decimal"]

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal(10_000)


def to_decimal(value: float | int | str | Decimal, *, name: str = "value") -> Decimal:
    """An exact Decimal for a price, quantity or amount; NaN and infinities are refused."""
    if type(value) is float:  # the common case first (a bar's price); same result as below
        if value - value != 0:  # NaN or an infinity
            raise DataError(f"{name} is not finite: {value!r}", column=name)
        return Decimal(repr(value))
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


def canonical_decimal(value: Decimal) -> Decimal:
    """``Decimal(dec_str(value))``, exactly (the same coefficient and exponent): the value
    normalized (rounded to the context's precision, as ``dec_str`` does), with exponent 0
    for an integer (``dec_str`` writes ``40``, not ``4E+1``) and zero as plain ``0``."""
    if value.is_finite():
        n = value.normalize()
        if n == n.to_integral_value():
            return Decimal(int(n))
        return n
    return Decimal(dec_str(value))


def to_canonical_decimal(value: float | int | str | Decimal, *, name: str = "value") -> Decimal:
    """``canonical_decimal(to_decimal(value))``: a bar's price as its journal spells it.

    A finite float's shortest spelling without an exponent and without a trailing ``.0``
    (most prices) already is that Decimal: its fraction ends in a non-zero digit and it has
    at most 17 significant digits, so normalizing changes nothing."""
    if type(value) is float and value - value == 0:
        s = repr(value)
        if "e" not in s and not s.endswith(".0"):
            return Decimal(s)
    return canonical_decimal(to_decimal(value, name=name))


def is_canonical(value: Decimal) -> bool:
    """Whether ``value`` is already ``canonical_decimal(value)`` (coefficient and exponent),
    so an event holding it needs no rebuilding."""
    if not value.is_finite():
        return False
    n = value.normalize()
    if n == n.to_integral_value():  # an integer (or zero): exponent 0, no sign on zero
        return value.same_quantum(ONE) and value == n and not (value.is_zero() and value.is_signed())
    return value.same_quantum(n) and value == n
