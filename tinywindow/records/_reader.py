"""Read a journal without opening it for writing: audit, then decrypt, nothing locked or changed.

``Journal(path)`` takes the writer's lock and may repair a torn tail; a projection (the SQL
store, the report) only reads.  This runs the same audit as ``tinywindow verify`` (chain,
every signature, head) and refuses any damage with an ``IntegrityError`` naming the record,
then decrypts the committed data records with the unlocked keystore.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tinywindow.crypto import journal_format as jf
from tinywindow.crypto.envelope import open_envelope
from tinywindow.crypto.fsutil import read_regular
from tinywindow.crypto.journal import DEK_LABEL, Record
from tinywindow.crypto.journal_audit import audit, head_path, load_head
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import IntegrityError

__all__ = ["read_records"]


def read_records(path: Path, keystore: KeyStore, after: int = -1) -> list[Record]:
    """Every committed data record of the journal at ``path`` with seq > ``after``, verified
    and decrypted, oldest first."""
    result = audit(read_regular(path), load_head(head_path(path)), keystore)
    if not result.report.ok:
        raise IntegrityError(f"journal {result.report.at(str(path)).describe()}")
    keys: dict[int, jf.RawRecord] = {r.seq: r for r in result.records if r.type == jf.TYPE_KEY}
    aeads: dict[int, AESGCM] = {}
    out = []
    for raw in result.records:
        if raw.type != jf.TYPE_DATA or raw.seq <= after:
            continue
        aead = aeads.get(raw.epoch)
        if aead is None:
            key_raw = keys.get(raw.epoch)
            if key_raw is None:
                raise IntegrityError(f"journal {path}: key record {raw.epoch} missing")
            aead = aeads[raw.epoch] = AESGCM(bytes(open_envelope(key_raw.content, keystore, label=DEK_LABEL)))
        try:
            plain = aead.decrypt(raw.content[:12], raw.content[12:], raw.fixed)
            (kind_len,) = struct.unpack_from(">H", plain, 0)
            kind = plain[2 : 2 + kind_len].decode("utf-8")
            payload = json.loads(plain[2 + kind_len :])
        except (InvalidTag, ValueError, struct.error):
            raise IntegrityError(f"journal {path}: record {raw.seq} does not decrypt") from None
        out.append(Record(raw.seq, kind, payload, raw.timestamp_ns, raw.signer.hex()))
    return out
