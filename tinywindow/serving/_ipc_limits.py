"""Size limits for Arrow IPC request bodies, checked *before* anything is decompressed.

A zstd/lz4-compressed IPC stream can expand 50,000x (58 KB -> 3 GB), so the reader must
know what a body will cost before Arrow allocates it.  Each IPC message carries its
metadata as a FlatBuffer (``Message.fbs``): a record batch states its row count and the
offset and length of every body buffer, and a compressed buffer begins with its
uncompressed length (int64 little-endian, -1 when stored raw).  This module reads just
those fields, with every read bounds-checked, and sums them over the whole stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.ipc as ipc

_HEADER_DICTIONARY_BATCH = 2
_HEADER_RECORD_BATCH = 3


class IpcLimitError(ValueError):
    """The stream is malformed (``too_large`` False) or over a limit (``too_large`` True)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class IpcCost:
    """What decoding a stream will allocate: rows of data batches and decoded body bytes."""

    rows: int
    decoded_bytes: int
    batches: int


class _FlatTable:
    """One FlatBuffer table; every read checks its bounds (the bytes are hostile)."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        vtable = pos - self._i32(pos)
        self.vt = vtable
        self.vt_size = self._u16(vtable)

    def _check(self, pos: int, size: int) -> None:
        if pos < 0 or pos + size > len(self.buf):
            raise IpcLimitError("corrupt IPC message metadata (offset out of range)")

    def _u16(self, pos: int) -> int:
        self._check(pos, 2)
        return int(struct.unpack_from("<H", self.buf, pos)[0])

    def _i32(self, pos: int) -> int:
        self._check(pos, 4)
        return int(struct.unpack_from("<i", self.buf, pos)[0])

    def _field(self, index: int) -> int:
        """Absolute position of field ``index``, or 0 when absent."""
        slot = 4 + 2 * index
        if slot + 2 > self.vt_size:
            return 0
        rel = self._u16(self.vt + slot)
        return self.pos + rel if rel else 0

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        if not at:
            return default
        self._check(at, struct.calcsize(fmt))
        return int(struct.unpack_from("<" + fmt, self.buf, at)[0])

    def table(self, index: int) -> _FlatTable | None:
        at = self._field(index)
        if not at:
            return None
        return _FlatTable(self.buf, at + self._u32(at))

    def structs(self, index: int, fmt: str) -> list[tuple[int, ...]]:
        at = self._field(index)
        if not at:
            return []
        vec = at + self._u32(at)
        count = self._u32(vec)
        size = struct.calcsize("<" + fmt)
        self._check(vec + 4, count * size)
        return [struct.unpack_from("<" + fmt, self.buf, vec + 4 + k * size) for k in range(count)]

    def _u32(self, pos: int) -> int:
        self._check(pos, 4)
        return int(struct.unpack_from("<I", self.buf, pos)[0])


def _root(metadata: bytes) -> _FlatTable:
    if len(metadata) < 8:
        raise IpcLimitError("corrupt IPC message metadata (too short)")
    return _FlatTable(metadata, int(struct.unpack_from("<I", metadata, 0)[0]))


def _batch_cost(batch: _FlatTable, body: pa.Buffer | None, max_rows: int) -> tuple[int, int]:
    """(rows, decoded bytes) of one RecordBatch message."""
    rows = batch.scalar(0, "q")
    nodes = batch.structs(1, "qq")
    if rows < 0 or any(n[0] < 0 or n[0] > max(rows, max_rows) for n in nodes):
        raise IpcLimitError(f"record batch claims {rows} rows", too_large=rows > max_rows)
    compressed = batch.table(3) is not None
    data = memoryview(body) if body is not None else memoryview(b"")
    decoded = 0
    for offset, length in batch.structs(2, "qq"):
        if offset < 0 or length < 0 or offset + length > len(data):
            raise IpcLimitError("corrupt IPC record batch (buffer outside the message body)")
        if compressed and length >= 8:
            raw = int(struct.unpack_from("<q", data, offset)[0])
            decoded += length - 8 if raw == -1 else raw
            if raw < -1:
                raise IpcLimitError("corrupt IPC record batch (negative buffer length)")
        else:
            decoded += length
    return rows, decoded


def ipc_cost(data: bytes, *, max_rows: int, max_decoded_bytes: int) -> IpcCost:
    """The rows and decoded bytes of an IPC stream, read from its metadata alone; raises
    ``IpcLimitError`` as soon as a limit is passed (nothing is decompressed here)."""
    try:
        reader = ipc.MessageReader.open_stream(pa.py_buffer(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise IpcLimitError(f"not an Arrow IPC stream: {exc}") from None
    rows = decoded = batches = 0
    while True:
        try:
            message = reader.read_next_message()
        except StopIteration:
            break
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise IpcLimitError(f"not an Arrow IPC stream: {exc}") from None
        root = _root(message.metadata.to_pybytes())
        kind = root.scalar(1, "B")
        header = root.table(2)
        if header is None or kind not in (_HEADER_DICTIONARY_BATCH, _HEADER_RECORD_BATCH):
            continue  # the schema: small, checked by Arrow when it is read
        batch = header.table(1) if kind == _HEADER_DICTIONARY_BATCH else header
        if batch is None:
            raise IpcLimitError("corrupt IPC dictionary batch (no data)")
        n, size = _batch_cost(batch, message.body, max_rows)
        decoded += size
        batches += 1
        if kind == _HEADER_RECORD_BATCH:
            rows += n
        if rows > max_rows:
            raise IpcLimitError(f"more than {max_rows} rows (max_rows)", too_large=True)
        if decoded > max_decoded_bytes:
            raise IpcLimitError(
                f"decodes to more than {max_decoded_bytes} bytes (max_decoded_bytes)", too_large=True
            )
    return IpcCost(rows, decoded, batches)
