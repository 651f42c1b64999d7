"""What a run will do, worked out from the universe and the data before anything starts.

``make_plan(run, agents_cfg, sources)`` takes the ``run`` section and every source's loaded
BARS and returns a ``Plan``: per source its symbols, bars, span, measured bar spacing and the
features its data cannot give (close-only files); the symbols traded; the bars each agent
trains on and the bars traded; the retrain schedule.  It refuses, with a ``ConfigError``
naming the key, a universe that cannot run: a symbol no trade source holds, a training or
trading window without bars, bars spaced unlike ``run.bar``.  ``tinywindow config check``
prints it; ``tinywindow run`` makes the same plan first, so a run never starts on a universe
``config check`` would refuse.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinywindow.contracts import symbol_codes
from tinywindow.core.settings import config_error
from tinywindow.data.base import select
from tinywindow.data.features import filled_columns, flat_columns, unavailable_features
from tinywindow.engine.config import RunConfig, bar_seconds
from tinywindow.models.config import AgentConfig
from tinywindow.models.retrain import RetrainSchedule

DAY_S = 86_400


@dataclass(frozen=True)
class SourcePlan:
    name: str
    symbols: list[str]
    rows: int
    first: str | None
    last: str | None
    spacing_s: float | None  # median seconds between a symbol's consecutive bars
    unavailable: dict[str, str]  # feature -> why (close-only data)
    train_rows: int
    trade_bars: int
    role: list[str]  # "train", "trade"


@dataclass(frozen=True)
class Plan:
    mode: str
    name: str
    sources: list[SourcePlan]
    symbols: list[str]  # traded
    train_symbols: list[str]
    agents: list[str]
    budget: str
    train_rows: int
    trade_bars: int  # distinct bar times traded
    trade_first: str | None
    trade_last: str | None
    retrains: int  # retrains the schedule starts inside the trade window
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"run {self.name!r}, mode {self.mode}: agents {', '.join(self.agents)} (budget {self.budget})"]
        for s in self.sources:
            spacing = "n/a" if s.spacing_s is None else _span(s.spacing_s)
            out.append(f"  source {s.name} [{'+'.join(s.role) or 'unused'}]: {len(s.symbols)} symbols, {s.rows:,} bars "
                       f"{s.first} .. {s.last}, bar spacing {spacing}")
            for feat, why in sorted(s.unavailable.items()):
                out.append(f"    feature {feat} unavailable: {why}")
        out.append(f"  train: {self.train_rows:,} bars of {len(self.train_symbols)} symbols")
        out.append(f"  trade: {self.trade_bars:,} bar times of {len(self.symbols)} symbols "
                   f"({', '.join(self.symbols[:8])}{', ...' if len(self.symbols) > 8 else ''}) "
                   f"{self.trade_first} .. {self.trade_last}")
        out.append(f"  walk-forward retrains inside the trade window: {self.retrains}")
        out.extend(f"  note: {n}" for n in self.notes)
        return out

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _span(seconds: float) -> str:
    for unit, size in (("d", DAY_S), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _day(ts: int | None) -> str | None:
    return None if ts is None else str(np.datetime64(int(ts), "ns"))[:19].replace("T", " ").removesuffix(" 00:00:00")


def _symbols(table: pa.Table) -> list[str]:
    return sorted(pc.unique(table.column("symbol").cast(pa.string())).to_pylist()) if table.num_rows else []


def median_spacing_s(bars: pa.Table) -> float | None:
    """The median gap between a symbol's consecutive bars, over every symbol (seconds)."""
    if bars.num_rows < 2:
        return None
    codes = symbol_codes(bars)
    ts = bars.column("ts").cast(pa.int64()).to_numpy()
    order = np.lexsort((ts, codes))
    c, t = codes[order], ts[order]
    same = c[1:] == c[:-1]
    gaps = np.diff(t)[same]
    return float(np.median(gaps)) / 1e9 if gaps.size else None


def spacing_matches(bar: str, spacing_s: float) -> bool:
    """Daily bars: a median gap of 20 h to 4 days (weekends, holidays).  Otherwise within a
    factor of 1.5 of the bar."""
    want = bar_seconds(bar)
    if want == DAY_S:
        return 20 * 3600 <= spacing_s <= 4 * DAY_S
    return want / 1.5 <= spacing_s <= want * 1.5


