"""The persistence hook of a data source: batches of bars written as Arrow IPC segments.

``SegmentSink`` is the seam; on disk it is always ``tinywindow.crypto.store.EncryptedStore``
(Arrow IPC segments encrypted and signed, written atomically): every byte TinyWindow stores
goes through the crypto layer.  ``EncryptedSink`` is the picklable recipe an actor receives
and opens in its own process (unlocked keys never travel).  ``SegmentWriter`` buffers
streamed batches and cuts a segment every ``segment_rows`` rows.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc

from tinywindow.crypto.config import CryptoConfig
from tinywindow.data.base import concat_bars
from tinywindow.errors import IntegrityError


@runtime_checkable
class SegmentSink(Protocol):
    def write(self, name: str, table: pa.Table) -> str:
        """Store ``table`` under ``name`` atomically; return where it went."""
        ...


@dataclass(frozen=True)
class EncryptedSink:
    """How to open the configured EncryptedStore inside the process that writes.

    Holds the ``crypto`` section (no secrets) and the ``data_dir`` its paths are under; the
    keystore is unlocked where it is called, with the passphrase from that process's
    environment (``crypto.passphrase_env``).
    """

    crypto: CryptoConfig
    data_dir: str

    @classmethod
    def from_config(cls, crypto: CryptoConfig, data_dir: str | os.PathLike[str]) -> EncryptedSink:
        return cls(crypto, os.fspath(data_dir))

    def __call__(self) -> SegmentSink:
        from tinywindow.crypto.store import EncryptedStore

        return EncryptedStore.from_config(self.crypto, self.data_dir)


def segment_name(source: str, kind: str, table: pa.Table) -> str:
    """A name fixed by the content: its time span (so names sort in time order), its size and
    a digest of its (symbol, ts) keys.  Rewriting the same bars after a restart replaces the
    segment instead of duplicating it; different bars never share a name."""
    ts = table.column("ts").cast(pa.int64())
    lo, hi = pc.min(ts).as_py() or 0, pc.max(ts).as_py() or 0
    digest = hashlib.sha256(ts.to_numpy().tobytes())
    digest.update("\x00".join(table.column("symbol").cast(pa.string()).to_pylist()).encode())
    return f"{source}/{kind}-{lo:019d}-{hi:019d}-{table.num_rows}-{digest.hexdigest()[:12]}"


_CONTENT_NAME = re.compile(
    r"^(?P<source>.+)/(?P<kind>[A-Za-z0-9_]+)-(?P<lo>-?\d+)-(?P<hi>-?\d+)-(?P<rows>\d+)-(?P<digest>[0-9a-f]{12})$"
)


def is_content_addressed(name: str) -> bool:
    """Whether ``name`` has the shape ``segment_name`` gives (source/kind-lo-hi-rows-digest)."""
    return _CONTENT_NAME.match(name) is not None


def check_segment_name(name: str, table: pa.Table) -> None:
    """Refuse a content-addressed segment whose bars do not hash to its name (``IntegrityError``
    naming it): the name/digest binding, checked after decryption.  Other names pass."""
    m = _CONTENT_NAME.match(name)
    if m is None:
        return
    try:
        expected = segment_name(m["source"], m["kind"], table)
    except (KeyError, pa.ArrowException, TypeError, ValueError) as exc:
        raise IntegrityError(f"segment {name!r}: content cannot be hashed ({exc})") from None
    if expected != name:
        raise IntegrityError(
            f"segment {name!r}: its bars hash to {expected.rsplit('/', 1)[-1]!r}, not to its name "
            "(content swapped or renamed)"
        )


def read_segment(store: Any, name: str) -> pa.Table:
    """``store.read(name)`` (signature, label and ciphertext checked there) plus the
    name/digest binding of content-addressed segments."""
    table: pa.Table = store.read(name)
    check_segment_name(name, table)
    return table


class SegmentWriter:
    """Buffers batches of one source and writes them as segments of at most
    ``segment_rows`` rows."""

    def __init__(self, sink: SegmentSink, source: str, segment_rows: int = 1_000_000) -> None:
        self.sink = sink
        self.source = source
        self.segment_rows = segment_rows
        self._buffer: list[pa.Table] = []
        self._rows = 0
        self.segments: list[str] = []

    def add(self, table: pa.Table) -> list[str]:
        """Buffer ``table``; write segments once ``segment_rows`` rows are buffered."""
        if table.num_rows:
            self._buffer.append(table)
            self._rows += table.num_rows
        return self.flush() if self._rows >= self.segment_rows else []

    def flush(self) -> list[str]:
        """Write everything buffered, ``segment_rows`` rows per segment."""
        if not self._buffer:
            return []
        table = concat_bars(self._buffer)
        self._buffer, self._rows = [], 0
        written = []
        for start in range(0, table.num_rows, self.segment_rows):
            piece = table.slice(start, self.segment_rows)
            written.append(self.sink.write(segment_name(self.source, "bars", piece), piece))
        self.segments.extend(written)
        return written
