"""The stage split and the single-process peer of ``bench/scale.py`` (kept apart so each file
stays readable): ``stage_split`` times each of ``actors.pipeline.run_trading``'s per-bar calls
and measures every table handed between actors; ``single_process`` runs the same bars, features
and models through the domain classes in one process (``tinywindow.backtest.decisions.trade``'s
loop, timed per stage)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

PERIOD_BARS = 63  # run_trading's default: agents vote on a quarter at a time
LEAD_DAYS = 180  # run_trading's features lead before a period
TABLES = ("FEATURES", "FEATURES+lead", "VOTES", "VOTES+lead", "SIGNALS", "BARS", "ORDERS", "OUTCOMES")


def now() -> float:
    return time.perf_counter()


def kill(*actors: Any) -> None:
    import ray

    for a in actors:
        ray.kill(a, no_restart=True)


def stage_split(cfg: Any, data: Any, agents: Any, sources: Sequence[str], win: tuple[str, str]) -> dict[str, Any]:
    """``run_trading``'s per-bar calls, each round trip timed, each handed table measured."""
    import pyarrow as pa
    import ray

    from actors import pipeline
    from actors.consensus import remote_consensus
    from actors.portfolio import remote_portfolio
    from tinywindow.config.placement import placement
    from tinywindow.data.base import select

    doc = cfg.model_dump(mode="json", exclude={"serving": {"token"}})
    names = list(agents.actors)
    consensus = remote_consensus(**placement(cfg.consensus.num_cpus, cfg.consensus.resources)).remote(
        doc, names, "split-consensus")
    portfolio = remote_portfolio(**placement(cfg.portfolio.num_cpus, cfg.portfolio.resources)).remote(doc, "split-portfolio")
    ray.get(portfolio.last_bar_ts.remote())
    bars = pipeline.bars_of(data, sources, win[0], win[1])
    by_ts = pipeline._group_by_ts(bars)
    times = sorted(by_ts)
    lead_ns = int(np.timedelta64(LEAD_DAYS, "D") / np.timedelta64(1, "ns"))
    feats = pipeline.features_of(data, sources, str(np.datetime64(win[0]) - np.timedelta64(LEAD_DAYS, "D")), win[1])
    ms: dict[str, float] = Counter()
    nbytes: dict[str, float] = Counter()
    seq = explained = 0
    t_all = now()
    for p0 in range(0, len(times), PERIOD_BARS):
        period = times[p0 : p0 + PERIOD_BARS]
        lo, hi = period[0], period[-1] + 1
        t0 = now()
        period_feats = select(feats, None, lo - lead_ns, hi)
        ref = ray.put(period_feats)
        votes = ray.get([agents.actors[a].predict.remote(ref) for a in names])
        ms["votes (agents predict, per period)"] += (now() - t0) * 1e3
        nbytes["FEATURES+lead"] += period_feats.nbytes
        in_period = int((period_feats.column("ts").cast(pa.int64()).to_numpy() >= lo).sum())
        nbytes["FEATURES"] += period_feats.nbytes * in_period / max(1, period_feats.num_rows)
        nbytes["VOTES+lead"] += sum(v.nbytes for v in votes)
        used = pa.concat_tables([v.filter(pa.array(v.column("ts").cast(pa.int64()).to_numpy() >= lo)) for v in votes])
        nbytes["VOTES"] += used.nbytes
        votes_by_ts = pipeline._group_by_ts(used)
        for ts in period:
            bar, v = by_ts[ts], votes_by_ts.get(ts)
            nbytes["BARS"] += bar.nbytes
            if v is None or not v.num_rows:  # run_trading: the bar alone
                t0 = now()
                ray.get(portfolio.on_bars.remote(bar))
                ms["portfolio (apply_signals)"] += (now() - t0) * 1e3
            else:
                t0 = now()
                signals = ray.get(consensus.on_votes.remote(v))
                t1 = now()
                orders = ray.get(portfolio.apply_signals.remote(signals, bar))
                t2 = now()
                ms["consensus (on_votes)"] += (t1 - t0) * 1e3
                ms["portfolio (apply_signals)"] += (t2 - t1) * 1e3
                nbytes["SIGNALS"] += signals.nbytes
                nbytes["ORDERS"] += orders.nbytes
                if orders.num_rows:
                    voters = sorted(set(v.column("agent").to_pylist()))
                    t0 = now()
                    ray.get([agents.actors[a].explain_and_record.remote(ref, orders) for a in voters])
                    ms["explain_and_record (bars with orders)"] += (now() - t0) * 1e3
                    explained += 1
            t0 = now()
            outcomes, seq = ray.get(portfolio.outcomes_since.remote(seq))
            if outcomes.num_rows:
                nbytes["OUTCOMES"] += outcomes.nbytes
                routed = pipeline._route(ray.get(consensus.learn.remote(outcomes)), names)
                ray.get([agents.actors[a].feedback.remote(t) for a, t in routed.items() if t.num_rows])
            ms["outcomes -> learn -> feedback"] += (now() - t0) * 1e3
            t0 = now()
            ray.get(portfolio.snapshot.remote())
            ms["snapshot (equity)"] += (now() - t0) * 1e3
    total = (now() - t_all) * 1e3
    kill(consensus, portfolio)
    n = len(times)
    symbols = len(set(bars.column("symbol").cast(pa.string()).to_pylist()))
    return {"bars": n, "symbols": symbols, "ms_per_bar": {k: v / n for k, v in ms.items()},
            "total_ms_per_bar": total / n, "bytes_per_bar": {k: nbytes[k] / n for k in TABLES},
            "bars_with_orders": explained}


