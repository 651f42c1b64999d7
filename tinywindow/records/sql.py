"""The SQL trade store: a projection of the signed journals, rebuildable and checked against them.

* ``TradeStore(url)``: SQLite (``sqlite:///<data_dir>/trades.db``, ``default_url``) or
  PostgreSQL (``postgresql+psycopg://...``).  ``project(records)`` replaces one run's rows in
  one transaction (nothing half-applied; idempotent); ``rebuild(data_dir, keys)`` projects
  every run found in the journal folder; ``verify(records)`` lists every difference between
  the store and the journal (empty: consistent); ``trades``/``positions``/``runs`` query it.
* ``StoreWriter(store, run, mode, records)``: the live path.  The PortfolioActor calls
  ``on_events(events, head_seq)`` after each journal commit; the rows go in at once.  A failed
  database write is logged and counted and never raises into trading: the writer is then
  *behind*, and its next write first catches up from the journal (``records(after)``) from
  the seq the store last recorded in ``projection_state``; no fill is lost.

Tables: ``tinywindow.records._models``.  Errors: a bad URL is a ``ConfigError``; an unreachable
or failing database a ``TransientError``; an unknown run a ``ConfigError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event
from tinywindow.core.log import get_logger
from tinywindow.crypto.journal import Record
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import ConfigError, TransientError
from tinywindow.execution.config import PortfolioConfig
from tinywindow.records._models import (
    Base,
    EquityRow,
    FillRow,
    ModelVersionRow,
    OrderRow,
    OutcomeRow,
    PositionRow,
    ProjectionState,
    RiskEventRow,
    RunRow,
    SignalRow,
    VoteRow,
    WeightRow,
)
from tinywindow.records._replay import PortfolioReplay, Rows
from tinywindow.records.journal import RunRecords, find_runs, load_run
from tinywindow.risk.config import RiskConfig

__all__ = ["PORTFOLIO_TABLES", "StoreWriter", "TradeStore", "default_url"]

_log = get_logger("records.sql")
PORTFOLIO = "portfolio"
PORTFOLIO_TABLES = ("orders", "fills", "equity", "risk_events", "positions")
_PER_EVENT = (OrderRow, FillRow, EquityRow, RiskEventRow)
_PER_RUN = (*_PER_EVENT, PositionRow, SignalRow, VoteRow, OutcomeRow, WeightRow, ModelVersionRow, ProjectionState,
            RunRow)


def default_url(data_dir: str | Path) -> str:
    """One store per data directory: ``sqlite:///<data_dir>/trades.db``."""
    return f"sqlite:///{Path(data_dir).resolve() / 'trades.db'}"


def _dt(ts_ns: int) -> Any:
    return pd.Timestamp(int(ts_ns), tz="UTC").to_pydatetime()


def _dec(v: Any) -> Decimal | None:
    return None if v is None or (isinstance(v, float) and v != v) else Decimal(str(v))


# --------------------------------------------------------------------------- rows


def _event_rows(run_id: str, rows: Rows) -> dict[Any, list[dict[str, Any]]]:
    return {
        OrderRow: [{"run_id": run_id, "order_id": r["order_id"], "seq": r["seq"], "symbol": r["symbol"],
                    "ts_ns": r["ts"], "ts": _dt(r["ts"]), "side": r["side"], "qty": r["qty"], "price": r["price"],
                    "limit_price": r["limit_price"], "reason": r["reason"]} for r in rows.orders],
        FillRow: [{"run_id": run_id, "seq": r["seq"], "order_id": r["order_id"], "symbol": r["symbol"],
                   "ts_ns": r["ts"], "ts": _dt(r["ts"]), "side": r["side"], "qty": r["qty"], "price": r["price"],
                   "fee": r["fee"]} for r in rows.fills],
        EquityRow: [{"run_id": run_id, "seq": r["seq"], "ts_ns": r["ts"], "ts": _dt(r["ts"]), "equity": r["equity"]}
                    for r in rows.equity],
        RiskEventRow: [{"run_id": run_id, "seq": r["seq"], "ts_ns": r["ts"], "ts": _dt(r["ts"]), "symbol": r["symbol"],
                        "order_id": r["order_id"], "reason": r["reason"], "action": r["action"], "detail": r["detail"],
                        "requested_qty": str(r["requested_qty"]), "allowed_qty": str(r["allowed_qty"])}
                       for r in rows.risk_events],
    }


