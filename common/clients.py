"""AWS clients with bounded time-outs and standard retries, built on first use.

Shared by the rotation functions (``common.secretsmanager``) and the application kit
(``appkit.retrieval``), so both sides talk to AWS the same way; the module imports boto3
only when a client is built.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


def _config() -> Any:
    from botocore.config import Config

    return Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 4, "mode": "standard"})


def build_client() -> SecretsManagerClient:
    """A Secrets Manager client.

    Honours ``SECRETS_MANAGER_ENDPOINT`` (AWS's sample functions read it) and, through
    boto3 itself, ``AWS_ENDPOINT_URL_SECRETS_MANAGER``.
    """
    import boto3

    endpoint = os.environ.get("SECRETS_MANAGER_ENDPOINT") or None
    return boto3.client("secretsmanager", endpoint_url=endpoint, config=_config())


def build_ssm_client() -> Any:
    """A Systems Manager client (Parameter Store references to secrets); boto3 honours
    ``AWS_ENDPOINT_URL_SSM``."""
    import boto3

    return boto3.client("ssm", config=_config())
