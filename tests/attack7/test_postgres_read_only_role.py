"""Attack round 7: a PostgreSQL reporting user whose sessions are read-only by default
(``ALTER ROLE ... SET default_transaction_read_only = on``, the usual way to make a
read-only application user): single user and alternating users, real server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from psycopg2 import sql

from common.errors import RotationError
from rotators.postgresql.engine import PostgresEngine
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import handler_for, labels, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


def test_a_read_only_by_default_user_rotates_its_own_password(
    postgres: PostgresServer,
    database: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Severity: medium-low (no lockout: the step fails and AWSCURRENT still logs in; but a
    common kind of user cannot use the single-user strategy, and the failure comes at
    setSecret, after a pending version is stored: the rotation is stuck until repaired).

    Expected: the engine's own session sets ``default_transaction_read_only = off`` (any
    role may) and the rotation completes; or createSecret refuses, naming the setting,
    before anything is stored. Actual: setSecret fails."""
    user, password = unique("reporting"), new_password()
    postgres.create_user(user, password)
    postgres.execute(
        sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(user))
    )
    arn = store_secret(sm_client, service, user, pg_secret(postgres, user, password, database))
    handler = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file)
    before = labels(sm_client, arn)
    try:
        service.rotate(handler, arn)
    except RotationError as error:
        assert postgres.can_login(user, password, database)
        stored = set(labels(sm_client, arn)) - set(before)
        pytest.fail(f"rotation failed ({error}); labels added: {sorted(stored)}")
    assert postgres.can_login(user, value(sm_client, arn, "AWSCURRENT")["password"], database)
