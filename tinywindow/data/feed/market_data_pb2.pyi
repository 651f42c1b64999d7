from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class BarBatch(_message.Message):
    __slots__ = ("from_seq", "to_seq", "num_rows", "arrow_ipc")
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    TO_SEQ_FIELD_NUMBER: _ClassVar[int]
    NUM_ROWS_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    from_seq: int
    to_seq: int
    num_rows: int
    arrow_ipc: bytes
    def __init__(self, from_seq: _Optional[int] = ..., to_seq: _Optional[int] = ..., num_rows: _Optional[int] = ..., arrow_ipc: _Optional[bytes] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("symbols", "after_seq")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    after_seq: int
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., after_seq: _Optional[int] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("symbols", "start_ns", "end_ns")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    start_ns: int
    end_ns: int
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ...) -> None: ...

class SymbolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SymbolsReply(_message.Message):
    __slots__ = ("symbols", "last_seq")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    last_seq: int
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., last_seq: _Optional[int] = ...) -> None: ...
