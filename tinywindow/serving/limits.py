"""The gateway's limits on hostile input, one frozen config section.

The root config holds it as ``serving.limits`` (``ServingConfig.limits``); ``serving_limits``
falls back to these defaults for a section without it.  ``serving.max_request_bytes``
(4 MiB) stays the cap on the bytes a client may send; these bound what those bytes may
become and how long a client may hold a slot.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GatewayLimits(BaseModel):
    """Bounds the gateway enforces before doing work for a request."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    max_rows: int = Field(default=100_000, ge=1, le=100_000_000, description="rows of features in one request")
    max_decoded_bytes: int = Field(
        default=64 * 1024**2, ge=1024, le=64 * 1024**3, description="bytes an Arrow IPC body may decode (decompress) to"
    )
    max_json_depth: int = Field(default=8, ge=3, le=64, description="nesting depth of a JSON body")
    max_symbol_chars: int = Field(default=32, ge=1, le=256, description="length of one symbol")
    body_read_timeout_s: float = Field(
        default=10.0, gt=0, le=3600.0, description="time a client has to send its whole request body"
    )
    max_concurrent_uploads: int = Field(
        default=32, ge=1, le=100_000, description="request bodies read at once per gateway replica; more get 503"
    )


def serving_limits(serving: Any) -> GatewayLimits:
    """``serving.limits`` of a ServingConfig, or the defaults where the section is absent."""
    limits = getattr(serving, "limits", None)
    return limits if isinstance(limits, GatewayLimits) else GatewayLimits()
