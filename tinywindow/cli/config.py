"""``tinywindow config``: configuration files and a running engine's settings.

* ``config set KEY VALUE [KEY VALUE ...] [--name GRAPH] [--namespace NS]``: change the risk
  and consensus settings of an engine running on a ``ray start`` cluster (``ray.address`` or
  ``RAY_ADDRESS``), atomically: every value is validated first, then the portfolio and the
  consensus both take the change between two bars, or neither does
  (``actors.graph.GraphActor.set_config``); each journals it, so a restarted run keeps it.
  VALUE is parsed as ``-s KEY=VALUE`` parses it.  Only ``risk.*`` and ``consensus.*`` change
  at runtime; everything else is read when the run starts.
* ``config check FILE [--mode M] [--json]``: validate a universe file (with ``-s`` overrides
  on top) and print what ``tinywindow run`` would do with it, without starting Ray: every
  source is read as its DataSourceActor would read it, so a bad file fails here with the file,
  row and column named (``tinywindow.cli._universe``).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from tinywindow.config import Config, parse_override
from tinywindow.errors import ConfigError, TinyWindowError, TransientError


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="check a config file; change a running engine's risk/consensus settings")
    subs = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    subs.required = True
    _register_set(subs)
    _register_check(subs)


def _register_check(subs: Any) -> None:
    c = subs.add_parser("check", help="validate a universe file and print what a run of it will do (no Ray)")
    c.add_argument("file", help="the universe: a YAML or JSON config file")
    c.add_argument("--mode", choices=["backtest", "paper", "live"], help="default: run.mode of the file")
    c.add_argument("--json", action="store_true", help="print the plan as JSON")
    c.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    """``cfg`` (from ``-c``, env and ``-s``) is not used: the FILE is the universe checked,
    with the same ``-s`` overrides and ``TW_*`` environment on top."""
    from tinywindow.cli._universe import check

    _, plan, lines = check(args.file, args.set, args.mode)
    if args.json:
        print(json.dumps(plan.as_dict(), indent=2, default=str))
    else:
        print("\n".join(lines))
    return 0


def _register_set(subs: Any) -> None:
    s = subs.add_parser(
        "set", help="change a running engine's risk.* / consensus.* settings (all actors or none, journaled)",
        description="Change the risk and consensus settings of an engine running on a `ray start` cluster "
                    "(ray.address or RAY_ADDRESS): validated first, applied by the portfolio and the consensus "
                    "together from the next bar, journaled.  Several KEY VALUE pairs change together.")
    s.add_argument("pairs", nargs="+", metavar="KEY VALUE", help="e.g. risk.max_position 0.1")
    s.add_argument("--name", help="the engine's graph (<run>-<mode>-graph); default: the only one running")
    s.add_argument("--namespace", help="its namespace (default: any)")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_set)


def changes_from(pairs: list[str]) -> dict[str, Any]:
    """``KEY VALUE`` pairs as dotted changes, each VALUE parsed as ``-s KEY=VALUE`` parses it."""
    if len(pairs) % 2:
        raise ConfigError(f"config set takes KEY VALUE pairs; {pairs[-1]!r} has no value", key=pairs[-1][:200])
    changes: dict[str, Any] = {}
    for key, raw in zip(pairs[::2], pairs[1::2], strict=True):
        if key in changes:
            raise ConfigError(f"{key!r} is given twice", key=key[:200])
        changes[key] = parse_override(key, raw)
    return changes


def cmd_set(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.config import runtime_changes

    changes = changes_from(args.pairs)
    runtime_changes(changes)  # refuse keys that cannot change at runtime before reaching the cluster
    graph, where = _graph(cfg, args.name, args.namespace)
    result = _call(graph.set_config.remote(changes))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    for key, change in result["changes"].items():
        print(f"{key}: {change['from']} -> {change['to']}")
    after = f"after bar {result['after_bar']}" if result["after_bar"] else "before its first bar"
    print(f"{where}: applied {after} (change {result['change_id']}, journaled by the portfolio and the consensus)")
    return 0


def _graph(cfg: Config, name: str | None, namespace: str | None) -> tuple[Any, str]:
    """The running graph to change: attach to the cluster, find it, refuse ambiguity."""
    import ray

    from actors.graph import GRAPH_SUFFIX, find_graphs
    from actors.runtime import connect

    if not (cfg.ray.address or os.environ.get("RAY_ADDRESS")):
        raise ConfigError(
            "config set attaches to an engine running on a `ray start` cluster: give the cluster's address "
            "with -s ray.address=HOST:PORT (or 'auto' on one of its nodes) or RAY_ADDRESS", key="ray.address")
    connect(cfg)
    graphs = find_graphs(namespace)
    if name is not None:
        graphs = [g for g in graphs if g[1] in (name, name + GRAPH_SUFFIX)]
    if not graphs:
        where = f" named {name!r}" if name else ""
        raise ConfigError(f"no running engine{where}{f' in namespace {namespace!r}' if namespace else ''} "
                          "(see tinywindow status)", key="name")
    if len(graphs) > 1:
        raise ConfigError("several engines run: pick one with --name (and --namespace): "
                          + ", ".join(f"{n} (namespace {ns})" for ns, n in graphs), key="name")
    ns, graph_name = graphs[0]
    return ray.get_actor(graph_name, namespace=ns), f"{ns}/{graph_name}"


def _call(ref: Any) -> Any:
    """``ray.get`` with the engine's own error (a ``ConfigError`` naming the key) re-raised
    as itself, out of Ray's wrapper."""
    import ray

    try:
        return ray.get(ref, timeout=300)
    except ray.exceptions.GetTimeoutError:
        raise TransientError("the engine did not answer within 300 s (is it stalled? see tinywindow status); "
                             "the change may still land: check the journal before setting it again") from None
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, TinyWindowError):
            raise cause from None
        raise
