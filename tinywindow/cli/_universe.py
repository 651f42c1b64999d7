"""``tinywindow config check FILE``: validate a universe and print what a run of it will do,
without starting Ray.  Every source is read in this process exactly as its DataSourceActor
would read it (so a bad file fails here, naming file, row and column); a gRPC source is not
contacted (said so).  The plan is ``tinywindow.engine.plan.make_plan``, the same one
``tinywindow run`` makes before it starts anything."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinywindow.config import Config, load


def check(path: str | Path, overrides: Sequence[str] = (), mode: str | None = None) -> tuple[Config, Any, list[str]]:
    """(config, plan, lines to print) for the universe in ``path``; typed errors as a run's."""
    import pyarrow as pa

    from tinywindow.contracts import BARS
    from tinywindow.data.sources import build_source
    from tinywindow.engine.plan import make_plan

    cfg = load(path, overrides=list(overrides))
    mode = mode or cfg.run.mode
    bars: dict[str, pa.Table] = {}
    skipped: list[str] = []
    for src in cfg.data.sources:
        if src.kind == "grpc":
            bars[src.name] = BARS.empty_table()
            skipped.append(f"source {src.name}: a gRPC feed at {src.address}, not contacted by a check")
            continue
        source = build_source(src, cfg.data.on_bad_rows)
        bars[src.name] = source.fetch()
        q: Any = getattr(source, "quarantined", None)
        if q is not None and q.count:
            skipped.append(f"source {src.name}: {q.count} bad rows quarantined ({dict(q.reasons)})")
    plan = make_plan(cfg.run, cfg.agents, bars, mode, allow_empty={s.name for s in cfg.data.sources if s.kind == "grpc"})
    lines = [f"{path}: valid", *plan.lines(), *(f"  note: {s}" for s in skipped)]
    r, p = cfg.risk, cfg.portfolio
    lines.append(f"  risk: {', '.join(f'{k}={v}' for k, v in r.model_dump().items() if not isinstance(v, dict))}")
    lines.append(f"  costs: commission {p.commission_bps:g} bps (min ${p.commission_min_usd:g}, "
                 f"${p.commission_per_share_usd:g}/share), slippage {p.slippage_bps:g} bps; cash ${p.initial_cash_usd:,.0f}; "
                 f"no decision -> {p.no_decision}")
    c = p.construction
    if c.method == "none":
        lines.append("  sizing: each symbol alone (volatility-targeted +-1 exposure; portfolio.construction.method none)")
    else:
        lines.append(f"  sizing: portfolio construction {c.method}, {'long-only' if c.long_only else 'long-short'}, "
                     f"gross <= {c.gross:g}, net {c.net_min:g}..{c.net_max:g}, max weight {c.max_weight:g}, "
                     f"turnover penalty {c.turnover_penalty:g}, vol target {c.vol_target}, covariance over "
                     f"{c.lookback} bars (Ledoit-Wolf)")
    lines.append(f"  consensus: {cfg.consensus.mode} mode" + (" (weighted z-score of the agents' scores)"
                 if cfg.consensus.mode == "score" else "") + f"; agents cross-sectional: {cfg.agents.cross_sectional}")
    from tinywindow.engine.config import periods_per_year

    if c.method != "none" and periods_per_year(cfg.run.bar) != c.annualization:
        lines.append(f"  note: portfolio.construction.annualization is {c.annualization} but {cfg.run.bar} bars make "
                     f"{periods_per_year(cfg.run.bar)} a year: the vol target is annualised with the former")
    if periods_per_year(cfg.run.bar) != r.periods_per_year:
        lines.append(f"  note: risk.periods_per_year is {r.periods_per_year} but {cfg.run.bar} bars make "
                     f"{periods_per_year(cfg.run.bar)} a year: volatility targets are annualised with the former")
    lines.append(f"  broker: {cfg.run.broker}; state under {cfg.data_dir}; summary {cfg.path('summary.json')}")
    a = cfg.agents
    if mode == "backtest" and a.retrain_every_bars:
        lines.append(f"  retrains: every {a.retrain_every_bars} bars, decided {a.retrain_lag_bars} bars later by the "
                     f"gate ({a.promotion.metric} margin {a.promotion.margin:g} over {a.promotion.eval_bars} bars)")
    if mode != "backtest":
        s = cfg.run.paper
        lines.append(f"  stream: {'as fast as the graph takes bars' if s.speed == 0 else f'{s.speed:g} market s per s'}, "
                     f"at most {s.max_inflight} bars in flight" + (f", the last {s.bars} bars" if s.bars else ""))
    from tinywindow.config.placement import requested

    asks = requested(cfg)
    lines.append("  placement: " + ("; ".join(f"{k} {v}" for k, v in asks.items()) + " (nodes offering them; "
                 "a local run declares them itself)" if asks else "by CPU alone (no custom resources asked for)"))
    return cfg, plan, lines
