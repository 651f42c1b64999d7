from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Bar(_message.Message):
    __slots__ = ("seq", "symbol", "ts_ns", "open", "high", "low", "close", "volume")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    seq: int
    symbol: str
    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    def __init__(self, seq: _Optional[int] = ..., symbol: _Optional[str] = ..., ts_ns: _Optional[int] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[float] = ...) -> None: ...

class BarBatch(_message.Message):
    __slots__ = ("bars", "from_seq", "to_seq")
    BARS_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    TO_SEQ_FIELD_NUMBER: _ClassVar[int]
    bars: _containers.RepeatedCompositeFieldContainer[Bar]
    from_seq: int
    to_seq: int
    def __init__(self, bars: _Optional[_Iterable[_Union[Bar, _Mapping]]] = ..., from_seq: _Optional[int] = ..., to_seq: _Optional[int] = ...) -> None: ...

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
