"""The test harness's stand-in for Secrets Manager's side must itself behave like AWS."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.helpers import labels, store_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.service import RotationService


def test_pending_version_value_cannot_be_changed(
    sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """AWS refuses PutSecretValue that changes an existing version; plain moto overwrites."""
    arn = store_secret(sm_client, service, "s", '{"a": 1}')
    request = service.start(arn)

    def put(text: str) -> None:
        sm_client.put_secret_value(
            SecretId=arn, ClientRequestToken=request.token, VersionStages=["AWSPENDING"], SecretString=text
        )

    put('{"a": 2}')
    put('{"a": 2}')  # same data: idempotent
    with pytest.raises(sm_client.exceptions.ResourceExistsException):
        put('{"a": 3}')
    stored = sm_client.get_secret_value(SecretId=arn, VersionId=request.token)["SecretString"]
    assert stored == '{"a": 2}'


def test_start_registers_a_valueless_pending_version(
    sm_client: SecretsManagerClient, service: RotationService
) -> None:
    arn = store_secret(sm_client, service, "s", '{"a": 1}')
    request = service.start(arn)
    assert labels(sm_client, arn)["AWSPENDING"] == request.token
    assert request.arn == arn and request.rotation_token
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)
    assert sm_client.describe_secret(SecretId=arn)["RotationEnabled"] is True


def test_start_refuses_while_a_rotation_is_in_progress(
    sm_client: SecretsManagerClient, service: RotationService
) -> None:
    arn = store_secret(sm_client, service, "s", '{"a": 1}')
    request = service.start(arn)
    sm_client.put_secret_value(
        SecretId=arn, ClientRequestToken=request.token, VersionStages=["AWSPENDING"], SecretString='{"a": 2}'
    )
    with pytest.raises(RuntimeError, match="still in progress"):
        service.start(arn)
