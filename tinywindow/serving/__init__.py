"""Serving contracts without Ray: bearer-token auth (``auth``), request/response payloads
validated at the boundary (``payload``), the limits on hostile input (``limits``, with the
pre-decompression Arrow IPC check in ``_ipc_limits``) and the gRPC service registration that
hands request bytes to the gateway (``grpc_service``).

Ray Serve deployments live in ``actors/serving.py`` and ``actors/gateway.py``.
"""
