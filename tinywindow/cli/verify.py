"""``tinywindow verify PATH...``: check journals, signed folders and encrypted segments.

Needs public keys only: ``--public-keys FILE`` (from ``keys export-public``) or the keystore
folder's public halves (no passphrase).  What a path is comes from its bytes, not its name:

* a folder of journals (no manifest: ``<data_dir>/journal``): each journal in it, as below;
* a folder (or its ``MANIFEST.tw.json``): every file against the signed manifest, and each
  sealed file in it (a model version's ``*.twenc``) as below;
* a non-empty ``*.twenc`` (a sealed file: model files, ``tuned.json.twenc``): one envelope whose
  label must be the end of its path (a file moved or swapped is refused); signature and
  ciphertext digest checked with public keys, decrypted too when the passphrase is set;
* ``TWEV...`` (or a non-empty ``*.twseg``): an encrypted segment.  Its label must be the
  path's name under the store (a segment copied or renamed is refused) and every byte is
  checked: a format-2 segment signs a digest of its ciphertext; a format-1 segment is
  decrypted to check its GCM tag, which needs the passphrase (``crypto.passphrase_env``).
  With the passphrase set, segments are also decrypted and a content-addressed name is
  checked against the bars it holds;
* ``<len>TWJR...`` (or any ``*.twj``, or a file with a ``.head`` beside it): a journal,
  audited exactly as ``Journal`` does on open (chain, every signature, head; a torn final
  write is reported, never repaired here);
* anything else (a device, a FIFO, an empty or foreign file) is refused without reading it.

When a SQL trade store exists (``storage.sql_url``, or ``<data_dir>/trades.db``) and the
passphrase is set, each run in it is also checked against its journals; any difference is
printed and exits 1.

Prints one line per path and exits 1 when any is bad, naming the first bad record of a journal.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinywindow.config import Config
from tinywindow.errors import IntegrityError, KeyStoreError, TinyWindowError

UNKNOWN = "not a TinyWindow journal/segment/manifest"
PrivateKeys = Callable[[], Any]


def _check_folder(path: Path, keys: Any, private: PrivateKeys | None = None) -> str:
    from tinywindow.crypto.manifest import MANIFEST, verify_dir
    from tinywindow.crypto.sealed import SUFFIX

    if not (path / MANIFEST).exists():
        raise IntegrityError(f"{UNKNOWN} (a folder without {MANIFEST})")
    metadata = verify_dir(path, keys)
    sealed = sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file())
    for file in sealed:
        try:
            _check_sealed(file, keys, private)
        except TinyWindowError as exc:
            raise type(exc)(f"{file.relative_to(path).as_posix()}: {exc}") from None
    files = f", {len(sealed)} sealed files" if sealed else ""
    return f"OK, signed folder{files} (metadata keys: {', '.join(sorted(metadata)) or '-'})"


def _check_sealed(path: Path, keys: Any, private: PrivateKeys | None) -> str:
    from tinywindow.crypto.envelope import open_envelope, parse_header, verify_envelope
    from tinywindow.crypto.fsutil import read_regular
    from tinywindow.crypto.sealed import SUFFIX

    blob = read_regular(path)
    label = parse_header(blob).label
    if not path.resolve().as_posix().endswith(f"/{label}{SUFFIX}"):
        raise IntegrityError(
            f"sealed file is labelled {label!r} but stored as {path.name!r} (moved or swapped; "
            f"expected a path ending in {label}{SUFFIX})"
        )
    header = verify_envelope(blob, keys, label=label)
    checked = "signature, label and ciphertext digest"
    keystore = private() if private is not None else None
    if keystore is not None:
        checked += f", decrypted ({len(open_envelope(blob, keystore, label=label))} bytes)"
    return f"OK, sealed file {label!r} signed by {header.signer.hex()}: {checked}"


def _check_segment(path: Path, keys: Any, private: PrivateKeys | None) -> str:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from tinywindow.crypto.envelope import open_envelope, parse_header, verify_envelope
    from tinywindow.crypto.fsutil import read_regular
    from tinywindow.crypto.store import SUFFIX
    from tinywindow.data.persist import check_segment_name

    blob = read_regular(path)
    label = parse_header(blob).label
    where = path.resolve().as_posix()
    if not where.endswith(f"/{label}{SUFFIX}"):
        raise IntegrityError(
            f"segment is labelled {label!r} but stored as {path.name!r} (copied or renamed; "
            f"expected a path ending in {label}{SUFFIX})"
        )
    keystore = private() if private is not None else None
    header = verify_envelope(blob, keystore if keystore is not None else keys, label=label)
    checked = "signature, label and ciphertext digest" if header.version >= 2 else "signature, label and GCM tag"
    if keystore is not None:
        try:
            table = ipc.open_stream(open_envelope(blob, keystore, label=label)).read_all()
        except (pa.ArrowInvalid, pa.ArrowIOError) as exc:
            raise IntegrityError(f"segment decrypts to invalid Arrow IPC: {exc}") from None
        check_segment_name(label, table)
        checked += f", decrypted ({table.num_rows} rows)"
    return f"OK, segment {label!r} (format {header.version}) signed by {header.signer.hex()}: {checked}"


def _check_journal(path: Path, keys: Any) -> tuple[bool, str]:
    from tinywindow.crypto.journal import Journal

    report = Journal.verify_file(path, keys)
    text = report.describe()
    return report.ok, text.removeprefix(f"{path}: ")


def check_path(path: Path, keys: Any, private: PrivateKeys | None = None) -> tuple[bool, str]:
    """``(ok, one-line verdict)`` for a journal, a signed folder or an encrypted segment.
    ``private`` (optional) returns the unlocked keystore for checks that need to decrypt."""
    from tinywindow.crypto.fsutil import read_regular
    from tinywindow.crypto.manifest import MANIFEST

    try:
        if path.is_dir():
            return True, f"{path}: {_check_folder(path, keys, private)}"
        if path.name == MANIFEST and path.is_file():
            return True, f"{path}: {_check_folder(path.parent, keys, private)}"
        if not os.path.lexists(path):
            return False, f"{path}: BAD: no such file or folder"
        try:
            start = read_regular(path, limit=8)
        except IntegrityError:
            raise IntegrityError(f"{UNKNOWN} (not a regular file: a device, FIFO or socket)") from None
        from tinywindow.crypto.sealed import SUFFIX as SEALED
        from tinywindow.crypto.store import SUFFIX

        if start and path.suffix == SEALED:
            return True, f"{path}: {_check_sealed(path, keys, private)}"
        named_journal = path.suffix == ".twj" or path.with_name(path.name + ".head").exists()
        if start[:4] == b"TWEV" or (start and path.suffix == SUFFIX):  # a damaged magic is reported
            return True, f"{path}: {_check_segment(path, keys, private)}"
        if start[4:8] == b"TWJR" or named_journal:
            ok, line = _check_journal(path, keys)
            return ok, f"{path}: {line}"
        raise IntegrityError(UNKNOWN + (" (empty file)" if not start else ""))
    except (TinyWindowError, OSError, ValueError) as exc:
        if isinstance(exc, OSError):
            return False, f"{path}: BAD: cannot read it ({exc.strerror or exc})"
        return False, f"{path}: BAD: {exc}"


def _private_keys(args: argparse.Namespace, cfg: Config) -> PrivateKeys | None:
    """The unlocked keystore, opened on first use, when the passphrase env var is set."""
    if not os.environ.get(cfg.crypto.passphrase_env):
        return None
    cache: list[Any] = []

    def unlock() -> Any:
        if not cache:
            from tinywindow.crypto import KeyStore, get_backend, keystore_dir, passphrase_from_env

            try:
                cache.append(KeyStore.open(args.keystore or keystore_dir(cfg.crypto, cfg.data_dir), passphrase_from_env(cfg.crypto),
                                           backend=get_backend(cfg.crypto.backend)))
            except KeyStoreError:
                cache.append(None)  # no usable keystore here: public-key checks only
        return cache[0]

    return unlock


def cmd_verify(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.crypto import KeyStore, PublicKeyRing, keystore_dir

    if args.public_keys:
        keys: Any = PublicKeyRing.load(args.public_keys)
    else:
        keys = KeyStore.public_ring(args.keystore or keystore_dir(cfg.crypto, cfg.data_dir))
    private = _private_keys(args, cfg)
    bad = 0
    for path in _expand([Path(name) for name in args.paths]):
        ok, line = check_path(path, keys, private)
        print(line)
        bad += not ok
    bad += _check_store(cfg, private)
    return 1 if bad else 0


JOURNAL_SUFFIXES = (".journal", ".twj")


def _expand(paths: list[Path]) -> list[Path]:
    """A folder of journals (no signed manifest, journal files in it: ``<data_dir>/journal``)
    stands for each journal in it, in name order; every other path is itself."""
    from tinywindow.crypto.manifest import MANIFEST

    out: list[Path] = []
    for p in paths:
        journals = sorted(f for f in p.iterdir() if f.suffix in JOURNAL_SUFFIXES and f.is_file()) if (
            p.is_dir() and not (p / MANIFEST).exists()) else []
        out.extend(journals or [p])
    return out


def _check_store(cfg: Config, private: PrivateKeys | None) -> int:
    """When a trade store exists: each of its runs against the journals (differences printed).
    Reading journals needs the unlocked keystore; without it the check is skipped, said so."""
    from tinywindow.cli.db import open_store

    if cfg.storage.sql_url is None and not (Path(cfg.data_dir) / "trades.db").is_file():
        return 0
    keystore = private() if private is not None else None
    if keystore is None:
        print(f"trade store: not checked (set {cfg.crypto.passphrase_env}: reading the journals needs the keystore)")
        return 0
    from tinywindow.records import find_runs, load_run

    store = open_store(cfg)
    bad = 0
    try:
        stored = set(store.runs()["run_id"])
        for run, mode in find_runs(Path(cfg.data_dir), cfg.crypto.journal_dir):
            rec = load_run(Path(cfg.data_dir), run, mode, keystore, risk=cfg.risk, portfolio=cfg.portfolio,
                           journal_dir=cfg.crypto.journal_dir, registry_dir=cfg.agents.registry_dir)
            if rec.run_id not in stored:
                print(f"trade store {rec.run_id}: not projected (tinywindow db rebuild)")
                continue
            diffs = store.verify(rec)
            print(f"trade store {rec.run_id}: " + ("OK, consistent with the journal" if not diffs
                                                   else f"BAD: {len(diffs)} differences"))
            for d in diffs:
                print(f"  {d}")
            bad += bool(diffs)
    finally:
        store.close()
    return bad


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "verify", help="verify journals, signed folders and encrypted segments (exit 1 if any is bad)"
    )
    p.add_argument("paths", nargs="+", metavar="JOURNAL_OR_DIR")
    p.add_argument("--public-keys", help="public key file from 'keys export-public'")
    p.add_argument("--keystore", help="keystore folder to take public keys from (default: crypto.keystore_dir)")
    p.set_defaults(func=cmd_verify)
