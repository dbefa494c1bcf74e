"""finishSecret makes two label moves; when the second call fails (throttling, a network
blip, the Lambda time-out) the step fails after having moved AWSCURRENT: "a failed step
moves no label" does not hold (the README documents the order and the retry)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.errors import RotationError
from devtools.service import STEPS, LambdaContext
from rotators.postgresql.engine import PostgresEngine
from tests.helpers import handler_for, labels


class FlakyClient:
    """The real client, whose Nth UpdateSecretVersionStage is throttled."""

    def __init__(self, client: Any, fail_on: int) -> None:
        self._client, self._fail_on, self._calls = client, fail_on, 0

    def update_secret_version_stage(self, **arguments: Any) -> Any:
        self._calls += 1
        if self._calls == self._fail_on:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "UpdateSecretVersionStage",
            )
        return self._client.update_secret_version_stage(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_failed_finish_secret_moves_no_label(postgres, sm_client, service, app_user) -> None:
    handler = handler_for(PostgresEngine(), FlakyClient(sm_client, fail_on=2), DB_CA_BUNDLE=postgres.ca_file)
    request = service.start(app_user.arn)
    for step in STEPS[:3]:
        handler(request.event(step), LambdaContext())
    before = labels(sm_client, app_user.arn)
    with pytest.raises(RotationError):
        handler(request.event("finishSecret"), LambdaContext())
    assert labels(sm_client, app_user.arn) == before, "finishSecret failed after moving AWSCURRENT"
