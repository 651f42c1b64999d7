from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeatureRow(_message.Message):
    __slots__ = ("symbol", "ts_ns", "values")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    ts_ns: int
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, symbol: _Optional[str] = ..., ts_ns: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class FeatureRows(_message.Message):
    __slots__ = ("feature_names", "rows")
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[FeatureRow]
    def __init__(self, feature_names: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[FeatureRow, _Mapping]]] = ...) -> None: ...

class VotesRequest(_message.Message):
    __slots__ = ("agent", "latest_only", "arrow_ipc", "rows")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    LATEST_ONLY_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    agent: str
    latest_only: bool
    arrow_ipc: bytes
    rows: FeatureRows
    def __init__(self, agent: _Optional[str] = ..., latest_only: _Optional[bool] = ..., arrow_ipc: _Optional[bytes] = ..., rows: _Optional[_Union[FeatureRows, _Mapping]] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("symbol", "ts_ns", "agent", "model_version", "action", "confidence")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    ts_ns: int
    agent: str
    model_version: str
    action: int
    confidence: float
    def __init__(self, symbol: _Optional[str] = ..., ts_ns: _Optional[int] = ..., agent: _Optional[str] = ..., model_version: _Optional[str] = ..., action: _Optional[int] = ..., confidence: _Optional[float] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("agent", "feature", "lag", "contribution", "rank")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    agent: str
    feature: str
    lag: int
    contribution: float
    rank: int
    def __init__(self, agent: _Optional[str] = ..., feature: _Optional[str] = ..., lag: _Optional[int] = ..., contribution: _Optional[float] = ..., rank: _Optional[int] = ...) -> None: ...

class Signal(_message.Message):
    __slots__ = ("symbol", "ts_ns", "action", "confidence", "agreement", "votes", "reason", "decided", "explanations")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_FIELD_NUMBER: _ClassVar[int]
    EXPLANATIONS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    ts_ns: int
    action: int
    confidence: float
    agreement: float
    votes: int
    reason: str
    decided: bool
    explanations: _containers.RepeatedCompositeFieldContainer[Explanation]
    def __init__(self, symbol: _Optional[str] = ..., ts_ns: _Optional[int] = ..., action: _Optional[int] = ..., confidence: _Optional[float] = ..., agreement: _Optional[float] = ..., votes: _Optional[int] = ..., reason: _Optional[str] = ..., decided: _Optional[bool] = ..., explanations: _Optional[_Iterable[_Union[Explanation, _Mapping]]] = ...) -> None: ...

class VotesReply(_message.Message):
    __slots__ = ("votes",)
    VOTES_FIELD_NUMBER: _ClassVar[int]
    votes: _containers.RepeatedCompositeFieldContainer[Vote]
    def __init__(self, votes: _Optional[_Iterable[_Union[Vote, _Mapping]]] = ...) -> None: ...

class SignalReply(_message.Message):
    __slots__ = ("votes", "signals")
    VOTES_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    votes: _containers.RepeatedCompositeFieldContainer[Vote]
    signals: _containers.RepeatedCompositeFieldContainer[Signal]
    def __init__(self, votes: _Optional[_Iterable[_Union[Vote, _Mapping]]] = ..., signals: _Optional[_Iterable[_Union[Signal, _Mapping]]] = ...) -> None: ...

class ModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Model(_message.Message):
    __slots__ = ("agent", "version", "status")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    agent: str
    version: str
    status: str
    def __init__(self, agent: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class ModelsReply(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...
