"""The journal: append-only, hash-chained, signed, encrypted records (orders, fills, risk
events, model promotions), replayed on restart.

* ``append(kind, payload) -> seq`` writes one signed record (fsync, then the head file).
  ``append_many`` writes a batch that is signed once, at its last record: all or nothing.
* Payloads are encrypted with a per-epoch data key carried in a key record (an envelope to
  the active key set); after ``keys rotate`` the next append starts a new epoch under the new
  key, and old epochs stay readable.
* ``<journal>.head`` names the last committed record (seq, hash, signature).  Open runs the same
  audit as ``tinywindow verify`` (``journal_audit.audit``, every signature checked) and acts on
  its verdict: any damage (a changed, missing, duplicated, reordered or cut committed record, a
  bad signature, a missing or corrupt head) is an ``IntegrityError`` naming the record, and the
  files are left byte-for-byte as they were.  Only a torn tail (an unfinished final write past
  the last signed record and the head) is cut; the cut bytes are kept beside the journal
  (``<journal>.torn-<offset>``) and a signed repair record notes offset, size and digest.
* ``records()`` re-reads the file, checks the chain up to the head this process trusts and
  decrypts: cheap (one SHA-256 + one AES-GCM per record) and deterministic.

Format: ``tinywindow.crypto.journal_format`` and ``docs/crypto-format.md``.  Replacing journal
*and* head with an older pair (a rollback) needs an outside anchor: store ``head()`` in the
portfolio checkpoint and compare on restart.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tinywindow.core.log import get_logger
from tinywindow.crypto import journal_format as jf
from tinywindow.crypto.config import CryptoConfig
from tinywindow.crypto.envelope import open_envelope, seal
from tinywindow.crypto.fsutil import atomic_write_local, read_regular
from tinywindow.crypto.journal_audit import (
    Audit,
    Head,
    VerifyReport,
    audit,
    head_path,
    load_head,
    repair_content,
    write_head,
)
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import IntegrityError, TransientError

__all__ = ["Journal", "Record", "VerifyReport"]
DEK_LABEL = "tinywindow/journal-dek"
_log = get_logger("crypto.journal")


@dataclass(frozen=True)
class Record:
    """One verified, decrypted journal record; ``timestamp`` is nanoseconds since the epoch (UTC)."""

    seq: int
    kind: str
    payload: dict[str, Any]
    timestamp: int
    key_id: str


def _encode_payload(kind: str, payload: dict[str, Any]) -> bytes:
    if not kind or len(kind.encode()) > 255:
        raise ValueError("journal record kind must be 1-255 bytes of UTF-8")
    if not isinstance(payload, dict):
        raise TypeError("journal payload must be a dict")
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    kind_bytes = kind.encode("utf-8")
    return struct.pack(">H", len(kind_bytes)) + kind_bytes + text.encode("utf-8")


class Journal:
    """An open journal file, locked for this process (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        keystore: KeyStore,
        clock: Callable[[], int] = time.time_ns,
        *,
        fsync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.head_path = head_path(self.path)
        self.keystore, self._clock, self._fsync = keystore, clock, fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = os.path.lexists(self.path)
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK, 0o600)
        except IsADirectoryError:
            raise IntegrityError(f"journal {self.path} is a folder, not a journal file") from None
        if not stat.S_ISREG(os.fstat(self._fd).st_mode):
            os.close(self._fd)
            raise IntegrityError(f"journal {self.path} is not a regular file")
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise TransientError(f"journal {self.path} is open in another process") from None
        try:
            self._open()
        except BaseException:
            created_empty = not existed and os.fstat(self._fd).st_size == 0
            self.close()
            if created_empty:  # leave the folder as it was
                self.path.unlink(missing_ok=True)
            raise

    @classmethod
    def from_config(
        cls,
        crypto: CryptoConfig,
        data_dir: str | Path,
        name: str,
        keystore: KeyStore | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> Journal:
        """``<crypto.journal_dir>/<name>.twj`` (under ``data_dir`` unless absolute), fsync per
        ``crypto.journal_fsync``, keystore from ``open_keystore(crypto, data_dir)`` unless given."""
        from tinywindow.crypto import open_keystore, under

        return cls(
            under(data_dir, crypto.journal_dir) / f"{name}.twj",
            keystore or open_keystore(crypto, data_dir),
            clock,
            fsync=crypto.journal_fsync,
        )

    # ------------------------------------------------------------------ open / repair
    def _open(self) -> None:
        data = self._read()
        result = audit(data, load_head(self.head_path), self.keystore)
        if not result.report.ok:
            raise IntegrityError(f"journal {result.report.at(str(self.path)).describe()}")
        self._dek: dict[int, AESGCM] = {}
        records = result.records
        if records:
            last = records[-1]
            self._last_seq, self._last_hash = last.seq, last.hash
            self._epoch = max(r.seq for r in records if r.type == jf.TYPE_KEY)
            self._epoch_signer = next(r.signer for r in records if r.seq == self._epoch)
        else:
            self._last_seq, self._last_hash, self._epoch = -1, jf.GENESIS, -1
        bodies: list[tuple[int, bytes]] = []
        if not records:
            bodies.append(self._key_body())  # seq 0 is always a key record
        if result.keep_end < len(data):
            bodies.append(self._cut_torn_tail(data, result.keep_end))
        if bodies:
            self._write(bodies, sign_last=True)
        elif result.head_stale:
            last = records[-1]
            write_head(self.head_path, Head(last.seq, last.hash, last.signer, last.signature), fsync=self._fsync)

    def _cut_torn_tail(self, data: bytes, keep_end: int) -> tuple[int, bytes]:
        """Keep the torn bytes beside the journal, cut them, and return the body of the signed
        repair record that notes the cut."""
        cut = data[keep_end:]
        _log.warning("journal %s: torn final write, cutting %d bytes at offset %d (kept in %s)",
                     self.path, len(cut), keep_end, self._torn_path(keep_end).name)
        atomic_write_local(self._torn_path(keep_end), cut)
        os.ftruncate(self._fd, keep_end)
        os.fsync(self._fd)
        return jf.TYPE_REPAIR, repair_content(keep_end, cut)

    def _torn_path(self, offset: int) -> Path:
        return self.path.with_name(f"{self.path.name}.torn-{offset}")

    def _read(self) -> bytes:
        return read_regular(self.path)

    # ------------------------------------------------------------------ writing
    def append(self, kind: str, payload: dict[str, Any]) -> int:
        """Journal one record (signed, durable when ``fsync``); its seq."""
        return self.append_many([(kind, payload)])[0]

    def append_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[int]:
        """Journal a batch signed once at its end: after a crash it is all there or not at all."""
        plaintexts = [_encode_payload(kind, payload) for kind, payload in items]
        if not plaintexts:
            return []
        bodies = []
        if self.keystore.active().key_id != self._epoch_signer:
            bodies.append(self._key_body())  # rotated since this epoch began
        first = self._last_seq + 1 + len(bodies)
        bodies.extend((jf.TYPE_DATA, plaintext) for plaintext in plaintexts)
        self._write(bodies, sign_last=True)
        return list(range(first, first + len(plaintexts)))

    def _key_body(self) -> tuple[int, bytes]:
        keys = self.keystore.active()
        dek = os.urandom(32)
        content = seal(dek, keys.public, keys, label=DEK_LABEL, backend=self.keystore.backend)
        seq = self._last_seq + 1
        self._epoch, self._epoch_signer = seq, keys.key_id
        self._dek[seq] = AESGCM(dek)
        return jf.TYPE_KEY, content

    def _write(self, bodies: Sequence[tuple[int, bytes]], *, sign_last: bool) -> None:
        keys = self.keystore.active()
        prev, seq = self._last_hash, self._last_seq
        frames, last_raw = [], None
        for i, (type_, content) in enumerate(bodies):
            seq += 1
            signed = type_ != jf.TYPE_DATA or (sign_last and i == len(bodies) - 1)
            ts = int(self._clock())
            epoch = self._epoch if type_ == jf.TYPE_DATA else seq
            if type_ == jf.TYPE_DATA:
                size = 12 + len(content) + 16
                fixed = jf.fixed_part(type_=type_, signed=signed, seq=seq, timestamp_ns=ts,
                                      prev_hash=prev, signer=keys.key_id, epoch=epoch, content_len=size)
                nonce = os.urandom(12)
                content = nonce + self._aead(epoch).encrypt(nonce, content, fixed)
            else:
                fixed = jf.fixed_part(type_=type_, signed=signed, seq=seq, timestamp_ns=ts,
                                      prev_hash=prev, signer=keys.key_id, epoch=epoch, content_len=len(content))
            body = fixed + content
            digest = jf.record_hash(body)
            signature = keys.sign(digest, jf.SIG_CONTEXT) if signed else b""
            frames.append(jf.frame(body, signature))
            last_raw = (seq, digest, keys.key_id, signature, signed)
            prev = digest
        view = memoryview(b"".join(frames))
        while view:  # a regular-file write is normally whole; loop for the rare short write
            view = view[os.write(self._fd, view) :]
        if self._fsync:
            os.fsync(self._fd)
        assert last_raw is not None
        self._last_seq, self._last_hash = last_raw[0], last_raw[1]
        write_head(self.head_path, Head(*last_raw[:4]), fsync=self._fsync)

    # ------------------------------------------------------------------ reading
    def records(self, after: int = -1) -> list[Record]:
        """Every data record with seq > ``after``, verified against the trusted head, decrypted."""
        raws, _ = jf.scan(self._read())
        raws = raws[: self._last_seq + 1]
        if len(raws) != self._last_seq + 1 or raws[-1].hash != self._last_hash:
            result = audit(self._read(), load_head(self.head_path), self.keystore)
            raise IntegrityError(f"journal {self.path} changed on disk: {result.report.describe()}")
        out = []
        for raw in raws:
            if raw.type == jf.TYPE_DATA and raw.seq > after:
                out.append(self._decrypt(raw))
        return out

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def _aead(self, epoch: int) -> AESGCM:
        """The data key of ``epoch``, unwrapped from its key record on first use."""
        aead = self._dek.get(epoch)
        if aead is None:
            key_raw = self._key_record(epoch)
            dek = bytes(open_envelope(key_raw.content, self.keystore, label=DEK_LABEL))
            aead = self._dek[epoch] = AESGCM(dek)
        return aead

    def _decrypt(self, raw: jf.RawRecord) -> Record:
        try:
            plain = self._aead(raw.epoch).decrypt(raw.content[:12], raw.content[12:], raw.fixed)
            (kind_len,) = struct.unpack_from(">H", plain, 0)
            kind = plain[2 : 2 + kind_len].decode("utf-8")
            payload = json.loads(plain[2 + kind_len :])
        except (InvalidTag, ValueError, struct.error):
            raise IntegrityError(f"journal {self.path}: record {raw.seq} does not decrypt") from None
        return Record(raw.seq, kind, payload, raw.timestamp_ns, raw.signer.hex())

    def _key_record(self, seq: int) -> jf.RawRecord:
        raws, _ = jf.scan(self._read())
        if seq >= len(raws) or raws[seq].type != jf.TYPE_KEY:
            raise IntegrityError(f"journal {self.path}: key record {seq} missing")
        return raws[seq]

    # ------------------------------------------------------------------ checks
    def hash_at(self, seq: int) -> str | None:
        """The hash (hex) of committed record ``seq``, or None past the head: lets a checkpoint
        that recorded ``head()`` check that the journal it continues is the same one."""
        if not 0 <= seq <= self._last_seq:
            return None
        raws, _ = jf.scan(self._read())
        return raws[seq].hash.hex() if seq < len(raws) else None

    def head(self) -> tuple[int, str]:
        """``(seq, hash hex)`` of the last record: store it in checkpoints to catch rollbacks."""
        return self._last_seq, self._last_hash.hex()

    def verify(self) -> VerifyReport:
        """Check every record's chain link and signature, and the head (the verdict open uses)."""
        return Journal.verify_file(self.path, self.keystore)

    @staticmethod
    def verify_file(path: str | Path, keys: Any) -> VerifyReport:
        """Audit a journal file with public keys only (no passphrase, no repair): the same
        verdict ``Journal(path)`` acts on.  ``IntegrityError`` for a file that is not regular."""
        p = Path(path)
        result: Audit = audit(read_regular(p), load_head(head_path(p)), keys)
        return result.report.at(str(p))

    def close(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
