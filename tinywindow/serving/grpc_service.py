"""The ``TinyWindow`` gRPC service as Serve's proxy registers it: requests pass through
as raw bytes.

The generated ``add_TinyWindowServicer_to_server`` has the proxy parse each request with
``VotesRequest.FromString``; a corrupt message then fails inside grpc's server loop and the
client sees ``UNKNOWN``.  Registered here without a request deserializer, the bytes reach
the gateway, which parses them itself (``parse_request``) and answers a corrupt message with
``INVALID_ARGUMENT``.  Clients use the generated stub unchanged.
"""

from __future__ import annotations

from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from tinywindow.serving import votes_pb2 as pb
from tinywindow.serving.payload import PayloadError

SERVICE = "tinywindow.serving.v1.TinyWindow"
M = TypeVar("M", bound=Message)


def add_tinywindow_servicer(servicer: Any, server: Any) -> None:
    """``grpc_servicer_functions`` entry: the service with pass-through request bytes."""
    handlers = {
        "Votes": grpc.unary_unary_rpc_method_handler(
            servicer.Votes, request_deserializer=None, response_serializer=pb.VotesReply.SerializeToString
        ),
        "Signal": grpc.unary_unary_rpc_method_handler(
            servicer.Signal, request_deserializer=None, response_serializer=pb.SignalReply.SerializeToString
        ),
        "Models": grpc.unary_unary_rpc_method_handler(
            servicer.Models, request_deserializer=None, response_serializer=pb.ModelsReply.SerializeToString
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if hasattr(server, "add_registered_method_handlers"):  # grpcio >= 1.65 routes these first
        server.add_registered_method_handlers(SERVICE, handlers)


def parse_request(kind: type[M], raw: bytes | M) -> M:
    """A request message from the bytes the proxy passed on (a message passes through)."""
    if isinstance(raw, kind):
        return raw
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise PayloadError("request", f"expected {kind.__name__} bytes, got {type(raw).__name__}")
    try:
        return kind.FromString(bytes(raw))
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise PayloadError("request", f"not a valid {kind.__name__} message: {str(exc)[:200]}") from None
