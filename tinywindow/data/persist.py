"""The persistence hook of a data source: batches of bars written as Arrow IPC segments.

``SegmentSink`` is the seam: ``ArrowIpcSink`` writes plain Arrow IPC files atomically;
``tinywindow.crypto.store.EncryptedStore`` satisfies the same protocol with encrypted,
signed segments.  ``SegmentWriter`` buffers streamed batches and cuts a segment every
``segment_rows`` rows.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from tinywindow.data.base import concat_bars


@runtime_checkable
class SegmentSink(Protocol):
    def write(self, name: str, table: pa.Table) -> str:
        """Store ``table`` under ``name`` atomically; return where it went."""
        ...


class ArrowIpcSink:
    """Plain Arrow IPC files under a directory (temp file, fsync, rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def write(self, name: str, table: pa.Table) -> str:
        path = self.root / f"{name}.arrow"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                with ipc.new_file(fh, table.schema) as writer:
                    writer.write_table(table)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(path)

    def read(self, name: str) -> pa.Table:
        with ipc.open_file(self.root / f"{name}.arrow") as reader:
            return reader.read_all()


def segment_name(source: str, kind: str, table: pa.Table) -> str:
    """A name fixed by the content's time span and size: rewriting the same bars after a
    restart replaces the segment instead of duplicating it."""
    ts = table.column("ts").cast(pa.int64())
    lo, hi = pc.min(ts).as_py() or 0, pc.max(ts).as_py() or 0
    return f"{source}/{kind}-{lo:019d}-{hi:019d}-{table.num_rows}"


class SegmentWriter:
    """Buffers batches of one source and writes them as numbered segments."""

    def __init__(self, sink: SegmentSink, source: str, segment_rows: int = 1_000_000) -> None:
        self.sink = sink
        self.source = source
        self.segment_rows = segment_rows
        self._buffer: list[pa.Table] = []
        self._rows = 0
        self.segments: list[str] = []

    def add(self, table: pa.Table) -> list[str]:
        """Buffer ``table``; write a segment when enough rows are buffered."""
        if table.num_rows:
            self._buffer.append(table)
            self._rows += table.num_rows
        return self.flush() if self._rows >= self.segment_rows else []

    def flush(self) -> list[str]:
        """Write what is buffered (if anything) as one segment."""
        if not self._buffer:
            return []
        table = concat_bars(self._buffer)
        path = self.sink.write(segment_name(self.source, "bars", table), table)
        self._buffer, self._rows = [], 0
        self.segments.append(path)
        return [path]
