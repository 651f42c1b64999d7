"""Property tests: the codec's fast canonical path is the encode/decode round trip, exactly."""
from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinywindow.core.codec import CODEC
from tinywindow.core.money import (
    canonical_decimal,
    dec_str,
    is_canonical,
    to_canonical_decimal,
    to_decimal,
)
from tinywindow.errors import DataError
from tinywindow.execution.events import (
    BarMarked,
    DecisionMade,
    OrderExpired,
    OrderFilled,
    OrderSubmitted,
    OutcomeRealized,
)
from tinywindow.execution.orders import Expiry, Fill, Order
from tinywindow.risk.events import RiskDenied

pytestmark = pytest.mark.unit

decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.decimals(places=4, allow_nan=False, allow_infinity=False),
    st.integers(-10**40, 10**40).map(Decimal),
    st.tuples(st.integers(-10**35, 10**35), st.integers(-40, 40)).map(lambda t: Decimal(t[0]).scaleb(t[1])),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Decimal(repr(f))),
)
canon = decimals.map(canonical_decimal)
dec_any = st.one_of(decimals, canon)  # mostly-canonical and arbitrary spellings
opt_dec = st.one_of(st.none(), dec_any)
ints = st.one_of(st.integers(-2**63, 2**63), st.booleans())
floats = st.floats(allow_nan=True, allow_infinity=True)
text = st.text(max_size=8)


def same(a: object, b: object) -> bool:
    """Equal field for field, Decimal exponents and float bits included (repr shows both)."""
    return type(a) is type(b) and repr(a) == repr(b)


def slow(e):  # the reference: what a replay of the payload reads back
    return CODEC.decode_as(type(e), CODEC.payload(e))


@settings(max_examples=3000)
@given(decimals)
def test_canonical_decimal_is_the_journal_spelling(v: Decimal) -> None:
    ref = Decimal(dec_str(v))
    assert canonical_decimal(v).as_tuple() == ref.as_tuple()
    assert is_canonical(v) == (v.as_tuple() == ref.as_tuple())
    assert is_canonical(canonical_decimal(v))


@settings(max_examples=3000)
@given(st.one_of(st.floats(), st.integers(-10**20, 10**20).map(float), st.sampled_from([0.0, -0.0, 1e16, 1e-5, 100.0])))
def test_to_canonical_decimal(f: float) -> None:
    if not math.isfinite(f):
        with pytest.raises(DataError):
            to_canonical_decimal(f)
        return
    assert to_canonical_decimal(f).as_tuple() == Decimal(dec_str(to_decimal(f))).as_tuple()
    assert to_decimal(f).as_tuple() == Decimal(repr(f)).as_tuple()


events = st.one_of(
    st.builds(DecisionMade, text, ints, ints, floats, opt_dec),
    st.builds(lambda *a: OrderSubmitted(Order(*a)), text, text, ints, ints, dec_any, dec_any, opt_dec, text),
    st.builds(lambda *a: OrderFilled(Fill(*a)), text, text, ints, ints, dec_any, dec_any, dec_any, text),
    st.builds(lambda *a: OrderExpired(Expiry(*a)), text, text, ints, text),
    st.builds(OutcomeRealized, ints, text, ints, ints, floats),
    st.builds(BarMarked, ints, st.lists(st.tuples(text, dec_any), max_size=6).map(tuple)),
    st.builds(BarMarked, ints, st.dictionaries(text, canon, max_size=6).map(lambda d: tuple(sorted(d.items())))),
    st.builds(RiskDenied, ints, text, text, text, text, text, text, text),
)


@settings(max_examples=5000)
@given(events)
def test_fast_canonical_is_the_round_trip(e) -> None:
    try:
        want = slow(e)
    except Exception as exc:  # the round trip refuses it: so must the fast path
        with pytest.raises(type(exc)):
            CODEC.canonical(e)
        return
    assert same(CODEC.canonical(e), want)
