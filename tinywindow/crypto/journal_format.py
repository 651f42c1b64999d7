"""Journal record format v1 and the structural scan (see ``docs/crypto-format.md``).

::

    u32 BE  N = length of what follows (body + signature)
    body (84 + C bytes)
       0  4  magic "TWJR"          4  1  version 1          5  1  type (1 key, 2 data, 3 repair)
       6  1  flags (bit 0 signed)  7  1  reserved 0         8  8  seq (u64 BE)
      16  8  timestamp ns (i64)   24 32  previous record hash (genesis: SHA-256 of a label)
      56 16  signer key id        72  8  epoch: seq of the key record whose data key applies
      80  4  C = content length   84  C  content
             key record:  an envelope to the signer's key set holding the 32-byte data key
             data record: nonce (12) || AES-256-GCM(data key, nonce, u16 kind length || kind ||
                          canonical JSON payload, AAD = body[0:84])
             repair record: canonical JSON (plaintext) describing a torn tail cut on open
    signature (3309, when signed): ML-DSA-65 over SHA-256(body), context "tinywindow/journal/v1"

Record hash = SHA-256(body); each record names the previous hash, so one valid signature on a
record vouches for every record before it.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from tinywindow.crypto.backends import MLDSA65_SIGNATURE_BYTES

MAGIC = b"TWJR"
VERSION = 1
TYPE_KEY = 1
TYPE_DATA = 2
TYPE_REPAIR = 3  # signed, plaintext JSON: a torn tail was cut here (offset, byte count, digest)
TYPES = (TYPE_KEY, TYPE_DATA, TYPE_REPAIR)
FLAG_SIGNED = 1
SIG_CONTEXT = b"tinywindow/journal/v1"
GENESIS = hashlib.sha256(b"tinywindow/journal/v1/genesis").digest()
FIXED = struct.Struct(">4sBBBBQq32s16sQI")  # 84 bytes
LEN = struct.Struct(">I")
MAX_CONTENT = 64 * 1024 * 1024
MAX_RECORD = FIXED.size + MAX_CONTENT + MLDSA65_SIGNATURE_BYTES  # a larger length prefix is damage


@dataclass(frozen=True)
class RawRecord:
    """One structurally valid record as found in the file."""

    seq: int
    type: int
    signed: bool
    timestamp_ns: int
    prev_hash: bytes
    signer: bytes
    epoch: int
    content: bytes
    fixed: bytes  # body[0:84], the AAD of a data record
    signature: bytes
    hash: bytes
    offset: int  # where its length prefix starts
    end: int  # offset just past it


@dataclass(frozen=True)
class Break:
    """Where the scan stopped: the seq expected there, the byte offset and why."""

    seq: int
    offset: int
    reason: str
    incomplete: bool  # the file ends inside this record and its bytes so far fit it (torn write)


def fixed_part(*, type_: int, signed: bool, seq: int, timestamp_ns: int, prev_hash: bytes,
               signer: bytes, epoch: int, content_len: int) -> bytes:
    flags = FLAG_SIGNED if signed else 0
    return FIXED.pack(MAGIC, VERSION, type_, flags, 0, seq, timestamp_ns, prev_hash, signer, epoch, content_len)


def frame(body: bytes, signature: bytes) -> bytes:
    return LEN.pack(len(body) + len(signature)) + body + signature


def record_hash(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def _torn_prefix_fits(view: memoryview, start: int, seq: int, prev: bytes) -> bool:
    """Whether the bytes of an incomplete record (from its magic on) are a prefix of a
    well-formed record ``seq`` linking to ``prev``: a torn write, not garbage."""
    expect = MAGIC + bytes([VERSION])
    got = bytes(view[start : start + FIXED.size])
    if got[: len(expect)] != expect[: len(got)]:
        return False
    if len(got) > 5 and got[5] not in TYPES:
        return False
    if len(got) > 6 and got[6] & ~FLAG_SIGNED:
        return False
    if len(got) > 7 and got[7]:
        return False
    if got[8:16] != seq.to_bytes(8, "big")[: max(0, len(got) - 8)]:
        return False
    return got[24:56] == prev[: max(0, len(got) - 24)]


def scan(data: bytes) -> tuple[list[RawRecord], Break | None]:
    """Parse records from the start of ``data`` while they are well formed, in sequence and
    chained; stop at the first that is not.  ``Break.incomplete`` is set only for a torn
    final write: the file ends inside a record whose bytes so far fit the record expected."""
    view = memoryview(data)
    records: list[RawRecord] = []
    pos, prev, seq = 0, GENESIS, 0
    while pos < len(view):
        if len(view) - pos < LEN.size:
            return records, Break(seq, pos, f"file ends inside a length prefix ({len(view) - pos} bytes)", True)
        (n,) = LEN.unpack_from(view, pos)
        if n < FIXED.size or n > MAX_RECORD:
            return records, Break(seq, pos, f"record length {n} is out of range", False)
        start = pos + LEN.size
        if start + n > len(view):
            have = len(view) - start
            if _torn_prefix_fits(view, start, seq, prev):
                return records, Break(seq, pos, f"file ends inside the record ({have} of {n} bytes)", True)
            return records, Break(seq, pos, f"unrecognised bytes ({have} of a claimed {n}) where seq {seq} should start", False)
        magic, version, type_, flags, reserved, rseq, ts, prev_hash, signer, epoch, clen = FIXED.unpack_from(view, start)
        sig_len = MLDSA65_SIGNATURE_BYTES if flags & FLAG_SIGNED else 0
        problem = None
        if magic != MAGIC or version != VERSION or type_ not in TYPES:
            problem = "bad magic, version or type"
        elif flags & ~FLAG_SIGNED or reserved:
            problem = "unknown flags"
        elif clen > MAX_CONTENT or FIXED.size + clen + sig_len != n:
            problem = "inconsistent lengths"
        elif rseq != seq:
            problem = f"expected seq {seq}, found seq {rseq} (a record was removed or reordered, or one duplicated)"
        elif prev_hash != prev:
            problem = "previous-hash link broken (this record or the one before was changed)"
        elif (type_ != TYPE_DATA and epoch != rseq) or (type_ == TYPE_DATA and epoch >= rseq):
            problem = "bad key epoch"
        elif type_ != TYPE_DATA and not sig_len:
            problem = "key or repair record is not signed"
        if problem:
            return records, Break(seq, pos, problem, False)
        body_end = start + FIXED.size + clen
        body = bytes(view[start:body_end])
        rec = RawRecord(
            seq=rseq,
            type=type_,
            signed=bool(sig_len),
            timestamp_ns=ts,
            prev_hash=prev_hash,
            signer=signer,
            epoch=epoch,
            content=body[FIXED.size :],
            fixed=body[: FIXED.size],
            signature=bytes(view[body_end : body_end + sig_len]),
            hash=record_hash(body),
            offset=pos,
            end=start + n,
        )
        records.append(rec)
        pos, prev, seq = rec.end, rec.hash, seq + 1
    return records, None
