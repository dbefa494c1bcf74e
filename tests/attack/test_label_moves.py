"""An operator (or a script) moves AWSCURRENT onto the pending version after createSecret,
before setSecret: a label move the fault matrix does not make. The documented behaviour:
the rest of that rotation may leave AWSCURRENT on a password the database was never given
(the steps see the token as AWSCURRENT and have nothing to do), nothing is lost (the
previous version still logs in), and the next full rotation recovers: AWSCURRENT logs in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.errors import RotationError
from devtools.service import STEPS, LambdaContext
from tests.helpers import labels, move_current, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.postgresql.conftest import AppUser


def test_next_rotation_recovers_from_awscurrent_moved_onto_pending_before_set_secret(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    """The remaining steps succeed or fail with the project's error; AWSPREVIOUS (the
    credentials of before) still logs in; one more full rotation leaves AWSCURRENT on a
    new version that logs in and no AWSPENDING behind."""
    request = service.start(app_user.arn)
    handler(request.event("createSecret"), LambdaContext())
    before = move_current(sm_client, app_user.arn, request.token)
    for step in STEPS[1:]:
        try:
            handler(request.event(step), LambdaContext())
        except RotationError:
            break
    assert labels(sm_client, app_user.arn)["AWSPREVIOUS"] == before
    previous = value(sm_client, app_user.arn, "AWSPREVIOUS")
    assert can_login(postgres, previous["username"], previous["password"], app_user.dbname), (
        "the credentials of before the label move no longer log in"
    )
    recovery = service.rotate(handler, app_user.arn)
    after = labels(sm_client, app_user.arn)
    assert after["AWSCURRENT"] == recovery.token
    assert "AWSPENDING" not in after
    current = value(sm_client, app_user.arn, "AWSCURRENT")
    assert can_login(postgres, current["username"], current["password"], app_user.dbname), (
        "after the next full rotation AWSCURRENT still does not log in"
    )
