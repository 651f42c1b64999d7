"""``tinywindow keys init|rotate|list|export-public``: the keystore from the command line.

The passphrase comes from the env var named by ``crypto.passphrase_env`` (default
``TW_PASSPHRASE``) or, on a terminal, a prompt; it is never printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from tinywindow.config import Config
from tinywindow.errors import KeyStoreError


def _directory(args: argparse.Namespace, cfg: Config) -> str:
    from tinywindow.crypto import keystore_dir

    return args.dir or str(keystore_dir(cfg.crypto, cfg.data_dir))


def read_passphrase(cfg: Config, *, confirm: bool = False) -> str:
    """From ``$<crypto.passphrase_env>``, else a terminal prompt (twice when ``confirm``)."""
    from tinywindow.core.log import register_secret

    value = os.environ.get(cfg.crypto.passphrase_env, "")
    if not value:
        if not sys.stdin.isatty():
            raise KeyStoreError(
                f"no passphrase: set {cfg.crypto.passphrase_env} or run on a terminal to be prompted"
            )
        value = getpass.getpass("keystore passphrase: ")
        if confirm and getpass.getpass("repeat passphrase: ") != value:
            raise KeyStoreError("the passphrases do not match")
    if not value:
        raise KeyStoreError("empty passphrase")
    register_secret(value)
    return value


def cmd_init(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli._storage import state_root
    from tinywindow.crypto import KeyStore, get_backend

    cfg = state_root(cfg, "tinywindow keys init")  # refuses a job's throw-away working directory
    store = KeyStore.init(
        _directory(args, cfg),
        read_passphrase(cfg, confirm=True),
        scrypt_log2_n=args.scrypt_log2_n or cfg.crypto.scrypt_log2_n,
        backend=get_backend(cfg.crypto.backend),
    )
    print(f"created keystore {store.directory} with key {store.active_id}")
    return 0


def _open(args: argparse.Namespace, cfg: Config) -> Any:
    from tinywindow.crypto import KeyStore, get_backend

    return KeyStore.open(_directory(args, cfg), read_passphrase(cfg), backend=get_backend(cfg.crypto.backend))


def cmd_rotate(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli._storage import state_root

    store = _open(args, state_root(cfg, "tinywindow keys rotate"))
    old = store.active_id
    new = store.rotate()
    print(f"rotated keystore {store.directory}: active key {old} -> {new} (old keys kept for reading)")
    return 0


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.crypto import KeyStore
    from tinywindow.crypto.keystore import read_index

    directory = _directory(args, cfg)
    ring = KeyStore.public_ring(directory)  # listing needs no passphrase
    index = read_index(directory)
    active = index.get("active")
    rows = [{"key_id": k, "active": k == active} for k in index.get("keys", []) if k in ring.ids()]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            print(f"{row['key_id']}{'  (active)' if row['active'] else ''}")
    return 0


def cmd_export_public(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.crypto import KeyStore

    ring = KeyStore.public_ring(_directory(args, cfg))
    data = ring.to_json()
    if args.key_id:
        data["keys"] = [k for k in data["keys"] if k["key_id"] in args.key_id]
        missing = set(args.key_id) - {k["key_id"] for k in data["keys"]}
        if missing:
            raise KeyStoreError(f"no such key id(s): {', '.join(sorted(missing))}")
    text = json.dumps(data, indent=1)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        print(f"wrote {len(data['keys'])} public key set(s) to {args.output}")
    else:
        print(text)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="manage the post-quantum keystore")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    sub.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", help="keystore folder (default: crypto.keystore_dir)")
    p = sub.add_parser("init", parents=[common], help="create a keystore with a fresh key set")
    p.add_argument("--scrypt-log2-n", type=int, help="scrypt cost (default crypto.scrypt_log2_n)")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("rotate", parents=[common], help="add a key set and make it active")
    p.set_defaults(func=cmd_rotate)
    p = sub.add_parser("list", parents=[common], help="list key ids (no passphrase needed)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("export-public", parents=[common], help="write the public keys as JSON")
    p.add_argument("--key-id", action="append", help="only this key id (repeatable)")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.set_defaults(func=cmd_export_public)
