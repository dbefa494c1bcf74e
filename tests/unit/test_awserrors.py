"""One reading of AWS errors (``common.awserrors``) for every client: Secrets Manager,
RDS, and the Redis function's ElastiCache and MemoryDB users. Real botocore exceptions,
raised by a stand-in client (the unit tier: no service answers here)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from common.awserrors import AwsFailure
from common.errors import PermissionDeniedError, RdsError, SecretsManagerError
from common.rds import RdsDirectory
from common.secretsmanager import SecretStore
from rotators.redis.managed import ManagedUser, UserArn, WaitBudget

USER = UserArn.parse("arn:aws:elasticache:us-east-1:123456789012:user:app")


class Failing:
    """A client whose every call raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            raise self.error

        return call


ERRORS = [
    (
        ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Op"),
        "AccessDeniedException",
    ),
    (
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Op"),
        "ThrottlingException",
    ),
    (EndpointConnectionError(endpoint_url="https://service.invalid"), "EndpointConnectionError"),
]


@pytest.mark.parametrize(("error", "code"), ERRORS, ids=[code for _, code in ERRORS])
def test_every_client_reads_an_aws_error_the_same_way(error: Exception, code: str) -> None:
    denied = code == "AccessDeniedException"
    with pytest.raises(SecretsManagerError) as secrets:
        SecretStore(Failing(error)).describe("app")  # type: ignore[arg-type]
    assert (secrets.value.code, str(secrets.value)) == (code, f"DescribeSecret failed with {code}")
    with pytest.raises(RdsError) as rds:
        RdsDirectory(Failing(error))._shaped(  # type: ignore[arg-type]
            "DescribeDBInstances", lambda client: client.describe_db_instances()
        )
    assert rds.value.code == code
    expected = f"rds:DescribeDBInstances was refused ({code})" if denied else f"failed with {code}"
    assert expected in str(rds.value)
    with pytest.raises(PermissionDeniedError if denied else Exception) as managed:
        ManagedUser(USER, Failing(error), budget=WaitBudget(1), poll_seconds=0).describe()
    assert f"elasticache DescribeUsers on {USER.arn} failed with {code}" in str(managed.value)
    assert isinstance(managed.value, PermissionDeniedError) == denied


def test_an_error_that_is_not_aws_is_left_alone() -> None:
    assert AwsFailure.of(ValueError("x")) is None
    with pytest.raises(ValueError, match="not aws"):
        SecretStore(Failing(ValueError("not aws"))).describe("app")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not aws"):
        RdsDirectory(Failing(ValueError("not aws")))._shaped(  # type: ignore[arg-type]
            "DescribeDBInstances", lambda client: client.describe_db_instances()
        )


def test_a_message_is_masked() -> None:
    from common.redaction import register

    register("hunter2-secret-value")
    failure = AwsFailure.of(
        ClientError({"Error": {"Code": "X", "Message": "echo hunter2-secret-value"}}, "Op")
    )
    assert failure is not None and "hunter2-secret-value" not in failure.message
