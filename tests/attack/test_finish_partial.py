"""finishSecret makes two label moves: AWSCURRENT onto the new version, then AWSPENDING off
it. When the second is throttled (or a network blip, or the Lambda time-out, cuts it off)
the step fails after AWSCURRENT has moved. The documented behaviour: the new version is
AWSCURRENT and logs in, and a retry of finishSecret (as Secrets Manager makes) removes
AWSPENDING."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

from common.errors import RotationError
from devtools.service import STEPS, LambdaContext
from rotators.postgresql.engine import PostgresEngine
from tests.helpers import handler_for, labels, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.postgresql.conftest import AppUser


class FlakyClient:
    """The real client, whose Nth UpdateSecretVersionStage is throttled."""

    def __init__(self, client: SecretsManagerClient, fail_on: int) -> None:
        self._client, self._fail_on, self.calls = client, fail_on, 0

    def update_secret_version_stage(self, **arguments: Any) -> Any:
        self.calls += 1
        if self.calls == self._fail_on:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "UpdateSecretVersionStage",
            )
        return self._client.update_secret_version_stage(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_retried_finish_secret_completes_after_a_throttled_second_label_move(
    postgres: PostgresServer, sm_client: SecretsManagerClient, service: RotationService, app_user: AppUser
) -> None:
    """The throttled finishSecret fails with the project's error, leaving the new version
    AWSCURRENT (it logs in) and still AWSPENDING; the retry leaves it AWSCURRENT alone."""
    flaky = FlakyClient(sm_client, fail_on=2)
    handler = handler_for(
        PostgresEngine(), cast("SecretsManagerClient", flaky), DB_CA_BUNDLE=postgres.ca_file
    )
    request = service.start(app_user.arn)
    for step in STEPS[:3]:
        handler(request.event(step), LambdaContext())
    with pytest.raises(RotationError):
        handler(request.event("finishSecret"), LambdaContext())
    assert flaky.calls == 2
    moved = labels(sm_client, app_user.arn)
    assert (moved["AWSCURRENT"], moved["AWSPENDING"]) == (request.token, request.token)
    current = value(sm_client, app_user.arn, "AWSCURRENT")
    assert can_login(postgres, current["username"], current["password"], app_user.dbname)
    handler(request.event("finishSecret"), LambdaContext())
    after = labels(sm_client, app_user.arn)
    assert after["AWSCURRENT"] == request.token
    assert "AWSPENDING" not in after
