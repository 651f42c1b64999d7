"""``tinywindow agents train|list|evaluate``: the trading agents from the command line.

``train`` trains agents on bundled real data and publishes signed versions (``--demo``: all
three with the demo budget and the one-fold walk-forward report); ``list`` shows every
version with its verification status and, for a retrain, the promotion gate's decision with
both scores; ``evaluate`` scores each agent's stored version and
their consensus after the version's training cut next to buy-and-hold, with the deflated
Sharpe ratio (``--walk-forward``: retrain on folds instead), without publishing anything.  Signing needs the keystore passphrase (env var
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

    ev = cmds.add_parser(
        "evaluate",
        help="out-of-sample Sharpe, drawdown, turnover, hit rate and deflated Sharpe of each stored agent "
             "and their consensus next to buy-and-hold (--walk-forward: retrain and score folds instead)",
    )
    ev.add_argument("--agent", action="append", choices=["lstm", "transformer", "xgboost"])
    ev.add_argument("--version", action="append", default=[], metavar="AGENT=VERSION",
                    help="evaluate this version of an agent instead of its latest (repeatable)")
    ev.add_argument("--no-decision", choices=["flat", "keep"], default=None,
                    help="what a consensus 'no decision' does (default: portfolio.no_decision)")
    ev.add_argument("--walk-forward", action="store_true",
                    help="retrain every agent on walk-forward folds instead of evaluating stored versions")
    ev.add_argument("--folds", type=int, default=1, help="(--walk-forward) consecutive validation folds (default 1)")
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
    from tinywindow.cli._storage import state_root
    from tinywindow.models.params import AGENTS

    cfg = state_root(cfg, "tinywindow agents train")  # refuses a job's throw-away working directory
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
            # a retrain's signed gate result: its own and the champion's score on the gate window
            gate = m.get("metrics", {}).get("gate") or {}
            decision = m.get("promotion") or {}
            metric = decision.get("metric", "sharpe")
            champ = gate.get("champion") or {}
            rows.append([
                agent, info.version, info.status if info.ok else info.status[:60], m.get("created", "")[:19],
                f"{train.get('start', '')[:10]}..{train.get('end', '')[:10]}" if train else "",
                val.get("sharpe"), val.get("hit_rate"), m.get("parent"),
                ("promoted" if decision["promote"] else "rejected") if "promote" in decision else "trained",
                f"{metric} {_num((gate.get('challenger') or {}).get(metric))} vs {champ.get('version')} "
                f"{_num(champ.get(metric))}" if gate else "",
            ])
    if not rows:
        print(f"no model versions in {registry.root} (run 'tinywindow agents train')")
        return 0
    print(table(rows, ["agent", "version", "status", "created", "trained on", "val Sharpe", "val hit", "parent",
                       "gate", "gate scores (challenger vs champion)"]))
    return 0 if all(r[2] == "ok" for r in rows) else 1


def _num(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "n/a"


def cmd_evaluate(args: argparse.Namespace, cfg: Config) -> int:
    if not args.walk_forward:
        return _evaluate_versions(args, cfg)
    from actors.runtime import connect
    from actors.training.train import walk_forward
    from tinywindow.models.params import AGENTS, tuned_path
    from tinywindow.models.registry import registry_root

    t0 = time.perf_counter()
    agents = args.agent or list(AGENTS)
    keys = None
    if any(tuned_path(registry_root(cfg.agents, cfg.data_dir), a).exists() for a in agents):
        from tinywindow.cli.keys import read_passphrase
        from tinywindow.crypto import open_keystore

        keys = open_keystore(cfg.crypto, cfg.data_dir, read_passphrase(cfg))  # the sealed tuned files
    connect(cfg)
    report = walk_forward(
        _features(args.data), cfg, agents=agents, folds=args.folds,
        first_train_end=args.first_train_end, budget=_budget(args.budget), threads=args.threads, log=print,
        keys=keys,
    )
    print(report.markdown(symbols=not args.no_symbols))
    if args.json:
        Path(args.json).write_text(json.dumps({**report.to_json(), "seconds": round(time.perf_counter() - t0, 1)}, indent=1))
    print(f"\nwalk-forward finished in {time.perf_counter() - t0:.1f}s (cost {cfg.agents.cost} per unit traded)")
    return 0


def _evaluate_versions(args: argparse.Namespace, cfg: Config) -> int:
    """Every agent's stored version (latest, or ``--version``) scored after its training
    cut, with the consensus and buy-and-hold (``tinywindow.backtest.evaluate``)."""
    from actors.training.train import embargo
    from tinywindow.backtest.evaluate import count_trials, evaluate, train_end
    from tinywindow.cli.keys import read_passphrase
    from tinywindow.crypto import open_keystore
    from tinywindow.errors import ConfigError
    from tinywindow.models.params import AGENTS
    from tinywindow.models.registry import ModelRegistry

    # model files are sealed: loading them needs the unlocked keystore (nothing is published)
    keystore = open_keystore(cfg.crypto, cfg.data_dir, read_passphrase(cfg))
    registry = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, keystore, read_only=True)
    pinned = dict(v.split("=", 1) for v in args.version if "=" in v)
    if len(pinned) != len(args.version):
        raise ConfigError("--version takes AGENT=VERSION, e.g. --version xgboost=v0003", key="version")
    predictors, ends, metadata = {}, {}, []
    for agent in args.agent or list(AGENTS):
        infos = [i for i in registry.versions(agent) if i.ok]
        metadata += [i.metadata for i in infos]
        if not infos and agent not in pinned:
            print(f"{agent}: no verified version, left out")
            continue
        predictors[agent] = registry.load(agent, pinned.get(agent))
        ends[agent] = train_end(registry.metadata(agent, predictors[agent].version))
    from tinywindow.core.storage import local_tune_dir

    tune_dir = local_tune_dir(cfg.agents.tune_dir, cfg.data_dir)
    if tune_dir is None:
        print(f"note: Tune results at {cfg.agents.tune_dir} (object storage) are not counted as trials "
              "in the deflated Sharpe; only the stored versions are")
    no_decision = args.no_decision or getattr(cfg.portfolio, "no_decision", "flat")
    result = evaluate(
        _features(args.data), predictors, ends, cfg.consensus, cfg.agents.cost, count_trials(metadata, tune_dir),
        embargo_bars=embargo(cfg.agents), no_decision=no_decision,
    )
    print(result.markdown())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1))
    return 0
