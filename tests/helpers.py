"""Test helpers shared by every engine's tests: secrets, labels, handlers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from common.handler import RotationFunction
from common.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.engine import Engine
    from devtools.service import RotationService


def store_secret(
    client: SecretsManagerClient,
    service: RotationService,
    name: str,
    body: dict[str, Any] | str,
    *,
    rotation: bool = True,
) -> str:
    """Create a secret (its first version is AWSCURRENT) and enable rotation; its ARN."""
    text = body if isinstance(body, str) else json.dumps(body)
    arn = client.create_secret(Name=name, SecretString=text)["ARN"]
    if rotation:
        service.enable_rotation(arn)
    return arn


def labels(client: SecretsManagerClient, secret_id: str) -> dict[str, str]:
    """Label -> version id."""
    versions = client.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    return {label: version for version, stages in versions.items() for label in stages}


def move_current(client: SecretsManagerClient, secret_id: str, token: str) -> str:
    """Move AWSCURRENT onto version ``token`` as the first of finishSecret's two label
    moves does (AWSPENDING stays on it), as a function that dies right after would leave
    it; the version AWSCURRENT left."""
    old = labels(client, secret_id)["AWSCURRENT"]
    client.update_secret_version_stage(
        SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=old
    )
    return old


def value(client: SecretsManagerClient, secret_id: str, label: str) -> dict[str, Any]:
    response = client.get_secret_value(SecretId=secret_id, VersionStage=label)
    result: dict[str, Any] = json.loads(response["SecretString"])
    return result


def handler_for(
    engine: Engine[Any], client: SecretsManagerClient, *, rds_client: RDSClient | None = None, **environ: str
) -> RotationFunction[Any]:
    """A handler as a Lambda container would build it, with this test's clients."""
    return RotationFunction(
        engine, client=client, settings=Settings.from_environ(environ), rds_client=rds_client
    )


def local_client(endpoint: str) -> SecretsManagerClient:
    """A client of the local Secrets Manager endpoint (moto's server)."""
    import boto3

    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


class Clock:
    """A clock a test moves by hand (``clock.now += 60``), for caches with a time limit."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
