"""The test harness's stand-in for Secrets Manager's side must itself behave like AWS."""

from __future__ import annotations

from datetime import UTC
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


def test_describe_lists_only_labelled_versions_and_listing_has_creation_dates(
    sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """AWS's DescribeSecret omits versions without a label; ListSecretVersionIds gives
    each version's creation time (plain moto: the time of the call)."""
    import time

    arn = store_secret(sm_client, service, "s", '{"a": 1}')
    request = service.start(arn)
    sm_client.put_secret_value(
        SecretId=arn, ClientRequestToken=request.token, VersionStages=["AWSPENDING"], SecretString='{"a": 2}'
    )
    sm_client.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=request.token
    )
    assert request.token not in sm_client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    time.sleep(1.1)
    versions = sm_client.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
    assert request.token in {v["VersionId"] for v in versions}
    assert all(time.time() - v["CreatedDate"].timestamp() >= 1 for v in versions)


def test_unlabelled_versions_are_ordered_by_creation_date_not_listing_order() -> None:
    from datetime import datetime

    import boto3
    from botocore.stub import Stubber

    from common.secretsmanager import SecretStore

    client = boto3.client("secretsmanager", region_name="us-east-1")
    listing = {
        "Versions": [
            {"VersionId": "b" * 32, "CreatedDate": datetime(2026, 1, 2, tzinfo=UTC)},
            {
                "VersionId": "c" * 32,
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": datetime(2026, 1, 5, tzinfo=UTC),
            },
            {"VersionId": "d" * 32, "CreatedDate": datetime(2026, 1, 4, tzinfo=UTC)},
            {"VersionId": "a" * 32, "CreatedDate": datetime(2026, 1, 1, tzinfo=UTC)},
            {"VersionId": "e" * 32, "CreatedDate": datetime(2026, 1, 3, tzinfo=UTC)},
        ]
    }
    with Stubber(client) as stub:
        stub.add_response("list_secret_version_ids", listing)
        assert SecretStore(client).unlabelled_versions("arn", limit=3) == ["d" * 32, "e" * 32, "b" * 32]
