"""boto3 clients with bounded time-outs and standard retries.

The rotation core's Secrets Manager client and the service clients that engines of
managed users are given (ElastiCache, MemoryDB) share these settings. boto3 is imported
here, lazily, never by an engine: an engine receives :func:`service_client` from its
handler and keeps the clients it builds for the container's life.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.config import Config


def client_config() -> Config:
    """Connect and read time-outs, four attempts in standard retry mode."""
    from botocore.config import Config

    return Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 4, "mode": "standard"})


def service_client(service: str, region: str) -> Any:
    """A new client of ``service`` in ``region``."""
    import boto3

    return boto3.client(service, region_name=region, config=client_config())  # type: ignore[call-overload]