def _records_rows(rec: RunRecords) -> tuple[Rows, list[dict[str, Any]]]:
    """``RunRecords``' portfolio frames back to exact rows (from the ``*_exact`` columns)."""
    def ns(s: pd.Series) -> list[int]:
        return [int(x) for x in s.astype("int64")] if len(s) else []

    rows = Rows()
    o = rec.orders
    rows.orders = [{"seq": int(q), "order_id": i, "symbol": s, "ts": t, "side": int(sd), "qty": Decimal(qe),
                    "price": Decimal(pe), "limit_price": _dec(le), "reason": r}
                   for q, i, s, t, sd, qe, pe, le, r in zip(o["seq"], o["order_id"], o["symbol"], ns(o["ts"]), o["side"],
                                                            o["qty_exact"], o["price_exact"], o["limit_price_exact"],
                                                            o["reason"], strict=True)]
    f = rec.fills
    rows.fills = [{"seq": int(q), "order_id": i, "symbol": s, "ts": t, "side": int(sd), "qty": Decimal(qe),
                   "price": Decimal(pe), "fee": Decimal(fe)}
                  for q, i, s, t, sd, qe, pe, fe in zip(f["seq"], f["order_id"], f["symbol"], ns(f["ts"]), f["side"],
                                                       f["qty_exact"], f["price_exact"], f["fee_exact"], strict=True)]
    e = rec.equity
    rows.equity = [{"seq": int(q), "ts": t, "equity": Decimal(x)}
                   for q, t, x in zip(e["seq"], ns(e["ts"]), e["equity_exact"], strict=True)]
    r = rec.risk_events
    rows.risk_events = [{"seq": int(q), "ts": t, "symbol": s, "order_id": i, "reason": why, "action": a, "detail": d,
                         "requested_qty": rq, "allowed_qty": aq}
                        for q, t, s, i, why, a, d, rq, aq in zip(r["seq"], ns(r["ts"]), r["symbol"], r["order_id"],
                                                                r["reason"], r["action"], r["detail"], r["requested_qty"],
                                                                r["allowed_qty"], strict=True)]
    p = rec.positions
    cols = ["qty", "avg_price", "last_price", "market_value", "unrealized_pnl", "realized_pnl"]
    positions = [{"symbol": sym, **{c: _dec(p[f"{c}_exact"].iloc[k]) for c in cols}} for k, sym in enumerate(p["symbol"])]
    return rows, positions


def _position_rows(run_id: str, positions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"run_id": run_id, **p} for p in positions]


