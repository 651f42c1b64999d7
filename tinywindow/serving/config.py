"""Configuration of serving: the gateway's host, ports, token, replicas, batching and limits.

Defined beside the package that uses it and composed into the root ``tinywindow.config.Config``."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from tinywindow.core.settings import PlacementResources, Section, config_error, require_ordered
from tinywindow.serving.limits import GatewayLimits


class ServingConfig(Section):
    host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    grpc_port: int = Field(default=9000, ge=0, le=65535)
    token: SecretStr | None = Field(default=None, max_length=4096)
    max_request_bytes: int = Field(default=4 * 1024**2, ge=1024, le=1024**3)
    min_replicas: int = Field(default=1, ge=0, le=10_000)
    max_replicas: int = Field(default=2, ge=1, le=10_000)
    replica_cpus: float = Field(default=0.25, gt=0, le=1024)
    replica_resources: PlacementResources = Field(default_factory=dict)  # Ray custom resources of each replica
    max_batch_size: int = Field(default=64, ge=1, le=100_000)
    batch_wait_timeout_s: float = Field(default=0.0, ge=0, le=60.0)  # 0: batch whatever queued during the last pass
    limits: GatewayLimits = Field(default_factory=GatewayLimits)  # hostile-input bounds (docs/reliability/gateway.md)

    @model_validator(mode="after")
    def _consistent(self) -> ServingConfig:
        require_ordered("serving", ("min_replicas", self.min_replicas), ("max_replicas", self.max_replicas))
        if self.http_port and self.http_port == self.grpc_port:
            raise config_error(
                f"serving.http_port and serving.grpc_port are both {self.http_port}: they need different ports",
                key="serving.grpc_port",
            )
        token = self.token.get_secret_value() if self.token is not None else ""
        if token != token.strip() or not token.isprintable():
            # a client's "Bearer <token>" header is stripped, so such a token could never match
            raise config_error(
                "serving.token has leading/trailing whitespace or control characters (value not shown)",
                key="serving.token",
            )
        return self
