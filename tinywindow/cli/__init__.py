"""The ``tinywindow`` command.

Each sub-command group lives in its own module exposing ``register(subparsers)``; heavy
imports (Ray, torch) happen inside the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from tinywindow import __version__
from tinywindow.config import Config, load
from tinywindow.core.log import get_logger, setup
from tinywindow.errors import ConfigError, TinyWindowError


def command_modules() -> list[str]:
    """Every module of this package adds a sub-command group (discovered, sorted by name)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinywindow",
        description="TinyWindow: an actor-model distributed AI trading engine on Ray.",
    )
    parser.add_argument("--version", action="version", version=f"tinywindow {__version__}")
    parser.add_argument("-c", "--config", help="YAML or JSON config file")
    parser.add_argument(
        "-s",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set risk.max_position=0.1 (repeatable)",
    )
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in command_modules():
        importlib.import_module(f"tinywindow.cli.{name}").register(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = list(args.set)
    if args.log_level:
        overrides.append(f"log.level={args.log_level}")
    return load(args.config, overrides=overrides)


def _load_config(args: argparse.Namespace) -> Config:
    """``config_from_args``, with anything unforeseen while reading an operator's config
    reported as a one-line ``ConfigError`` instead of a traceback."""
    try:
        return config_from_args(args)
    except TinyWindowError:
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, OSError, UnicodeError) as exc:
        get_logger("cli").debug("config failed to load", exc_info=True)
        raise ConfigError(f"could not load the config: {type(exc).__name__}: {str(exc)[:200]}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = _load_config(args)
        setup(cfg.log.level)
        result = args.func(args, cfg)
        return int(result or 0)
    except TinyWindowError as exc:
        get_logger("cli").debug("command failed", exc_info=True)
        print(f"error: {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)  # one line
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
