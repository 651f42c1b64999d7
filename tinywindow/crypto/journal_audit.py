"""Auditing a journal: the one verdict that both ``Journal`` (on open) and ``tinywindow verify``
use, signatures included.

``audit`` reads the bytes of a journal and its head file and decides:

* **damage**: any complete record that does not parse, is out of sequence, breaks the hash
  chain or carries a bad signature; a committed record (seq <= head seq) that is missing or
  cut short; a head that is corrupt or names another record; a head file missing while the
  journal holds signed history.  ``report.ok`` is False and ``first_bad``/``offset`` name the
  record.  Open refuses such a journal and changes nothing.
* **a torn tail**: bytes after the last signed record that are an unfinished write (complete
  unsigned records of an unfinished batch, then a record the file ends inside, whose bytes so
  far fit the record expected there) and lie beyond the head.  ``keep_end`` says where open
  cuts them; it then appends a signed repair record naming the cut (``repairs`` lists those).
* records after the head that are complete and signed: committed just before a crash that hit
  the head update (kept; ``head_stale`` asks open to refresh the head).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tinywindow.crypto import journal_format as jf
from tinywindow.crypto.backends import get_backend
from tinywindow.crypto.fsutil import atomic_write_local, read_regular
from tinywindow.crypto.keys import PublicKeySource, b64, unb64
from tinywindow.errors import IntegrityError, KeyStoreError

HEAD_FORMAT = "tinywindow-journal-head/1"
MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Head:
    seq: int
    hash: bytes
    signer: bytes
    signature: bytes


@dataclass(frozen=True)
class Repair:
    """A torn tail cut on open, as its signed repair record tells it."""

    seq: int  # the repair record's own seq
    cut_offset: int
    cut_bytes: int
    cut_sha256: str

    def describe(self) -> str:
        return f"seq {self.seq}: cut {self.cut_bytes} torn bytes at offset {self.cut_offset}"


@dataclass(frozen=True)
class VerifyReport:
    """The verdict on one journal: ``ok``, and if not, the first bad record (``first_bad`` and
    its byte ``offset``; None when the problem is not one record, e.g. a missing head file) and
    why.  ``torn_bytes`` at ``torn_offset``: an unfinished final write that open cuts (and
    records); ``repairs``: cuts made by earlier opens."""

    ok: bool
    records: int
    first_bad: int | None = None
    reason: str = ""
    torn_bytes: int = 0
    path: str = ""
    offset: int | None = None
    torn_offset: int = 0
    repairs: tuple[Repair, ...] = ()

    def describe(self) -> str:
        where = f"{self.path}: " if self.path else ""
        if self.ok:
            notes = []
            if self.torn_bytes:
                notes.append(
                    f"+{self.torn_bytes} bytes of torn final write at offset {self.torn_offset}, "
                    "cut and recorded on open"
                )
            if self.repairs:
                notes.append(f"{len(self.repairs)} earlier repair(s): " + "; ".join(r.describe() for r in self.repairs))
            return f"{where}OK, {self.records} records" + (f" ({'; '.join(notes)})" if notes else "")
        if self.first_bad is None:
            return f"{where}BAD: {self.reason}"
        at = f" (offset {self.offset})" if self.offset is not None else ""
        return f"{where}BAD: first bad record is seq {self.first_bad}{at}: {self.reason}"

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


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def load_head(path: Path) -> Head | None:
    """The head file, or None when absent; a corrupt head is reported as a bad head."""
    try:
        raw = read_regular(path, limit=MAX_HEAD_BYTES + 1)
        if len(raw) > MAX_HEAD_BYTES:
            raise ValueError("too large")
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != HEAD_FORMAT:
            raise ValueError("format")
        seq = data["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("seq")
        return Head(seq, bytes.fromhex(data["hash"]), bytes.fromhex(data["key_id"]),
                    unb64(data["signature"], "head signature"))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, KeyStoreError, IntegrityError, UnicodeDecodeError):
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


def repair_content(cut_offset: int, cut: bytes) -> bytes:
    """The plaintext content of a repair record (canonical JSON)."""
    import hashlib

    doc = {"cut_offset": cut_offset, "cut_bytes": len(cut), "cut_sha256": hashlib.sha256(cut).hexdigest(),
           "reason": "torn final write"}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _repair_of(rec: jf.RawRecord) -> Repair | None:
    try:
        doc: Any = json.loads(rec.content)
        return Repair(rec.seq, int(doc["cut_offset"]), int(doc["cut_bytes"]), str(doc["cut_sha256"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def _sig_ok(rec: jf.RawRecord, keys: PublicKeySource) -> bool:
    try:
        public = keys.public(rec.signer)
    except KeyStoreError:
        return False
    return get_backend().mldsa65_verify(public.mldsa65, rec.signature, rec.hash, jf.SIG_CONTEXT)


def _bad(records: int, seq: int | None, reason: str, offset: int | None = None) -> Audit:
    return Audit(VerifyReport(False, records, seq, reason, offset=offset))


def audit(data: bytes, head: Head | None, keys: PublicKeySource) -> Audit:
    """See the module docstring.  Every signature is verified: open and verify agree."""
    records, brk = jf.scan(data)
    if brk is not None and "link broken" in brk.reason and records and not records[-1].signed:
        # an unsigned record's content changed: blame it, not the record that links to it
        rec = records[-1]
        brk = jf.Break(rec.seq, rec.offset, "record content changed (hash chain broken)", False)
        records = records[:-1]
    for rec in records:
        if rec.signed and not _sig_ok(rec, keys):
            return _bad(rec.seq, rec.seq, f"signature does not verify (signer {rec.signer.hex()})", rec.offset)
        if rec.type == jf.TYPE_REPAIR and _repair_of(rec) is None:
            return _bad(rec.seq, rec.seq, "repair record is not readable", rec.offset)
    if brk is not None and not brk.incomplete:
        return _bad(len(records), brk.seq, brk.reason, brk.offset)
    # the committed point: the last signed record, vouching for all before it
    kept = list(records)
    while kept and not kept[-1].signed:
        kept.pop()
    last = kept[-1] if kept else None
    keep_end = last.end if last else 0
    torn = len(data) - keep_end
    repairs = tuple(r for rec in kept if rec.type == jf.TYPE_REPAIR and (r := _repair_of(rec)) is not None)

    def ok(stale: bool) -> Audit:
        report = VerifyReport(True, len(kept), torn_bytes=torn, torn_offset=keep_end, repairs=repairs)
        return Audit(report, kept, keep_end, head_stale=stale)

    if head is None:
        if not kept:
            return ok(False)  # a new journal, or a crash inside its very first write
        if len(kept) == 1 and torn == 0:
            return ok(True)  # a crash between the first key record and the first head write
        return _bad(len(kept), None, f"head file missing: the journal holds {len(kept)} signed records "
                    "but no head, so records removed from its end could not be seen")
    if head.seq < 0 or not head.hash:
        return _bad(len(kept), None, "head file is corrupt")
    if head.seq > (last.seq if last else -1):
        seq = len(kept)
        if brk is not None and brk.seq == seq:
            return _bad(len(kept), seq, f"committed record cut short: {brk.reason}", brk.offset)
        at = records[seq].offset if seq < len(records) else keep_end
        return _bad(len(kept), seq, f"record missing: the journal ends before seq {head.seq} "
                    "named by its head (truncated or rolled back)", at)
    at_head = kept[head.seq]
    if at_head.hash != head.hash or at_head.signature != head.signature:
        return _bad(len(kept), head.seq, "record does not match the journal head (changed or replaced)", at_head.offset)
    return ok(last is not None and last.seq != head.seq)
