"""``differences(store, records)``: the store's rows of one run against the journal's, named by key."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd

from tinywindow.records._models import (
    EquityRow,
    FillRow,
    ModelVersionRow,
    OrderRow,
    OutcomeRow,
    PositionRow,
    RiskEventRow,
    SignalRow,
    VoteRow,
    WeightRow,
)

if TYPE_CHECKING:
    from tinywindow.records.journal import RunRecords

__all__ = ["differences"]
LIMIT = 20  # differences listed per table before "... and N more"


def _same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and a != a):
        return b is None or (isinstance(b, float) and b != b)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        try:
            return b is not None and Decimal(str(a)) == Decimal(str(b))
        except ArithmeticError:
            return False
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and a is not None and float(a) == float(b)
    return bool(a == b)


def _journal(df: pd.DataFrame, key: str, fields: dict[str, str]) -> dict[Any, dict[str, Any]]:
    """Journal rows by key: {store column: frame column}; ``ts`` compared as ns."""
    out = {}
    for row in df.to_dict("records"):
        item = {}
        for col, src in fields.items():
            v = row[src]
            item[col] = int(v.value) if col == "ts_ns" else (None if v is None or (isinstance(v, float) and v != v) else v)
        out[row[key] if key in row else row["_n"]] = item
    return out


def _compare(name: str, label: str, journal: dict[Any, dict[str, Any]], store: pd.DataFrame, key: str) -> list[str]:
    diffs: list[str] = []
    stored = {r[key]: r for r in store.to_dict("records")}
    for k, want in journal.items():
        got = stored.get(k)
        if got is None:
            diffs.append(f"{name}: {label} {k} is in the journal but missing from the store")
            continue
        for col, v in want.items():
            if not _same(v, got.get(col)):
                diffs.append(f"{name}: {label} {k} {col}: store {got.get(col)} != journal {v}")
    diffs += [f"{name}: {label} {k} is in the store but not in the journal" for k in stored if k not in journal]
    if len(diffs) > LIMIT:
        diffs = [*diffs[:LIMIT], f"{name}: ... and {len(diffs) - LIMIT} more differences"]
    return diffs


def _numbered(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reset_index(drop=True).copy()
    out["_n"] = range(len(out))
    return out


def differences(store: Any, rec: RunRecords) -> list[str]:
    """``store``: a ``TradeStore`` (``projected_seq``, ``table``)."""
    rid = rec.run_id
    if store.projected_seq(rec.run, rec.mode) is None:
        return [f"run {rid}: not in the store (run 'tinywindow db rebuild')"]
    out: list[str] = []
    exact = {"qty": "qty_exact", "price": "price_exact"}
    out += _compare("orders", "order", _journal(rec.orders, "order_id", {
        "seq": "seq", "symbol": "symbol", "ts_ns": "ts", "side": "side", **exact,
        "limit_price": "limit_price_exact", "reason": "reason"}), store.table(OrderRow, rid), "order_id")
    out += _compare("fills", "fill (journal seq)", _journal(rec.fills, "seq", {
        "order_id": "order_id", "symbol": "symbol", "ts_ns": "ts", "side": "side", **exact, "fee": "fee_exact"}),
        store.table(FillRow, rid), "seq")
    out += _compare("equity", "mark (journal seq)", _journal(rec.equity, "seq", {"ts_ns": "ts", "equity": "equity_exact"}),
                    store.table(EquityRow, rid), "seq")
    out += _compare("risk_events", "risk event (journal seq)", _journal(rec.risk_events, "seq", {
        "ts_ns": "ts", "symbol": "symbol", "order_id": "order_id", "reason": "reason", "action": "action",
        "detail": "detail"}), store.table(RiskEventRow, rid), "seq")
    money = ["qty", "avg_price", "last_price", "market_value", "unrealized_pnl", "realized_pnl"]
    out += _compare("positions", "symbol", _journal(rec.positions, "symbol", {c: f"{c}_exact" for c in money}),
                    store.table(PositionRow, rid), "symbol")
    for name, df, table, cols in (
        ("signals", rec.signals, SignalRow, ["symbol", "action", "decided", "confidence", "agreement", "votes", "score", "reason"]),
        ("votes", rec.votes, VoteRow, ["symbol", "agent", "model_version", "action", "confidence", "score"]),
        ("outcomes", rec.outcomes, OutcomeRow, ["symbol", "agent", "model_version", "action", "confidence",
                                                "realized_return", "reward"]),
        ("weights", rec.weights, WeightRow, ["agent", "weight"]),
    ):
        fields = {c: c for c in cols} | {"ts_ns": "ts"}
        out += _compare(name, "row", _journal(_numbered(df), "_n", fields), store.table(table, rid), "n")
    models = rec.models.assign(_key=[f"{a}/{v}" for a, v in zip(rec.models["agent"], rec.models["version"], strict=True)])
    stored = store.table(ModelVersionRow, rid)
    stored["_key"] = [f"{a}/{v}" for a, v in zip(stored["agent"], stored["version"], strict=True)]
    out += _compare("model_versions", "model", _journal(models, "_key", {
        "parent": "parent", "served": "served", "decision": "decision", "metric": "metric",
        "challenger": "challenger", "champion": "champion"}), stored, "_key")
    seq = store.projected_seq(rec.run, rec.mode)
    if seq != rec.journal_seq:
        out.append(f"run {rid}: the store follows the journal to seq {seq}, the journal is at {rec.journal_seq}")
    return out
