"""The SQL trade store's tables (SQLAlchemy 2 declarative), every row keyed by ``run_id``
(``<run>-<mode>``, the journals' prefix).

Money is ``Money``: declared ``Numeric(38, 18)``, stored exactly: PostgreSQL's unconstrained
``NUMERIC`` (a fixed scale of 18 would round the engine's exact amounts, e.g. the fee on a
float close), SQLite's canonical decimal text (SQLite has no decimal type: a REAL would round).
Read back it is always a ``Decimal``.  Times are ``ts_ns`` (exact, the journal's) plus ``ts``
(a UTC timestamp to query by).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Integer, Numeric, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from tinywindow.core.money import dec_str

__all__ = ["Base", "EquityRow", "FillRow", "ModelVersionRow", "Money", "OrderRow", "OutcomeRow", "PositionRow",
           "ProjectionState", "RiskEventRow", "RunRow", "SignalRow", "VoteRow", "WeightRow"]


class Money(TypeDecorator[Decimal]):
    """An exact decimal amount (module docstring)."""

    impl = Numeric(38, 18)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        return dec_str(d) if dialect.name == "sqlite" else d

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    run: Mapped[str] = mapped_column(String(200), index=True)
    mode: Mapped[str] = mapped_column(String(32))
    journal_seq: Mapped[int] = mapped_column(BigInteger)
    initial_cash: Mapped[Decimal | None] = mapped_column(Money)
    final_equity: Mapped[Decimal | None] = mapped_column(Money)
    orders: Mapped[int] = mapped_column(Integer)
    fills: Mapped[int] = mapped_column(Integer)
    first_ts: Mapped[datetime | None] = mapped_column(TS)
    last_ts: Mapped[datetime | None] = mapped_column(TS)
    summary: Mapped[str] = mapped_column(Text, default="{}")


class ProjectionState(Base):
    """How far the store follows a run's portfolio journal: the last record seq projected."""

    __tablename__ = "projection_state"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    journal: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class OrderRow(Base):
    __tablename__ = "orders"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    symbol: Mapped[str] = mapped_column(String(64), index=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(TS)
    side: Mapped[int] = mapped_column(Integer)
    qty: Mapped[Decimal] = mapped_column(Money)
    price: Mapped[Decimal] = mapped_column(Money)
    limit_price: Mapped[Decimal | None] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(Text)


class FillRow(Base):
    __tablename__ = "fills"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128), index=True)
    symbol: Mapped[str] = mapped_column(String(64), index=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(TS)
    side: Mapped[int] = mapped_column(Integer)
    qty: Mapped[Decimal] = mapped_column(Money)
    price: Mapped[Decimal] = mapped_column(Money)
    fee: Mapped[Decimal] = mapped_column(Money)


class EquityRow(Base):
    __tablename__ = "equity"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(TS)
    equity: Mapped[Decimal] = mapped_column(Money)


class RiskEventRow(Base):
    __tablename__ = "risk_events"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(TS)
    symbol: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    requested_qty: Mapped[str] = mapped_column(String(80))
    allowed_qty: Mapped[str] = mapped_column(String(80))


class PositionRow(Base):
    __tablename__ = "positions"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    qty: Mapped[Decimal] = mapped_column(Money)
    avg_price: Mapped[Decimal] = mapped_column(Money)
    last_price: Mapped[Decimal | None] = mapped_column(Money)
    market_value: Mapped[Decimal] = mapped_column(Money)
    unrealized_pnl: Mapped[Decimal] = mapped_column(Money)
    realized_pnl: Mapped[Decimal] = mapped_column(Money)


class SignalRow(Base):
    __tablename__ = "signals"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(TS)
    action: Mapped[int] = mapped_column(Integer)
    decided: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[float] = mapped_column(Float)
    agreement: Mapped[float] = mapped_column(Float)
    votes: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)


class VoteRow(Base):
    __tablename__ = "votes"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(TS)
    agent: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    action: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)


class OutcomeRow(Base):
    __tablename__ = "outcomes"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(TS)
    agent: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    action: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    realized_return: Mapped[float] = mapped_column(Float)
    reward: Mapped[float] = mapped_column(Float)


class WeightRow(Base):
    __tablename__ = "weights"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(TS)
    agent: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    parent: Mapped[str | None] = mapped_column(String(32))
    created: Mapped[datetime | None] = mapped_column(TS)
    served: Mapped[bool] = mapped_column(Boolean)
    decision: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str | None] = mapped_column(String(64))
    challenger: Mapped[float | None] = mapped_column(Float)
    champion: Mapped[float | None] = mapped_column(Float)
