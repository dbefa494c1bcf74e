"""A secret whose user is the master user itself (alternating users, masterarn naming the
master secret): rotating it must never change the master user's password, which the
master secret, and through it every other alternating secret, depends on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.errors import RotationError
from tests.conftest import pg_secret, unique
from tests.helpers import store_secret, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


def test_a_secret_cannot_rotate_the_master_users_own_password(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
) -> None:
    """Two rotations of the self-referring secret (refused or not, with the project's
    error) leave the master secret logging in."""
    master = value(sm_client, master_arn, "AWSCURRENT")
    body = pg_secret(postgres, master["username"], master["password"], database, masterarn=master_arn)
    arn = store_secret(sm_client, service, unique("self"), body)
    outcomes = []
    for _ in range(2):
        try:
            service.rotate(handler, arn)
        except RotationError as error:
            outcomes.append(type(error).__name__)
            break
        outcomes.append("rotated")
    assert can_login(postgres, master["username"], master["password"], "postgres"), (
        f"rotations {outcomes}: the master secret no longer logs in (its user's password was changed)"
    )