def make_plan(
    run: RunConfig,
    agents: AgentConfig,
    sources: Mapping[str, pa.Table],
    mode: str | None = None,
    allow_empty: Collection[str] = (),
) -> Plan:
    """The plan of a run over ``sources`` (name -> BARS); ``ConfigError`` when it cannot run.
    ``allow_empty``: live feeds whose bars arrive while the run runs (no bars to trade yet is
    then not an error)."""
    mode = mode or run.mode
    names = list(sources)
    train_names = run.train_sources or names
    trade_names = run.trade_sources or names
    wanted = set(run.symbols) if run.symbols else None
    plans: list[SourcePlan] = []
    train_symbols: set[str] = set()
    trade_symbols: set[str] = set()
    trade_times: set[int] = set()
    train_rows = 0
    notes: list[str] = []
    for name in names:
        bars = sources[name]
        syms = _symbols(bars)
        spacing = median_spacing_s(bars)
        if spacing is not None and not spacing_matches(run.bar, spacing):
            if name in train_names or name in trade_names:
                raise config_error(
                    f"source {name!r}: its bars are {_span(spacing)} apart (median), but run.bar is {run.bar!r}; "
                    "set run.bar to the data's frequency or resample the data", key="run.bar")
            notes.append(f"source {name} ({_span(spacing)} bars) is loaded but neither trains nor trades: "
                         f"its bars are not {run.bar}")
        used = sorted(s for s in syms if wanted is None or s in wanted)
        filled = {**flat_columns(bars), **filled_columns(bars)}
        filled = {s: c for s, c in filled.items() if s in used}
        role: list[str] = []
        n_train = n_trade = 0
        if name in train_names and used:
            t = select(bars, used, run.train.start, run.train.end)
            n_train = t.num_rows
            train_rows += n_train
            train_symbols.update(_symbols(t))
            role.append("train")
        if name in trade_names and used:
            t = select(bars, used, run.trade.start, run.trade.end)
            here = set(t.column("ts").cast(pa.int64()).to_pylist())
            n_trade = len(here)
            trade_times |= here
            trade_symbols.update(_symbols(t))
            role.append("trade")
        ts = bars.column("ts").cast(pa.int64()) if bars.num_rows else None
        plans.append(SourcePlan(
            name=name, symbols=syms, rows=bars.num_rows,
            first=_day(None if ts is None else int(np.min(ts.to_numpy()))),
            last=_day(None if ts is None else int(np.max(ts.to_numpy()))),
            spacing_s=spacing, unavailable=unavailable_features(filled),
            train_rows=n_train, trade_bars=n_trade, role=role,
        ))
    if wanted is not None and not any(n in allow_empty for n in trade_names):
        have = {s for p in plans if p.name in trade_names for s in p.symbols}
        for i, s in enumerate(run.symbols):
            if s not in have:
                raise config_error(f"run.symbols.{i} {s!r} is in none of the trade sources "
                                   f"({', '.join(trade_names)})", key=f"run.symbols.{i}")
    if train_rows == 0:
        raise config_error(f"no bars to train on before {run.train.end} in {', '.join(train_names)}", key="run.train")
    live = [n for n in trade_names if n in allow_empty]
    if mode == "live" and not live:
        raise config_error("live mode trades a live feed: give run.trade_sources a source of kind 'grpc'",
                           key="run.trade_sources")
    if not trade_times and not live:
        raise config_error(f"no bars to trade in {run.trade.start} .. {run.trade.end} in {', '.join(trade_names)}",
                           key="run.trade")
    if live:
        notes.append(f"{', '.join(live)}: a live feed; its bars are traded as they arrive")
    times: list[int] = sorted(trade_times)
    if mode in ("paper", "live") and run.paper.bars is not None:
        times = times[-run.paper.bars:]
    if train_rows < 2 * agents.window + agents.valid_bars:
        notes.append(f"only {train_rows} training bars: training needs more than {2 * agents.window + agents.valid_bars} "
                     "(window, embargo and the validation fold); training will refuse")
    schedule = RetrainSchedule(agents)
    retrains = sum(1 for b in range(len(times)) if schedule.starts(b, len(times))) if mode == "backtest" else 0
    return Plan(
        mode=mode, name=run.name, sources=plans, symbols=sorted(trade_symbols), train_symbols=sorted(train_symbols),
        agents=list(run.agents), budget=run.budget, train_rows=train_rows, trade_bars=len(times),
        trade_first=_day(times[0]) if times else None, trade_last=_day(times[-1]) if times else None,
        retrains=retrains, notes=notes,
    )