def _frame_rows(run_id: str, df: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for n, row in enumerate(df.itertuples(index=False)):
        d = dict(zip(df.columns, row, strict=True))
        item: dict[str, Any] = {"run_id": run_id, "n": n}
        for c in columns:
            v = d[c]
            if c == "ts":
                item["ts_ns"], item["ts"] = int(v.value), v.to_pydatetime()
            elif isinstance(v, bool) or c in ("decided", "served"):
                item[c] = bool(v)
            elif hasattr(v, "item"):
                item[c] = v.item()
            else:
                item[c] = v
        out.append(item)
    return out


def _model_rows(run_id: str, df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in df.itertuples(index=False):
        d = dict(zip(df.columns, row, strict=True))
        out.append({"run_id": run_id, "agent": d["agent"], "version": d["version"], "parent": d["parent"],
                    # microseconds: what a SQL timestamp holds (the registry's nanoseconds are rounded off)
                    "created": None if pd.isna(d["created"]) else pd.Timestamp(d["created"]).floor("us").to_pydatetime(),
                    "served": bool(d["served"]), "decision": d["decision"], "metric": d["metric"],
                    "challenger": None if pd.isna(d["challenger"]) else float(d["challenger"]),
                    "champion": None if pd.isna(d["champion"]) else float(d["champion"])})
    return out


# --------------------------------------------------------------------------- the store


class TradeStore:
    """The store at ``url`` (module docstring); tables are created on first use."""

    def __init__(self, url: str, *, create: bool = True, engine: Engine | None = None) -> None:
        self.url = url
        try:
            self.engine = engine if engine is not None else create_engine(url, future=True)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ConfigError(f"storage.sql_url is not a usable database URL ({type(exc).__name__}: {exc}); "
                              "use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB", key="storage.sql_url") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if create:
            self.create_tables()

    def create_tables(self) -> None:
        """Create any missing table (idempotent)."""
        self._guard("create tables", lambda: Base.metadata.create_all(self.engine))

    @property
    def safe_url(self) -> str:
        """The URL with any password masked (for messages)."""
        return self.engine.url.render_as_string(hide_password=True)

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except SQLAlchemyError as exc:
            raise TransientError(f"trade store {self.safe_url}: {what} failed: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writing
    def project(self, records: RunRecords) -> None:
        """Replace ``records``' run in the store, in one transaction."""
        rid = records.run_id
        rows, positions = _records_rows(records)
        summary = json.dumps(records.summary, sort_keys=True, default=str)
        final = rows.equity[-1]["equity"] if rows.equity else None
        eq_ts = [r["ts"] for r in rows.equity]
        initial = records.summary.get("initial_cash")
        cash = _dec(initial) if initial is not None else None

        def write() -> None:
            with self.engine.begin() as conn:
                for table in _PER_RUN:
                    conn.execute(delete(table).where(table.run_id == rid))
                conn.execute(insert(RunRow), [{
                    "run_id": rid, "run": records.run, "mode": records.mode, "journal_seq": records.journal_seq,
                    "initial_cash": cash, "final_equity": final, "orders": len(rows.orders), "fills": len(rows.fills),
                    "first_ts": _dt(min(eq_ts)) if eq_ts else None, "last_ts": _dt(max(eq_ts)) if eq_ts else None,
                    "summary": summary}])
                conn.execute(insert(ProjectionState), [{"run_id": rid, "journal": PORTFOLIO, "seq": records.journal_seq}])
                for table, items in _event_rows(rid, rows).items():
                    if items:
                        conn.execute(insert(table), items)
                self._insert(conn, PositionRow, _position_rows(rid, positions))
                self._insert(conn, SignalRow, _frame_rows(rid, records.signals, ["symbol", "ts", "action", "decided",
                             "confidence", "agreement", "votes", "score", "reason"]))
                self._insert(conn, VoteRow, _frame_rows(rid, records.votes, ["symbol", "ts", "agent", "model_version",
                             "action", "confidence", "score"]))
                self._insert(conn, OutcomeRow, _frame_rows(rid, records.outcomes, ["symbol", "ts", "agent",
                             "model_version", "action", "confidence", "realized_return", "reward"]))
                self._insert(conn, WeightRow, _frame_rows(rid, records.weights, ["ts", "agent", "weight"]))
                self._insert(conn, ModelVersionRow, _model_rows(rid, records.models))

        self._guard(f"projecting run {rid}", write)

    @staticmethod
    def _insert(conn: Any, table: Any, items: list[dict[str, Any]]) -> None:
        if items:
            conn.execute(insert(table), items)

    def rebuild(self, data_dir: Path, keys: KeyStore, *, risk: RiskConfig | None = None,
                portfolio: PortfolioConfig | None = None, journal_dir: str = "journal",
                registry_dir: str = "models") -> list[str]:
        """Project every run found in the journal folder; returns their run ids."""
        done = []
        for run, mode in find_runs(data_dir, journal_dir):
            rec = load_run(data_dir, run, mode, keys, risk=risk, portfolio=portfolio, journal_dir=journal_dir,
                           registry_dir=registry_dir)
            self.project(rec)
            done.append(rec.run_id)
        return done

    def apply_rows(self, run: str, mode: str, rows: Rows, positions: list[dict[str, Any]], after: int, seq: int,
                   initial_cash: Decimal | None = None) -> None:
        """The live write: rows of journal records ``after < seq' <= seq`` (any already there are
        replaced), the book, and the cursor, in one transaction."""
        rid = f"{run}-{mode}"
        with self.engine.begin() as conn:
            for table in _PER_EVENT:
                conn.execute(delete(table).where(table.run_id == rid, table.seq > after))
            for table, items in _event_rows(rid, rows).items():
                if items:
                    conn.execute(insert(table), items)
            conn.execute(delete(PositionRow).where(PositionRow.run_id == rid))
            self._insert(conn, PositionRow, _position_rows(rid, positions))
            # counted in the database (an index range), not fetched: a commit's cost must not
            # grow with the length of the run
            n_orders = conn.execute(select(func.count()).select_from(OrderRow).where(OrderRow.run_id == rid)).scalar_one()
            n_fills = conn.execute(select(func.count()).select_from(FillRow).where(FillRow.run_id == rid)).scalar_one()
            last = conn.execute(select(EquityRow.equity, EquityRow.ts).where(EquityRow.run_id == rid)
                                .order_by(EquityRow.seq.desc()).limit(1)).first()
            first = conn.execute(select(EquityRow.ts).where(EquityRow.run_id == rid)
                                 .order_by(EquityRow.seq).limit(1)).first()
            values = {"journal_seq": seq, "orders": int(n_orders), "fills": int(n_fills),
                      "final_equity": last[0] if last else None, "last_ts": last[1] if last else None,
                      "first_ts": first[0] if first else None}
            if conn.execute(select(RunRow.run_id).where(RunRow.run_id == rid)).first() is None:
                conn.execute(insert(RunRow), [{"run_id": rid, "run": run, "mode": mode, "initial_cash": initial_cash,
                                               "summary": "{}", **values}])
            else:
                conn.execute(update(RunRow).where(RunRow.run_id == rid).values(**values))
            conn.execute(delete(ProjectionState).where(ProjectionState.run_id == rid, ProjectionState.journal == PORTFOLIO))
            conn.execute(insert(ProjectionState), [{"run_id": rid, "journal": PORTFOLIO, "seq": seq}])

    def projected_seq(self, run: str, mode: str) -> int | None:
        """The last portfolio journal seq the store holds for the run (None: none)."""
        with self.engine.connect() as conn:
            got = conn.execute(select(ProjectionState.seq).where(ProjectionState.run_id == f"{run}-{mode}",
                                                                  ProjectionState.journal == PORTFOLIO)).first()
        return None if got is None else int(got[0])

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # ------------------------------------------------------------------ reading
    def _frame(self, stmt: Any) -> pd.DataFrame:
        def read() -> pd.DataFrame:
            with self.engine.connect() as conn:
                result = conn.execute(stmt)
                return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))
        df: pd.DataFrame = self._guard("query", read)
        for c in df.columns:
            if c in ("ts", "first_ts", "last_ts", "created"):
                df[c] = pd.to_datetime(df[c], utc=True)
        return df

    def _run_filter(self, table: Any, run: str | None) -> Any:
        if run is None:
            return True
        ids = [r for r in self.runs()["run_id"] if r == run or r.rpartition("-")[0] == run]
        if not ids:
            known = ", ".join(self.runs()["run_id"]) or "none"
            raise ConfigError(f"unknown run {run!r} in the trade store {self.safe_url} (runs: {known})", key="run")
        return table.run_id.in_(ids)

    def runs(self) -> pd.DataFrame:
        """One row per run/mode: counts, final equity (exact), time range, journal seq."""
        return self._frame(select(RunRow.run_id, RunRow.run, RunRow.mode, RunRow.orders, RunRow.fills,
                                  RunRow.final_equity, RunRow.first_ts, RunRow.last_ts, RunRow.journal_seq)
                           .order_by(RunRow.run_id))

    def trades(self, run: str | None = None) -> pd.DataFrame:
        """Fills (money exact, as Decimal), oldest first."""
        return self._frame(select(FillRow.run_id, FillRow.seq, FillRow.order_id, FillRow.symbol, FillRow.ts,
                                  FillRow.side, FillRow.qty, FillRow.price, FillRow.fee)
                           .where(self._run_filter(FillRow, run)).order_by(FillRow.run_id, FillRow.seq))

    def orders(self, run: str | None = None) -> pd.DataFrame:
        return self._frame(select(OrderRow.run_id, OrderRow.seq, OrderRow.order_id, OrderRow.symbol, OrderRow.ts,
                                  OrderRow.side, OrderRow.qty, OrderRow.price, OrderRow.limit_price, OrderRow.reason)
                           .where(self._run_filter(OrderRow, run)).order_by(OrderRow.run_id, OrderRow.seq))

    def positions(self, run: str | None = None) -> pd.DataFrame:
        """The final book of each run (money exact)."""
        return self._frame(select(PositionRow.run_id, PositionRow.symbol, PositionRow.qty, PositionRow.avg_price,
                                  PositionRow.last_price, PositionRow.market_value, PositionRow.unrealized_pnl,
                                  PositionRow.realized_pnl)
                           .where(self._run_filter(PositionRow, run)).order_by(PositionRow.run_id, PositionRow.symbol))

    def table(self, table: Any, run_id: str) -> pd.DataFrame:
        cols = [c for c in table.__table__.columns]
        order = [c for c in cols if c.primary_key]
        return self._frame(select(*cols).where(table.run_id == run_id).order_by(*order))

    # ------------------------------------------------------------------ checking
    def verify(self, records: RunRecords, tables: Sequence[str] | None = None) -> list[str]:
        """Every difference between the store and ``records`` (the journal): missing, extra or
        changed rows, named by key.  Empty: the store is consistent with the journal.
        ``tables``: only these (``PORTFOLIO_TABLES``: what the live ``StoreWriter`` keeps)."""
        from tinywindow.records._verify import differences

        diffs = differences(self, records)
        if tables is None:
            return diffs
        return [d for d in diffs if d.split(":", 1)[0] in tables or d.startswith("run ")]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


# --------------------------------------------------------------------------- live writer


class StoreWriter:
    """Projects one run's portfolio journal as it is committed (module docstring).

    ``records(after)``: the journal's data records with seq > ``after`` (the PortfolioActor's
    open journal).  Failed writes are counted in ``failures``; ``behind`` says a catch-up is
    due."""

    def __init__(self, store: TradeStore, run: str, mode: str, records: Callable[[int], Sequence[Record]], *,
                 risk: RiskConfig | None = None, portfolio: PortfolioConfig | None = None) -> None:
        self.store, self.run, self.mode = store, run, mode
        self._records = records
        self._risk, self._portfolio = risk, portfolio
        self.replay = PortfolioReplay(risk, portfolio)
        self.failures = 0
        self.writes = 0
        self.behind = True  # start-up: catch up from the journal on the first write

    def on_events(self, events: Sequence[Event], head_seq: int) -> bool:
        """Project a committed batch (its last record is ``head_seq``); True when the store now
        holds everything up to it.  Never raises."""
        try:
            if self.behind:
                self._catch_up()
                return True
            if not events:
                return True
            rows = Rows()
            after = self.replay.seq
            first = head_seq - len(events) + 1
            for i, e in enumerate(events):
                self.replay.apply(first + i, e, rows)
            try:
                self._write(rows, after)
            except Exception:
                self.behind = True  # the replay moved on; the store did not: catch up later
                raise
            return True
        except Exception as exc:  # a database problem must never stop trading
            self.failures += 1
            self.behind = True
            _log.warning("trade store %s: write for %s-%s failed (%d so far), will catch up from the journal: %s: %s",
                         self.store.safe_url, self.run, self.mode, self.failures, type(exc).__name__,
                         str(exc).splitlines()[0][:200] if str(exc) else "")
            return False

    def catch_up(self) -> bool:
        """Bring the store up to the journal now; True on success (never raises)."""
        return self.on_events([], -1) if self.behind else True

    def _catch_up(self) -> None:
        self.store.ping()  # cheap: a database still down costs no replay
        self.store.create_tables()
        done = self.store.projected_seq(self.run, self.mode)
        replay = PortfolioReplay(self._risk, self._portfolio)
        rows, skipped = Rows(), Rows()
        after = -1 if done is None else done
        for rec in self._records(-1):
            replay.apply(rec.seq, CODEC.decode(rec.kind, rec.payload), rows if rec.seq > after else skipped)
        self.replay = replay
        self._write(rows, after)
        self.behind = False

    def _write(self, rows: Rows, after: int) -> None:
        self.store.apply_rows(self.run, self.mode, rows, self.replay.positions(), after, self.replay.seq,
                              self.replay.initial_cash)
        self.writes += 1
