"""The Arrow contracts every part of TinyWindow exchanges, and their validation.

A batch is validated where it enters the system (a source, an actor method, an HTTP
request).  ``validate`` either returns a table that matches the contract exactly or raises
``SchemaError`` / ``DataError`` naming the column and the first offending row: a batch is
never half-applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tinywindow.errors import DataError, SchemaError

SYMBOL = pa.dictionary(pa.int32(), pa.string())
TS = pa.timestamp("ns", tz="UTC")


def _contract(name: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={b"tw.contract": name.encode()})


BARS = _contract(
    "BARS",
    [
        pa.field("symbol", SYMBOL, nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64(), nullable=False),
    ],
)

FEATURE_KEYS = [pa.field("symbol", SYMBOL, nullable=False), pa.field("ts", TS, nullable=False)]

VOTES = _contract(
    "VOTES",
    [
        *FEATURE_KEYS,
        pa.field("agent", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("action", pa.int8(), nullable=False),
        pa.field("confidence", pa.float32(), nullable=False),
        # The agent's cross-sectional score of the symbol at ts: higher = more attractive
        # against the other symbols of the bar.  A classifier's is its expected exposure
        # P(+1) - P(-1); a ranker's or regressor's its raw output.  A batch without it (an
        # older producer) gets ``action x confidence`` (``DERIVED``).
        pa.field("score", pa.float32(), nullable=False),
    ],
)

# A consensus decision per (symbol, ts).  ``action`` is the target exposure (-1 short, 0 flat,
# +1 long) when ``decided``; a fallback (no quorum, tie, disagreement, low confidence) is
# ``decided`` False with action 0, and what it does is ``portfolio.no_decision``.  ``reason``
# says which, with the numbers.
SIGNALS = _contract(
    "SIGNALS",
    [
        *FEATURE_KEYS,
        pa.field("action", pa.int8(), nullable=False),
        pa.field("decided", pa.bool_(), nullable=False),
        pa.field("confidence", pa.float32(), nullable=False),
        pa.field("agreement", pa.float32(), nullable=False),
        pa.field("votes", pa.int16(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        # The consensus's combined score (``consensus.mode`` score: the weighted z-score or
        # rank average of the agents' scores; vote mode: the weighted mean of their scores);
        # what portfolio construction turns into weights.  Derived as action x confidence
        # when missing (``DERIVED``).
        pa.field("score", pa.float32(), nullable=False),
    ],
)

# The contract between decision and execution: the target weight of each symbol at ts
# (signed fraction of equity) that portfolio construction chose from the SIGNALS scores.
# Backtest, paper and live hand the same WEIGHTS to the engine.
WEIGHTS = _contract(
    "WEIGHTS",
    [
        *FEATURE_KEYS,
        pa.field("weight", pa.float64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("confidence", pa.float32(), nullable=False),  # the signal's, for the risk floor
        pa.field("reason", pa.string(), nullable=False),
    ],
)

# Quantities and money in orders and fills are exact decimals (18 places), not floats.
EXACT = pa.decimal128(38, 18)

_ORDER_FIELDS = [
    pa.field("order_id", pa.string(), nullable=False),
    *FEATURE_KEYS,
    pa.field("side", pa.int8(), nullable=False),  # +1 buy, -1 sell
    pa.field("qty", EXACT, nullable=False),
    pa.field("price", EXACT, nullable=False),
    pa.field("fee", EXACT, nullable=False),
    pa.field("reason", pa.string(), nullable=False),
]
ORDERS = _contract("ORDERS", _ORDER_FIELDS)
FILLS = _contract("FILLS", _ORDER_FIELDS)

# Realized outcome of a decision, fed back to the agents (the learning flow).
OUTCOMES = _contract(
    "OUTCOMES",
    [
        *FEATURE_KEYS,
        pa.field("action", pa.int8(), nullable=False),
        pa.field("realized_return", pa.float64(), nullable=False),
    ],
)


# Each agent's own vote on a decision and what it would have earned (the per-agent learning
# flow: ConsensusActor -> AgentActors).  ``action`` is the agent's target exposure (-1, 0, +1)
# at ``ts``; ``realized_return`` the symbol's close-to-close return over the bar after ``ts``;
# ``reward`` = action x realized_return - cost x |action - the agent's previous action on the
# symbol| (net of trading costs, the same reward the RL env pays).
AGENT_OUTCOMES = _contract(
    "AGENT_OUTCOMES",
    [
        *FEATURE_KEYS,
        pa.field("agent", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("action", pa.int8(), nullable=False),
        pa.field("confidence", pa.float32(), nullable=False),
        pa.field("realized_return", pa.float64(), nullable=False),
        pa.field("reward", pa.float64(), nullable=False),
    ],
)


def features_schema(feature_names: Iterable[str]) -> pa.Schema:
    """FEATURES: symbol, ts, then one float32 column per feature."""
    names = list(feature_names)
    if len(set(names)) != len(names):
        raise SchemaError("duplicate feature names", column=",".join(names))
    return _contract(
        "FEATURES",
        [*FEATURE_KEYS, *(pa.field(n, pa.float32(), nullable=False) for n in names)],
    )


def contract_name(schema: pa.Schema) -> str:
    meta = schema.metadata or {}
    return meta.get(b"tw.contract", b"").decode() or "?"


# --------------------------------------------------------------------------- types


def _castable(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Lossless, unambiguous casts we accept when ``coerce`` is on."""
    if actual == expected:
        return True
    if pa.types.is_dictionary(expected):
        value = actual.value_type if pa.types.is_dictionary(actual) else actual
        return pa.types.is_string(value) or pa.types.is_large_string(value)
    if pa.types.is_timestamp(expected):
        # A naive timestamp is ambiguous: sources must localise before validation.
        return pa.types.is_timestamp(actual) and actual.tz is not None
    if pa.types.is_floating(expected):
        return pa.types.is_floating(actual) or pa.types.is_integer(actual)
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual)
    if pa.types.is_string(expected):
        return pa.types.is_large_string(actual) or pa.types.is_dictionary(actual)
    if pa.types.is_decimal(expected):
        # exact in, exact out (a cast that would lose digits raises); floats are refused
        return pa.types.is_decimal(actual) or pa.types.is_integer(actual)
    return False