# --------------------------------------------------------------------------- the peer


def single_process(cfg: Any, passphrase: str, data: Any, agents: Sequence[str], sources: Sequence[str],
                   win: tuple[str, str]) -> dict[str, Any]:
    """The same bars, features and models through the domain classes in this process."""
    import pyarrow as pa

    from actors import pipeline
    from tinywindow.consensus.state import ConsensusBook
    from tinywindow.crypto import open_keystore
    from tinywindow.data.base import select
    from tinywindow.execution.engine import TradingEngine
    from tinywindow.execution.tables import bar_rows, outcomes_table, signal_rows
    from tinywindow.models.registry import ModelRegistry

    registry = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir,
                                         open_keystore(cfg.crypto, cfg.data_dir, passphrase))
    preds = {a: registry.load(a) for a in agents}
    bars = pipeline.bars_of(data, sources, win[0], win[1])
    by_ts = pipeline._group_by_ts(bars)
    times = sorted(by_ts)
    lead_ns = int(np.timedelta64(LEAD_DAYS, "D") / np.timedelta64(1, "ns"))
    feats = pipeline.features_of(data, sources, str(np.datetime64(win[0]) - np.timedelta64(LEAD_DAYS, "D")), win[1])
    book = ConsensusBook(cfg.consensus, list(agents))
    engine = TradingEngine(cfg.risk, cfg.portfolio)
    ms: dict[str, float] = Counter()
    seq = orders = 0
    first = select(feats, None, times[0] - lead_ns, times[min(len(times), PERIOD_BARS) - 1] + 1)
    for a in agents:  # warm-up, untimed: the actors' predictors are warm by the time they are timed
        preds[a].predict(first)
    t_all = now()
    for p0 in range(0, len(times), PERIOD_BARS):
        period = times[p0 : p0 + PERIOD_BARS]
        lo, hi = period[0], period[-1] + 1
        t0 = now()
        period_feats = select(feats, None, lo - lead_ns, hi)
        votes = [preds[a].predict(period_feats) for a in agents]
        votes_by_ts = pipeline._group_by_ts(pa.concat_tables(
            [v.filter(pa.array(v.column("ts").cast(pa.int64()).to_numpy() >= lo)) for v in votes]))
        ms["votes (agents predict, per period)"] += (now() - t0) * 1e3
        for ts in period:
            v = votes_by_ts.get(ts)
            t0 = now()
            sig = None
            if v is not None and v.num_rows:
                book.submit_votes(v)
                sig = book.decide(ts)
            t1 = now()
            engine.on_bars(bar_rows(by_ts[ts], "bench"))
            events = engine.apply_signals(signal_rows(sig, "bench")) if sig is not None else []
            t2 = now()
            orders += sum(1 for e in events if type(e).__name__ == "OrderSubmitted")
            realized = engine.outcomes_since(seq)
            if realized:
                seq = max(o.seq for o in realized) + 1
                book.learn(outcomes_table(realized))
            t3 = now()
            ms["consensus (on_votes)"] += (t1 - t0) * 1e3
            ms["portfolio (apply_signals)"] += (t2 - t1) * 1e3
            ms["outcomes -> learn -> feedback"] += (t3 - t2) * 1e3
    secs = now() - t_all
    n = len(times)
    return {"bars": n, "seconds": secs, "orders": orders, "ms_per_bar": {k: v / n for k, v in ms.items()}}


# --------------------------------------------------------------------------- autoscale
