"""``tinywindow report RUN_DIR -o FILE``: a run's self-contained HTML report.

``RUN_DIR`` is the run's data folder (``var/demo``): its ``summary.json`` names the run of each
mode, its journals and model registry are read with ``tinywindow.records.load_run`` (payloads
are encrypted, so the keystore in ``RUN_DIR`` is unlocked with ``$<crypto.passphrase_env>``, or
a prompt on a terminal), and ``tinywindow.report.build_report`` draws them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tinywindow.config import Config
from tinywindow.errors import ConfigError

MODES = ("backtest", "paper", "live")


def run_name(data_dir: Path, mode: str) -> str:
    """The run of ``mode`` in ``data_dir/summary.json``: the section keyed by the mode, else the
    first section of that mode, else a top-level ``run``."""
    path = data_dir / "summary.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the run's summary ({exc}); name the run with --run") from None
    if isinstance(doc, dict):
        sections = [doc.get(mode)] + [v for v in doc.values() if isinstance(v, dict) and v.get("mode") == mode]
        for s in sections:
            if isinstance(s, dict) and isinstance(s.get("run"), str):
                return str(s["run"])
        if isinstance(doc.get("run"), str):
            return str(doc["run"])
    raise ConfigError(f"{path} names no {mode} run; name it with --run")


def cmd_report(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli.keys import read_passphrase
    from tinywindow.crypto import open_keystore
    from tinywindow.records import load_run
    from tinywindow.report import build_report

    data_dir = Path(args.run_dir)
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir}: not a run folder")
    run = args.run or run_name(data_dir, args.mode)
    keys = open_keystore(cfg.crypto, data_dir, read_passphrase(cfg))
    records = load_run(data_dir, run, args.mode, keys, risk=cfg.risk, portfolio=cfg.portfolio,
                       journal_dir=cfg.crypto.journal_dir, registry_dir=cfg.agents.registry_dir)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    page = build_report(records, title=args.title)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out} ({len(page.encode()) / 1e6:.1f} MB): run {run}, mode {args.mode}, "
          f"{len(records.fills):,} fills, {len(records.equity):,} equity points")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="write a run's self-contained HTML report")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run's data folder (holds summary.json, journal/, keys/)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument("--mode", choices=MODES, default="backtest", help="which of the run's modes (default backtest)")
    p.add_argument("--run", help="run name (default: the one summary.json names for the mode)")
    p.add_argument("--title", help="page title (default: 'TinyWindow report: <run> (<mode>)')")
    p.set_defaults(func=cmd_report)