def _first_null(col: pa.ChunkedArray) -> int:
    return int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])


def _action_x_confidence(table: pa.Table) -> pa.Array:
    a = np.asarray(table.column("action").to_numpy(), dtype=np.float32)
    c = np.asarray(table.column("confidence").to_numpy(), dtype=np.float32)
    return pa.array(a * c, pa.float32())


# Columns added to a contract after producers and journals existed: a batch without one gets
# it derived from the columns it has (the meaning it had before the column existed).
DERIVED: dict[tuple[str, str], Callable[[pa.Table], pa.Array]] = {
    ("VOTES", "score"): _action_x_confidence,
    ("SIGNALS", "score"): _action_x_confidence,
}


def _conform(table: pa.Table, schema: pa.Schema, source: str | None, coerce: bool) -> pa.Table:
    name = contract_name(schema)
    for (contract, column), derive in DERIVED.items():
        if contract == name and column not in table.column_names:
            needed = ("action", "confidence")
            if all(n in table.column_names for n in needed):
                table = table.append_column(column, derive(table))
    columns = []
    for f in schema:
        if f.name not in table.column_names:
            raise SchemaError(f"{name}: missing column {f.name!r}", source=source, column=f.name)
        col = table.column(f.name)
        if col.null_count and pa.types.is_floating(col.type):
            # A missing number is a bad value like NaN: reported (or quarantined) by row.
            col = pc.fill_null(col, float("nan"))
        if col.null_count:
            raise SchemaError(
                f"{name}: null value in column {f.name!r}",
                source=source,
                row=_first_null(col),
                column=f.name,
            )
        if col.type != f.type:
            if not (coerce and _castable(col.type, f.type)):
                raise SchemaError(
                    f"{name}: column {f.name!r} has type {col.type}, expected {f.type}",
                    source=source,
                    column=f.name,
                )
            col = _cast(col, f.type)
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)


