"""``tinywindow verify PATH...``: check journals, signed folders and encrypted segments.

Needs public keys only: ``--public-keys FILE`` (from ``keys export-public``) or the keystore
folder's public halves (no passphrase).  Prints one line per path and exits 1 when any is
bad, naming the first bad record of a journal.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tinywindow.config import Config
from tinywindow.errors import IntegrityError, KeyStoreError


def check_path(path: Path, keys: Any) -> tuple[bool, str]:
    """``(ok, one-line verdict)`` for a journal file, a signed folder or a ``.twseg`` segment."""
    from tinywindow.crypto.envelope import verify_signature
    from tinywindow.crypto.journal import Journal
    from tinywindow.crypto.manifest import MANIFEST, verify_dir
    from tinywindow.crypto.store import SUFFIX

    try:
        if path.is_dir():
            if not (path / MANIFEST).exists():
                raise IntegrityError(f"{path} is not signed (no {MANIFEST})")
            metadata = verify_dir(path, keys)
            return True, f"{path}: OK, signed folder (metadata keys: {', '.join(sorted(metadata)) or '-'})"
        if not path.exists():
            return False, f"{path}: BAD: no such file or folder"
        if path.suffix == SUFFIX:
            header = verify_signature(path.read_bytes(), keys)
            return True, f"{path}: OK, segment {header.label!r} signed by {header.signer.hex()} (ciphertext bound by its GCM tag)"
        report = Journal.verify_file(path, keys)
        return report.ok, report.describe()
    except (IntegrityError, KeyStoreError) as exc:
        return False, f"{path}: BAD: {exc}"


def cmd_verify(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.crypto import KeyStore, PublicKeyRing, keystore_dir

    if args.public_keys:
        keys: Any = PublicKeyRing.load(args.public_keys)
    else:
        keys = KeyStore.public_ring(args.keystore or keystore_dir(cfg))
    bad = 0
    for name in args.paths:
        ok, line = check_path(Path(name), keys)
        print(line)
        bad += not ok
    return 1 if bad else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "verify", help="verify journals, signed folders and encrypted segments (exit 1 if any is bad)"
    )
    p.add_argument("paths", nargs="+", metavar="JOURNAL_OR_DIR")
    p.add_argument("--public-keys", help="public key file from 'keys export-public'")
    p.add_argument("--keystore", help="keystore folder to take public keys from (default: crypto.keystore_dir)")
    p.set_defaults(func=cmd_verify)
