"""AWS clients with bounded time-outs and standard retries, built on first use.

Shared by the rotation functions (``common.secretsmanager``), the application kit
(``appkit.retrieval``) and engines of users managed through a service's API (the Redis
function's ElastiCache and MemoryDB clients, given to its engine by its handler), so every
side talks to AWS the same way; the module imports boto3 only when a client is built.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from common.settings import endpoint_url

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient


#: Seconds one AWS call attempt may take: connecting, then waiting for the answer.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10
#: Seconds one call attempt may take in all: a call starts only when they are left.
CALL_SECONDS = float(CONNECT_TIMEOUT + READ_TIMEOUT)


def _config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": 4, "mode": "standard"},
    )


def build_client() -> SecretsManagerClient:
    """A Secrets Manager client.

    Honours ``SECRETS_MANAGER_ENDPOINT`` (AWS's sample functions read it; a malformed one
    is a ConfigurationError naming it) and, through boto3 itself,
    ``AWS_ENDPOINT_URL_SECRETS_MANAGER``.
    """
    endpoint = endpoint_url(os.environ, "SECRETS_MANAGER_ENDPOINT")
    import boto3

    return boto3.client("secretsmanager", endpoint_url=endpoint, config=_config())


def build_ssm_client() -> Any:
    """A Systems Manager client (Parameter Store references to secrets).

    Honours ``SSM_ENDPOINT`` (declared in the template, so that ``sam local invoke`` can
    point reference reads at a local endpoint; checked as ``SECRETS_MANAGER_ENDPOINT``
    is) and, through boto3 itself, ``AWS_ENDPOINT_URL_SSM``.
    """
    endpoint = endpoint_url(os.environ, "SSM_ENDPOINT")
    import boto3

    return boto3.client("ssm", endpoint_url=endpoint, config=_config())


def service_client(service: str, region: str) -> Any:
    """A client of ``service`` in ``region`` (an engine keeps the ones it builds)."""
    import boto3

    return boto3.client(service, region_name=region, config=_config())  # type: ignore[call-overload]


def build_rds_client() -> RDSClient:
    """An RDS client (RDS-managed master secrets, readers and replicas); boto3 honours
    ``AWS_ENDPOINT_URL_RDS``."""
    import boto3

    return boto3.client("rds", config=_config())
