"""``tinywindow lookahead``: check the decision path for look-ahead on real data.

Runs features, every served agent's votes (the latest verified version of each agent in the
model registry) and the consensus signals on the full history and on histories cut at
``--cuts`` seeded random times, and lists every value at or before a cut that differs
(``tinywindow.backtest.lookahead``).  Exit code 0: none found; 1: look-ahead found.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tinywindow.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser("lookahead", help="check features, votes and signals for look-ahead (exit 1 if found)")
    p.add_argument("--data", default="sp500,nasdaq,goog", help="bundled datasets (comma-separated)")
    p.add_argument("--start", help="first bar (default: the data's first)")
    p.add_argument("--end", help="end of the history, exclusive (default: the data's last bar)")
    p.add_argument("--cuts", type=int, default=5, help="random cut points (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cut points (default 0)")
    p.add_argument("--agent", action="append", choices=["lstm", "transformer", "xgboost"],
                   help="agent whose served version votes (repeatable; default every agent with a version)")
    p.add_argument("--features-only", action="store_true", help="check the features only (no agents, no signals)")
    p.add_argument("--signal-bars", type=int, default=20, help="decision times compared before each cut (default 20)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default 1e-5, see the module doc)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (default 1e-6)")
    p.add_argument("--rows", type=int, default=20, help="differences listed in the table (default 20)")
    p.add_argument("--json", help="also write the full report as JSON to this file")
    p.set_defaults(func=cmd_lookahead)


def _predictors(args: argparse.Namespace, cfg: Config) -> list[Any]:
    from tinywindow.models.params import AGENTS
    from tinywindow.models.registry import ModelRegistry, registry_root

    if args.features_only:
        return []
    root = registry_root(cfg.agents, cfg.data_dir)
    if not args.agent and not root.is_dir():
        print(f"no model registry at {root}: checking features only (train agents or pass --agent)")
        return []
    from tinywindow.cli.keys import read_passphrase
    from tinywindow.crypto import open_keystore

    # model files are sealed: loading them needs the unlocked keystore (nothing is written)
    keystore = open_keystore(cfg.crypto, cfg.data_dir, read_passphrase(cfg))
    registry = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, keystore, read_only=True)
    out = []
    for agent in args.agent or list(AGENTS):
        if not args.agent and registry.latest(agent) is None:
            print(f"{agent}: no version in {registry.root}, skipped")
            continue
        predictor = registry.load(agent)  # verified; a missing or bad version is a ModelError
        print(f"{agent}: {predictor.version} (window {predictor.window})")
        out.append(predictor)
    return out


def cmd_lookahead(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.backtest import lookahead
    from tinywindow.data.base import select
    from tinywindow.data.sources.bundled import BundledSource

    datasets = [d.strip() for d in args.data.split(",") if d.strip()]
    bars = select(BundledSource("bundled", datasets).table(), None, args.start, args.end)
    predictors = _predictors(args, cfg)
    report = lookahead.check(
        bars, predictors, cuts=args.cuts, seed=args.seed, consensus=cfg.consensus,
        rtol=lookahead.RTOL if args.rtol is None else args.rtol,
        atol=lookahead.ATOL if args.atol is None else args.atol,
        signal_bars=args.signal_bars,
    )
    print(report.table(rows=args.rows))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1))
    return 0 if report.ok else 1
