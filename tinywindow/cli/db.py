"""The SQL trade store (``tinywindow.records``), a projection of the signed journals.

* ``tinywindow db rebuild``: project every run found in the journal folder (one transaction
  per run; idempotent).  Reading journals needs the keystore passphrase (``crypto.passphrase_env``).
* ``tinywindow trades [--run R]``, ``positions [--run R]``, ``runs``: query the store
  (``--format table|csv|json``; money exact).

The store is ``storage.sql_url``, or SQLite at ``<data_dir>/trades.db``.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from tinywindow.config import Config
from tinywindow.errors import ConfigError


def store_url(cfg: Config) -> str:
    from tinywindow.records.sql import default_url

    secret = cfg.storage.sql_url
    return secret.get_secret_value() if secret is not None else default_url(cfg.data_dir)


def open_store(cfg: Config, *, must_exist: bool = True) -> Any:
    """The configured store; ``ConfigError`` when the default SQLite file is missing."""
    from tinywindow.records.sql import TradeStore

    if cfg.storage.sql_url is None and must_exist and not (Path(cfg.data_dir) / "trades.db").is_file():
        raise ConfigError(f"no trade store at {Path(cfg.data_dir).resolve() / 'trades.db'}: run 'tinywindow db rebuild' "
                          "first (or set storage.sql_url)", key="storage.sql_url")
    return TradeStore(store_url(cfg))


def unlocked_keystore(cfg: Config) -> Any:
    from tinywindow.crypto import open_keystore

    return open_keystore(cfg.crypto, cfg.data_dir)


def _cell(v: Any) -> Any:
    if isinstance(v, Decimal):
        from tinywindow.core.money import dec_str

        return dec_str(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if v is None or (isinstance(v, float) and v != v):
        return None
    return v.item() if hasattr(v, "item") else v


def render(df: Any, fmt: str) -> str:
    """A frame as a text table, CSV or JSON (records); money as exact decimal text."""
    rows = [[_cell(v) for v in row] for row in df.itertuples(index=False)]
    cols = [str(c) for c in df.columns]
    if fmt == "json":
        return json.dumps([dict(zip(cols, r, strict=True)) for r in rows], indent=1)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows(["" if v is None else v for v in r] for r in rows)
        return buf.getvalue().rstrip("\n")
    from tinywindow.cli._tables import table

    return table(rows, cols) if rows else "(no rows)"


def cmd_rebuild(args: argparse.Namespace, cfg: Config) -> int:
    store = open_store(cfg, must_exist=False)
    try:
        done = store.rebuild(Path(cfg.data_dir), unlocked_keystore(cfg), risk=cfg.risk, portfolio=cfg.portfolio,
                             journal_dir=cfg.crypto.journal_dir, registry_dir=cfg.agents.registry_dir)
        print(f"trade store {store.safe_url}: {len(done)} runs projected" + (f" ({', '.join(done)})" if done else ""))
    finally:
        store.close()
    return 0


def _query(what: str) -> Any:
    def cmd(args: argparse.Namespace, cfg: Config) -> int:
        store = open_store(cfg)
        try:
            df = store.runs() if what == "runs" else getattr(store, what)(args.run)
        finally:
            store.close()
        sys.stdout.write(render(df, args.format) + "\n")
        return 0

    return cmd


def register(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="the SQL trade store: rebuild it from the journals")
    sub = db.add_subparsers(dest="db_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("rebuild", help="project every run's journals into the store (idempotent)")
    p.set_defaults(func=cmd_rebuild)
    for name, helptext in (("trades", "fills from the trade store"), ("positions", "final positions per run"),
                           ("runs", "runs in the trade store")):
        q = subparsers.add_parser(name, help=helptext)
        if name != "runs":
            q.add_argument("--run", help="a run name (every mode) or run id <run>-<mode>")
        q.add_argument("--format", choices=["table", "csv", "json"], default="table")
        q.set_defaults(func=_query(name))
