"""``tinywindow agents train|list|evaluate``: the trading agents from the command line.

``train`` trains agents on bundled real data and publishes signed versions (``--demo``: all
three with the demo budget and the one-fold walk-forward report); ``list`` shows every
version with its verification status; ``evaluate`` runs a walk-forward evaluation next to
buy-and-hold without publishing anything.  Signing needs the keystore passphrase (env var
``crypto.passphrase_env`` or a prompt); listing needs only the public keys.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tinywindow.config import Config

BUDGETS = ("config", "demo", "test")


def register(sub: Any) -> None:
    p = sub.add_parser("agents", help="trading agents: train, list versions, walk-forward evaluate")
    cmds = p.add_subparsers(dest="agents_command", metavar="ACTION")
    cmds.required = True

    tr = cmds.add_parser("train", help="train agents on bundled data and publish signed versions")
    tr.add_argument("--agent", action="append", choices=["lstm", "transformer", "xgboost"],
                    help="agent to train (repeatable; default all three)")
    tr.add_argument("--demo", action="store_true",
                    help="the demo run: all agents, demo budget, one walk-forward fold (< 3 min on 2 cores)")
    tr.add_argument("--budget", choices=BUDGETS, default="config",
                    help="training budget: from the config (default), demo, or test (tiny)")
    tr.add_argument("--data", default="sp500,nasdaq,goog", help="bundled datasets (comma-separated)")
    tr.add_argument("--threads", type=int, default=1,
                    help="torch / XGBoost threads (default 1: fastest for these small models on a busy 2-core box)")
    tr.set_defaults(func=cmd_train)

    ls = cmds.add_parser("list", help="every stored version, verified, with its validation metrics")
    ls.add_argument("--agent", action="append", choices=["lstm", "transformer", "xgboost"])
    ls.set_defaults(func=cmd_list)

    ev = cmds.add_parser("evaluate", help="walk-forward out-of-sample evaluation next to buy-and-hold")
    ev.add_argument("--agent", action="append", choices=["lstm", "transformer", "xgboost"])
    ev.add_argument("--folds", type=int, default=1, help="consecutive validation folds (default 1)")
    ev.add_argument("--first-train-end", default="2011-01-01", help="end of the first training window")
    ev.add_argument("--budget", choices=BUDGETS, default="demo", help="training budget (default demo)")
    ev.add_argument("--data", default="sp500,nasdaq,goog", help="bundled datasets (comma-separated)")
    ev.add_argument("--threads", type=int, default=1)
    ev.add_argument("--json", help="also write the full report as JSON to this file")
    ev.add_argument("--no-symbols", action="store_true", help="print only the equal-weight book rows")
    ev.set_defaults(func=cmd_evaluate)


def _budget(name: str) -> dict[str, dict[str, Any]]:
    from tinywindow.models.params import DEMO_BUDGET, TEST_BUDGET

    return {"config": {}, "demo": DEMO_BUDGET, "test": TEST_BUDGET}[name]


def _features(spec: str) -> Any:
    from actors.training.train import bundled_features

    return bundled_features([d.strip() for d in spec.split(",") if d.strip()])


def _signing_registry(cfg: Config) -> Any:
    from tinywindow.cli.keys import read_passphrase
    from tinywindow.crypto import open_keystore
    from tinywindow.models.registry import ModelRegistry

    return ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, open_keystore(cfg.crypto, cfg.data_dir, read_passphrase(cfg)))


def cmd_train(args: argparse.Namespace, cfg: Config) -> int:
    from actors.runtime import connect
    from actors.training.train import train_agent, train_demo
    from tinywindow.models.params import AGENTS

    agents = args.agent or list(AGENTS)
    registry = _signing_registry(cfg)
    t0 = time.perf_counter()
    connect(cfg)
    features = _features(args.data)
    if args.demo:
        result = train_demo(cfg, registry, features=features, agents=agents, threads=args.threads, log=print)
        print(result.report.markdown())
        print("\nversions: " + ", ".join(f"{a} {v}" for a, v in result.versions.items()))
        print(f"trained in {result.seconds:.1f}s ({', '.join(f'{a} {s}s' for a, s in result.timings.items())})")
        return 0
    budget = _budget(args.budget)
    for agent in agents:
        t1 = time.perf_counter()
        res = train_agent(agent, features, cfg, registry=registry, overrides=budget.get(agent), threads=args.threads)
        val = res.metadata["metrics"]["validation"]["ALL"]
        bh = res.metadata["metrics"]["buy_and_hold"]["ALL"]
        print(
            f"{agent} {res.version}: validation {res.metadata['data']['validation']['valid_start']}.."
            f"{res.metadata['data']['validation']['valid_end']} Sharpe {val['sharpe']} hit {val['hit_rate']} "
            f"(buy-and-hold Sharpe {bh['sharpe']}) in {time.perf_counter() - t1:.1f}s"
        )
    print(f"done in {time.perf_counter() - t0:.1f}s; registry {registry.root}")
    return 0


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli._tables import table
    from tinywindow.models.params import AGENTS
    from tinywindow.models.registry import ModelRegistry

    registry = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, read_only=True)
    rows: list[list[Any]] = []
    for agent in args.agent or list(AGENTS):
        for info in registry.versions(agent):
            m = info.metadata
            val = m.get("metrics", {}).get("validation", {}).get("ALL", {})
            train = m.get("data", {}).get("train", {})
            rows.append([
                agent, info.version, info.status if info.ok else info.status[:60], m.get("created", "")[:19],
                f"{train.get('start', '')[:10]}..{train.get('end', '')[:10]}" if train else "",
                val.get("sharpe"), val.get("hit_rate"), m.get("parent"),
            ])
    if not rows:
        print(f"no model versions in {registry.root} (run 'tinywindow agents train')")
        return 0
    print(table(rows, ["agent", "version", "status", "created", "trained on", "val Sharpe", "val hit", "parent"]))
    return 0 if all(r[2] == "ok" for r in rows) else 1


def cmd_evaluate(args: argparse.Namespace, cfg: Config) -> int:
    from actors.runtime import connect
    from actors.training.train import walk_forward
    from tinywindow.models.params import AGENTS

    t0 = time.perf_counter()
    connect(cfg)
    report = walk_forward(
        _features(args.data), cfg, agents=args.agent or list(AGENTS), folds=args.folds,
        first_train_end=args.first_train_end, budget=_budget(args.budget), threads=args.threads, log=print,
    )
    print(report.markdown(symbols=not args.no_symbols))
    if args.json:
        Path(args.json).write_text(json.dumps({**report.to_json(), "seconds": round(time.perf_counter() - t0, 1)}, indent=1))
    print(f"\nwalk-forward finished in {time.perf_counter() - t0:.1f}s (cost {cfg.agents.cost} per unit traded)")
    return 0
