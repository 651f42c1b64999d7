"""BARS batches <-> the feed's wire messages: one Arrow IPC record batch per message.

The batch carries the BARS columns plus ``seq`` (uint64), each row's sequence number in the
server's log.  Encoding and decoding are whole-batch Arrow operations (no per-bar loop);
``decode_batch`` checks the framing (IPC bytes, row count, ``seq``) and leaves the BARS
contract itself to the client's ``admit``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tinywindow.contracts import BARS
from tinywindow.data.feed import market_data_pb2 as pb
from tinywindow.errors import DataError, SchemaError

SEQ = pa.field("seq", pa.uint64(), nullable=False)

# Generous: a 16k-row batch is ~1 MB; gRPC's default receive limit is 4 MB.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


def encode_batch(bars: pa.Table, seq: np.ndarray, from_seq: int, to_seq: int) -> pb.BarBatch:
    """One message for the BARS rows ``bars`` numbered ``seq``, covering [from_seq, to_seq]."""
    table = bars.append_column(SEQ, pa.array(seq, pa.uint64()))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(table.num_rows, 1))
    return pb.BarBatch(
        from_seq=from_seq,
        to_seq=to_seq,
        num_rows=table.num_rows,
        arrow_ipc=sink.getvalue().to_pybytes(),
    )


def decode_batch(msg: pb.BarBatch, source: str | None = None) -> tuple[pa.Table, np.ndarray]:
    """The raw (not yet validated) BARS rows of a message and their sequence numbers.

    Raises ``DataError`` naming the field (``arrow_ipc``, ``num_rows``, ``seq``) and, for
    ``seq``, the row, when the message is not a well-formed batch of its range."""
    try:
        table = pa.ipc.open_stream(pa.py_buffer(msg.arrow_ipc)).read_all()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise DataError(
            f"feed batch {msg.from_seq}..{msg.to_seq}: not an Arrow IPC stream ({exc})",
            source=source,
            column="arrow_ipc",
        ) from None
    if table.num_rows != msg.num_rows:
        raise DataError(
            f"feed batch {msg.from_seq}..{msg.to_seq}: {table.num_rows} rows, header says {msg.num_rows}",
            source=source,
            column="num_rows",
        )
    if "seq" not in table.column_names:
        raise SchemaError("feed batch: missing column 'seq'", source=source, column="seq")
    col = table.column("seq")
    if col.null_count or not pa.types.is_integer(col.type):
        raise SchemaError(
            f"feed batch: column 'seq' has type {col.type}, expected uint64",
            source=source,
            column="seq",
        )
    seq = np.asarray(col.to_numpy(), dtype=np.int64)
    bad = np.zeros(len(seq), dtype=bool)
    bad[1:] = seq[1:] <= seq[:-1]
    bad |= (seq < msg.from_seq) | (seq > msg.to_seq)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"feed batch {msg.from_seq}..{msg.to_seq}: seq {seq[row]} out of order or out of range",
            source=source,
            row=row,
            column="seq",
        )
    return table.drop_columns(["seq"]), seq


def empty_bars() -> pa.Table:
    """What a rejected batch that could not be decoded hands to ``on_reject``."""
    return BARS.empty_table()
