"""Bearer-token authentication for the HTTP and gRPC endpoints.

Deployments hold only the SHA-256 digest of the token (never the token: deployment
arguments are visible in Serve's config and dashboard) and compare digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from tinywindow.core.log import register_secret
from tinywindow.errors import ConfigError
from tinywindow.serving.config import ServingConfig

TOKEN_ENV = "TW_SERVING__TOKEN"
MIN_TOKEN_CHARS = 16


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def serving_token(serving: ServingConfig) -> str:
    """The configured token (``serving.token`` / ``TW_SERVING__TOKEN``); refuses a missing or
    short one so an endpoint is never started open."""
    secret = serving.token.get_secret_value() if serving.token else os.environ.get(TOKEN_ENV, "")
    if len(secret) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"serving needs a bearer token of at least {MIN_TOKEN_CHARS} characters: set "
            f"{TOKEN_ENV} (or serving.token); e.g. {TOKEN_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            key="serving.token",
        )
    register_secret(secret)
    return secret


def new_token() -> str:
    return secrets.token_urlsafe(32)


def bearer_ok(header: str | None, digest: str) -> bool:
    """True when ``header`` is ``Bearer <token>`` for the token with ``digest``."""
    if not header:
        return False
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(token_digest(presented.strip()), digest)