def _cast(col: pa.ChunkedArray, to: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_dictionary(col.type) and not pa.types.is_dictionary(to):
        col = col.cast(col.type.value_type)
    if pa.types.is_dictionary(to) and pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.cast(to)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Violation:
    """Rows of a batch that break a value rule."""

    reason: str
    column: str
    mask: np.ndarray  # True where the row is bad


ValueRule = Callable[[pa.Table], list[Violation]]


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy()


def symbol_codes(table: pa.Table) -> np.ndarray:
    """Integer code per row for the symbol column (dictionary indices, unified across chunks)."""
    col = table.column("symbol").unify_dictionaries().combine_chunks()
    if pa.types.is_dictionary(col.type):
        return np.asarray(col.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.asarray(pc.dictionary_encode(col).indices.to_numpy(zero_copy_only=False), np.int64)


def order_violations(table: pa.Table) -> list[Violation]:
    """Within each symbol, each timestamp must be later than every earlier one in table order.

    A row equal to the running maximum is a duplicate; a row below it goes backwards.  Dropping
    the flagged rows always leaves a strictly increasing sequence per symbol.
    """
    n = table.num_rows
    if n < 2:
        return []
    codes = symbol_codes(table)
    # int64 throughout: float64 has 53 bits, so distinct nanosecond ticks would compare equal
    ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    codes_sorted, ts_sorted = codes[order], ts[order]
    running_max = pd.Series(ts_sorted).groupby(codes_sorted).cummax().to_numpy(dtype=np.int64)
    prev_max = np.empty_like(running_max)
    prev_max[0], prev_max[1:] = running_max[0], running_max[:-1]
    has_prev = np.ones(n, dtype=bool)
    has_prev[0] = False
    has_prev[1:] = codes_sorted[1:] == codes_sorted[:-1]  # not the first row of its symbol
    dup = np.zeros(n, dtype=bool)
    back = np.zeros(n, dtype=bool)
    dup[order[has_prev & (ts_sorted == prev_max)]] = True
    back[order[has_prev & (ts_sorted < prev_max)]] = True
    return [
        Violation("duplicate timestamp for symbol", "ts", dup),
        Violation("timestamps not increasing for symbol", "ts", back),
    ]


def _bars_rules(table: pa.Table) -> list[Violation]:
    o, h, low, c, v = (_np(table, k) for k in ("open", "high", "low", "close", "volume"))
    out = []
    for name, x in (("open", o), ("high", h), ("low", low), ("close", c)):
        out.append(Violation("price is missing, NaN or infinite", name, ~np.isfinite(x)))
        with np.errstate(invalid="ignore"):
            out.append(Violation("price is not positive", name, x <= 0))
    out.append(Violation("volume is missing, NaN or infinite", "volume", ~np.isfinite(v)))
    with np.errstate(invalid="ignore"):
        out.append(Violation("volume is negative", "volume", v < 0))
        out.append(Violation("high < low", "high", h < low))
        out.append(Violation("high below open or close", "high", (h < o) | (h < c)))
        out.append(Violation("low above open or close", "low", (low > o) | (low > c)))
    return out + order_violations(table)


def _votes_rules(table: pa.Table) -> list[Violation]:
    a = _np(table, "action")
    conf = _np(table, "confidence")
    score = _np(table, "score")
    return [
        Violation("action not in {-1, 0, 1}", "action", (a < -1) | (a > 1)),
        Violation("confidence not in [0, 1]", "confidence", ~((conf >= 0) & (conf <= 1))),
        Violation("score is NaN or infinite", "score", ~np.isfinite(score)),
    ]


def _weights_rules(table: pa.Table) -> list[Violation]:
    w = _np(table, "weight")
    conf = _np(table, "confidence")
    return [
        Violation("weight is NaN or infinite", "weight", ~np.isfinite(w)),
        Violation("confidence not in [0, 1]", "confidence", ~((conf >= 0) & (conf <= 1))),
        Violation("score is NaN or infinite", "score", ~np.isfinite(_np(table, "score"))),
    ]


def _signals_rules(table: pa.Table) -> list[Violation]:
    decided = np.asarray(table.column("decided").to_numpy(zero_copy_only=False), dtype=bool)
    undecided_moves = ~decided & (_np(table, "action") != 0)
    return [*_votes_rules(table), Violation("no decision with a non-zero action", "action", undecided_moves)]


def _features_rules(table: pa.Table) -> list[Violation]:
    # Features may be NaN during warm-up; infinities always mean a bug upstream.
    out = []
    for f in table.schema:
        if pa.types.is_floating(f.type):
            out.append(Violation("feature is infinite", f.name, np.isinf(_np(table, f.name))))
    return out + order_violations(table)


def _orders_rules(table: pa.Table) -> list[Violation]:
    side = _np(table, "side")
    qty, price, fee = (np.asarray(_np(table, k), dtype=np.float64) for k in ("qty", "price", "fee"))
    return [
        Violation("side not in {-1, 1}", "side", (side != 1) & (side != -1)),
        Violation("qty is not positive and finite", "qty", ~(np.isfinite(qty) & (qty > 0))),
        Violation("price is not positive and finite", "price", ~(np.isfinite(price) & (price > 0))),
        Violation("fee is negative or not finite", "fee", ~(np.isfinite(fee) & (fee >= 0))),
    ]


VALUE_RULES: dict[str, ValueRule] = {
    "BARS": _bars_rules,
    "VOTES": _votes_rules,
    "SIGNALS": _signals_rules,
    "WEIGHTS": _weights_rules,
    "FEATURES": _features_rules,
    "ORDERS": _orders_rules,
    "FILLS": _orders_rules,
}


def violations(table: pa.Table, schema: pa.Schema) -> list[Violation]:
    """All value-rule violations of an already-conformed table (empty list when clean)."""
    rule = VALUE_RULES.get(contract_name(schema))
    if rule is None or table.num_rows == 0:
        return []
    return [v for v in rule(table) if v.mask.any()]


def _raise_first(found: list[Violation], schema: pa.Schema, source: str | None) -> None:
    first = min(found, key=lambda v: int(np.argmax(v.mask)))
    row = int(np.argmax(first.mask))
    raise DataError(
        f"{contract_name(schema)}: {first.reason} ({int(first.mask.sum())} row(s))",
        source=source,
        row=row,
        column=first.column,
    )


def validate(
    table: pa.Table, schema: pa.Schema, *, source: str | None = None, coerce: bool = True
) -> pa.Table:
    """Return ``table`` conformed to ``schema`` or raise naming the column and first bad row.

    Columns are selected and ordered as in the contract; for FEATURES pass the schema from
    ``features_schema``.  With ``coerce`` lossless casts are applied (int -> float, string ->
    dictionary, timestamp unit -> ns); a naive timestamp is always rejected.
    """
    if not isinstance(table, pa.Table):
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        else:
            raise SchemaError(
                f"{contract_name(schema)}: expected a pyarrow Table, got {type(table).__name__}",
                source=source,
            )
    conformed = _conform(table, schema, source, coerce)
    found = violations(conformed, schema)
    if found:
        _raise_first(found, schema, source)
    return conformed


@dataclass(frozen=True)
class Quarantine:
    """Rows removed from a batch, counted by reason (never silent)."""

    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rows: tuple[int, ...] = ()

    def merge(self, other: Quarantine) -> Quarantine:
        reasons = dict(self.reasons)
        for k, v in other.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
        return Quarantine(self.count + other.count, reasons, self.rows + other.rows)


def quarantine(
    table: pa.Table, schema: pa.Schema, *, source: str | None = None
) -> tuple[pa.Table, Quarantine]:
    """Split off rows that break value rules; type errors still raise (nothing to salvage).

    Returns the clean rows and a ``Quarantine`` naming how many rows went for which reason.
    Dropping the flagged rows leaves timestamps strictly increasing per symbol.
    """
    conformed = _conform(table, schema, source, coerce=True)
    bad = np.zeros(conformed.num_rows, dtype=bool)
    reasons: dict[str, int] = {}
    for v in violations(conformed, schema):
        new = v.mask & ~bad
        if new.any():
            key = f"{v.column}: {v.reason}"
            reasons[key] = reasons.get(key, 0) + int(new.sum())
            bad |= new
    clean = conformed.filter(pa.array(~bad)) if bad.any() else conformed
    rows = tuple(int(i) for i in np.flatnonzero(bad))
    return clean, Quarantine(len(rows), reasons, rows)


# Why an agent voted as it did (``tinywindow.models.explain``): per (symbol, ts, agent) its
# ``rank`` 1..k largest contributions, each to one input cell of the window the model saw:
# ``feature`` at ``lag`` bars before the decision bar (0 = the decision bar).
# ``contribution`` is in the model's output units (log-odds or margin for XGBoost's exact
# tree SHAP, the chosen action's logit for integrated gradients), positive = towards the
# agent's vote.  Only decisions that trade are explained.
EXPLANATIONS = _contract(
    "EXPLANATIONS",
    [
        *FEATURE_KEYS,
        pa.field("agent", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("feature", pa.string(), nullable=False),
        pa.field("lag", pa.int16(), nullable=False),
        pa.field("contribution", pa.float32(), nullable=False),
        pa.field("rank", pa.int8(), nullable=False),
    ],
)
