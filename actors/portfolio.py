"""``PortfolioActor``: risk, broker, journal and checkpoints around one ``TradingEngine``.

* ``on_bars(bars)``: market data (BARS).  Open orders fill at these bars' opens through the
  broker (PaperBroker unless another ``Broker`` is given), the book is marked at the
  closes, the drawdown moves the trading state; returns the FILLS.
* ``apply_signals(signals, bars=None)``: SIGNALS -> risk-checked ORDERS.  ``bars`` are the
  reference prices; any newer than what the actor has seen are processed as ``on_bars``
  first, so earlier orders fill before new decisions are made.  A signal for a (symbol, ts)
  already decided is ignored: order ids are pure functions of the signal, and a replayed
  signal cannot trade twice.
* ``outcomes_since(seq)``: realized outcomes (OUTCOMES) with ``seq`` >= the given one, and the
  next seq to ask for: the learning flow back to the consensus and the agents.
* ``halt()``, ``resume()``, ``snapshot()``, ``risk_events(since)``, ``checkpoint()``,
  ``recovery()``, ``verify_journal()``.

Every event (order, fill, expiry, risk denial, state change, mark, outcome) is journaled,
signed, before the call returns and before an order reaches the broker; the state is
checkpointed every ``portfolio.checkpoint_every`` records.  ``__init__`` is the only
recovery path: checkpoint + journal replay, then open orders go back to the broker
(idempotent by order id).  A plain class; ``remote_portfolio`` applies ``ray.remote``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from actors import metrics as engine_metrics
from actors.settings import SettingsParticipant, SettingsStage
from tinywindow.config import Config, build
from tinywindow.core.codec import CODEC
from tinywindow.core.log import get_logger
from tinywindow.core.money import dec_str
from tinywindow.crypto.keystore import KeyStore
from tinywindow.durability.recovery import Recovery, open_durable
from tinywindow.execution.brokers import Broker
from tinywindow.execution.engine import TradingEngine
from tinywindow.execution.events import RiskSettingsChanged
from tinywindow.execution.tables import (
    bar_rows,
    fills_table,
    orders_table,
    outcomes_table,
    signal_rows,
)


class PortfolioActor(SettingsParticipant):
    """One account's trading state, durable (see the module docstring).  Receives the root
    config at this boundary and hands each part its own section."""

    SETTINGS_EVENT = RiskSettingsChanged  # what ``settings_changes`` reads from the journal

    def __init__(
        self,
        cfg: Config | dict[str, Any],
        name: str = "portfolio",
        *,
        passphrase: str | None = None,
        keystore: KeyStore | None = None,
        broker: Broker | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.cfg = cfg if isinstance(cfg, Config) else build(cfg)
        self.name = name
        self.clock = clock
        self.log = get_logger(f"portfolio.{name}")
        self.engine = TradingEngine(self.cfg.risk, self.cfg.portfolio, broker)
        self.durable, self._recovery = open_durable(
            self.cfg.crypto, self.cfg.data_dir, name, self.engine, self.cfg.portfolio.checkpoint_every,
            passphrase=passphrase, keystore=keystore, clock=clock,
        )
        self.store_writer = self._store_writer()
        self.engine.on_commit = self._commit
        self.engine.resubmit_open_orders()
        self._step_seq = 0  # ``step``'s outcome cursor
        self._settings = SettingsStage("risk", self.engine, clock)

    def _store_writer(self) -> Any:
        """The SQL trade store's live projection of this journal (``storage.sql_store``), or None.
        A store that cannot be opened is logged; the journal stays the record."""
        if not self.cfg.storage.sql_store:
            return None
        from tinywindow.records.sql import StoreWriter, TradeStore, default_url

        run, _, mode = self.name.removesuffix("-portfolio").rpartition("-")
        if not run or self.name == run:
            run, mode = self.name, "run"
        secret = self.cfg.storage.sql_url
        url = secret.get_secret_value() if secret is not None else default_url(self.cfg.data_dir)
        try:
            store = TradeStore(url, create=False)
        except Exception as exc:  # a bad URL must not stop trading either
            self.log.warning("trade store disabled: %s", exc)
            return None
        return StoreWriter(store, run, mode, lambda after: self.durable.journal.records(after=after),
                           risk=self.cfg.risk, portfolio=self.cfg.portfolio)

    def _commit(self, events: list[Any]) -> None:
        """Journal the call's events (the record), then project them into the SQL store."""
        self.durable.commit(events)
        if self.store_writer is not None:
            self.store_writer.on_events(events, self.durable.journal.head()[0])

    # ------------------------------------------------------------------ flows
    def on_bars(self, bars: pa.Table) -> pa.Table:
        """Fill open orders at these bars' opens, mark at their closes; returns FILLS."""
        events = self.engine.on_bars(bar_rows(bars, f"{self.name}.on_bars"))
        engine_metrics.portfolio_committed(self.cfg.run.name, self.name, self.engine, events)
        return fills_table(events)

    def apply_signals(self, signals: pa.Table, bars: pa.Table | None = None) -> pa.Table:
        """Risk-checked ORDERS for new signals (``bars``: reference prices, see module doc)."""
        rows = signal_rows(signals, f"{self.name}.apply_signals")  # validate before any effect
        if bars is not None:
            self.on_bars(bars)
        events = self.engine.apply_signals(rows)
        engine_metrics.portfolio_committed(self.cfg.run.name, self.name, self.engine, events)
        return orders_table(events)

    def step(self, signals: pa.Table, bars: pa.Table, prev_ts: int | None = None) -> tuple[pa.Table, pa.Table, str]:
        """The actor graph's call for one bar time: ``apply_signals(signals, bars)``, then the
        outcomes realized since the previous ``step`` and the equity after it (exact string).
        Called with ``num_returns=3`` so the outcomes go on to the consensus by reference.
        After a restart the first step re-sends the outcomes still in memory; the consensus
        learns each outcome once.  ``prev_ts``: the bar the graph sent before this one; a step
        whose predecessor this account has not processed (it failed upstream) is refused, so
        no bar is skipped and a resumed run starts at the failed one.

        A step for a bar this account has processed already is Ray's retry of a call whose
        first attempt was journaled before the actor died and whose reply was lost: nothing is
        applied twice (signals and bars de-duplicate), and the orders come back as the first
        attempt made them (from the journal); the equity is the account's now, which is the
        equity after that bar (the graph's next step waits for this one's outcomes)."""
        last = self.last_bar_ts()
        this = int(pc.max(bars.column("ts").cast(pa.int64())).as_py()) if bars.num_rows else None
        retried = this is not None and last is not None and this <= last
        if prev_ts is not None and last != prev_ts and not retried:
            from tinywindow.errors import DataError

            raise DataError(f"{self.name}.step: the previous bar ({prev_ts}) was not processed (last is {last}): "
                            "an earlier stage failed; stopping here so that no bar is skipped", source=self.name)
        orders = self.apply_signals(signals, bars)
        if retried:
            assert this is not None
            orders = self._orders_at(this)
        outcomes, self._step_seq = self.outcomes_since(self._step_seq)
        return orders, outcomes, dec_str(self.engine.portfolio.equity())

    def last_bar_ts(self) -> int | None:
        """The newest bar time this account has processed (None: none yet): where a resumed
        run picks up."""
        seen = self.engine.last_bar_ts
        return max(seen.values()) if seen else None

    def orders(self) -> list[dict[str, Any]]:
        """Every order this account submitted, from its journal, oldest first: the ledger
        ``tinywindow run`` digests."""
        from tinywindow.execution.events import OrderSubmitted

        out = []
        for rec in self.durable.journal.records():
            event = CODEC.decode(rec.kind, rec.payload)
            if isinstance(event, OrderSubmitted):
                out.append(CODEC.payload(event))
        return out

    def _orders_at(self, ts: int) -> pa.Table:
        """ORDERS this account decided at bar time ``ts``, from its journal."""
        from tinywindow.execution.events import OrderSubmitted

        events = [CODEC.decode(rec.kind, rec.payload) for rec in self.durable.journal.records()
                  if rec.kind == OrderSubmitted.KIND]
        return orders_table(e for e in events if isinstance(e, OrderSubmitted) and e.order.ts == ts)

    def outcomes_since(self, seq: int = 0) -> tuple[pa.Table, int]:
        """OUTCOMES with seq >= ``seq`` (still in memory) and the next seq to ask for."""
        got = self.engine.outcomes_since(seq)
        return outcomes_table(got), self.engine.outcome_seq

    # ------------------------------------------------------------------ operator
    def halt(self, reason: str = "operator halt") -> str:
        self.engine.halt(self.clock(), reason)
        return self.engine.state.value

    def resume(self, reason: str = "operator resume") -> str:
        self.engine.resume(self.clock(), reason)
        return self.engine.state.value

    def checkpoint(self) -> int:
        return self.durable.checkpoint()

    # ------------------------------------------------------------------ views
    def weights(self) -> pa.Table:
        """The WEIGHTS portfolio construction chose at the latest bar it traded (empty when
        ``portfolio.construction.method`` is none)."""
        from tinywindow.execution.tables import weights_table

        return weights_table(self.engine.last_weights)

    def snapshot(self) -> dict[str, Any]:
        """Cash, equity, positions (qty, average price), P&L, state: strings are exact."""
        p = self.engine.portfolio
        return {
            "state": self.engine.state.value,
            "cash": dec_str(p.cash),
            "equity": dec_str(p.equity()),
            "realized_pnl": dec_str(p.realized_pnl),
            "unrealized_pnl": dec_str(p.unrealized_pnl()),
            "fees": dec_str(p.fees),
            "positions": {s: {"qty": dec_str(pos.qty), "avg_price": dec_str(pos.avg_price)}
                          for s, pos in sorted(p.positions.items())},
            "open_orders": sorted(self.engine.open_orders),
            "closed_trades": len(p.trade_pnls),
            "peak_equity": dec_str(self.engine.peak),
        }

    def risk_events(self, since: int = 0) -> list[dict[str, Any]]:
        return [CODEC.payload(e) for e in list(self.engine.risk_events)[since:]]

    def recovery(self) -> dict[str, int]:
        r: Recovery = self._recovery
        return {"checkpoint_seq": r.checkpoint_seq, "replayed": r.replayed, "journal_seq": r.journal_seq}

    def verify_journal(self) -> dict[str, Any]:
        report = self.durable.journal.verify()
        return {"ok": bool(report.ok), "report": report.describe()}

    def close(self) -> None:
        """Release the journal (in-process use; a dead actor's lock goes with its process)."""
        self.durable.close()


def remote_portfolio(num_cpus: float = 0.05, **options: Any) -> Any:
    """``PortfolioActor`` as a Ray actor class: small CPU, restarted on a crash, calls retried
    (they are idempotent: the recovery path replays the journal, signals de-duplicate)."""
    import ray

    opts = {"num_cpus": num_cpus, "max_restarts": -1, "max_task_retries": 3, **options}
    return ray.remote(PortfolioActor).options(**opts)
