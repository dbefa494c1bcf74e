"""Operator label moves the fault matrix does not make."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import RotationError
from devtools.service import STEPS, LambdaContext
from tests.helpers import labels, value
from tests.postgresql.conftest import can_login


@pytest.mark.parametrize("after", ["createSecret"])
def test_operator_moves_awscurrent_onto_pending_before_set_secret(
    postgres, sm_client, service, handler, app_user, after
) -> None:
    """An operator (or a script) moves AWSCURRENT onto the pending version after
    createSecret, before setSecret. Every later step then sees the token as AWSCURRENT and
    does nothing ("nothing to do"): the rotation reports success with AWSCURRENT on a
    password the database has never been given."""
    request = service.start(app_user.arn)
    handler(request.event("createSecret"), LambdaContext())
    current = labels(sm_client, app_user.arn)["AWSCURRENT"]
    sm_client.update_secret_version_stage(
        SecretId=app_user.arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=request.token,
        RemoveFromVersionId=current,
    )
    outcomes = []
    for step in STEPS[1:]:
        try:
            handler(request.event(step), LambdaContext())
            outcomes.append((step, "ok"))
        except RotationError as error:
            outcomes.append((step, type(error).__name__))
    secret = value(sm_client, app_user.arn, "AWSCURRENT")
    assert can_login(postgres, secret["username"], secret["password"], app_user.dbname), (
        f"steps {outcomes} left AWSCURRENT on credentials the database refuses"
    )
