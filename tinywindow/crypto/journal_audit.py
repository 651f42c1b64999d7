"""Auditing a journal file: chain, signatures and head; what is committed, what is torn.

``audit`` decides, for bytes read from a journal and its head file:

* the first *committed* record (seq <= head seq) that is changed, missing, reordered or cut:
  ``report.first_bad`` names it, and the journal must not be trusted;
* records after the head that are complete and signed: committed just before a crash that
  hit the head update (kept; the head is refreshed);
* bytes after the last signed record beyond the head: a torn write or an unfinished batch
  (``keep_end`` says where to cut them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tinywindow.crypto import journal_format as jf
from tinywindow.crypto.backend import get_backend
from tinywindow.crypto.fsutil import atomic_write_local
from tinywindow.crypto.keys import PublicKeySource, b64, unb64
from tinywindow.errors import KeyStoreError

HEAD_FORMAT = "tinywindow-journal-head/1"


@dataclass(frozen=True)
class Head:
    seq: int
    hash: bytes
    signer: bytes
    signature: bytes


@dataclass(frozen=True)
class VerifyReport:
    """The verdict on one journal: ``ok``, and if not, the first bad record (``first_bad``,
    None when the problem is not one record, e.g. a missing head file) and why."""

    ok: bool
    records: int
    first_bad: int | None = None
    reason: str = ""
    torn_bytes: int = 0
    path: str = ""

    def describe(self) -> str:
        where = f"{self.path}: " if self.path else ""
        if self.ok:
            torn = f" (+{self.torn_bytes} bytes of torn final write, repaired on open)" if self.torn_bytes else ""
            return f"{where}OK, {self.records} records{torn}"
        if self.first_bad is None:
            return f"{where}BAD: {self.reason}"
        return f"{where}BAD: first bad record is seq {self.first_bad}: {self.reason}"

    def at(self, path: str) -> VerifyReport:
        return replace(self, path=path)

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class Audit:
    report: VerifyReport
    records: list[jf.RawRecord] = field(default_factory=list)
    keep_end: int = 0
    head_stale: bool = False


def load_head(path: Path) -> Head | None:
    """The head file, or None when absent; a corrupt head is reported as a bad head."""
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict) or data.get("format") != HEAD_FORMAT:
            raise ValueError("format")
        return Head(
            int(data["seq"]),
            bytes.fromhex(data["hash"]),
            bytes.fromhex(data["key_id"]),
            unb64(data["signature"], "head signature"),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, KeyStoreError, UnicodeDecodeError):
        return Head(-2, b"", b"", b"")  # never matches: reported as a corrupt head


def write_head(path: Path, rec: Head, *, fsync: bool = True) -> None:
    body = {
        "format": HEAD_FORMAT,
        "seq": rec.seq,
        "hash": rec.hash.hex(),
        "key_id": rec.signer.hex(),
        "signature": b64(rec.signature),
    }
    data = json.dumps(body).encode()
    if fsync:
        atomic_write_local(path, data)
    else:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _sig_ok(rec: jf.RawRecord, keys: PublicKeySource) -> bool:
    try:
        public = keys.public(rec.signer)
    except KeyStoreError:
        return False
    return get_backend().mldsa65_verify(public.mldsa65, rec.signature, rec.hash, jf.SIG_CONTEXT)


def _bad(records: int, seq: int | None, reason: str) -> Audit:
    return Audit(VerifyReport(False, records, seq, reason))


def audit(data: bytes, head: Head | None, keys: PublicKeySource, *, full: bool) -> Audit:
    """See the module docstring.  ``full`` verifies every signature; otherwise only key records
    and the last signed record (the chain vouches for the rest), falling back to ``full`` to
    name the culprit when something fails."""
    records, brk = jf.scan(data)
    if brk is not None and "link broken" in brk.reason and records and not records[-1].signed:
        # an unsigned record's content changed: blame it, not the record that links to it
        brk = jf.Break(records[-1].seq, records[-1].offset, "record content changed (hash chain broken)", False)
        records = records[:-1]
    to_check = records if full else [r for r in records if r.type == jf.TYPE_KEY]
    signed = [r for r in records if r.signed]
    if not full and signed and signed[-1] not in to_check:
        to_check = [*to_check, signed[-1]]
    for rec in to_check:
        if rec.signed and not _sig_ok(rec, keys):
            if not full:
                return audit(data, head, keys, full=True)
            brk = jf.Break(rec.seq, rec.offset, f"signature does not verify (signer {rec.signer.hex()})", False)
            records = records[: rec.seq]
            break
    # the committed point: the last signed record, vouching for all before it
    while records and not records[-1].signed:
        records = records[:-1]
    last = records[-1] if records else None
    keep_end = last.end if last else 0
    torn = len(data) - keep_end
    if head is None:
        if len(records) > 1 or (brk is not None and not brk.incomplete and len(records) == 1):
            return _bad(len(records), None, "head file missing: cannot tell whether records were removed from the end")
        return Audit(VerifyReport(True, len(records), torn_bytes=torn), records, keep_end, head_stale=last is not None)
    if head.seq < 0 or not head.hash:
        return _bad(len(records), None, "head file is corrupt")
    if head.seq >= len(records):
        seq = len(records)
        if brk is not None and brk.seq <= head.seq:
            return _bad(len(records), min(brk.seq, seq), brk.reason)
        return _bad(len(records), seq, f"record missing: the journal ends before seq {head.seq} named by its head (truncated)")
    at_head = records[head.seq]
    if at_head.hash != head.hash or at_head.signature != head.signature:
        return _bad(len(records), head.seq, "record does not match the journal head (changed or replaced)")
    return Audit(
        VerifyReport(True, len(records), torn_bytes=torn),
        records,
        keep_end,
        head_stale=last is not None and last.seq != head.seq,
    )
