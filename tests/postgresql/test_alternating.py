"""Alternating users against the real server: the clone acts as the original."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.errors import DatabaseLoginError, DatabaseOperationError, SecretMismatchError
from devtools.service import LambdaContext
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import labels, store_secret, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.postgresql.conftest import AppUser


def run_sql(
    postgres: PostgresServer, user: str, password: str, dbname: str, statement: str
) -> list[tuple[Any, ...]]:
    connection = postgres.connect_as(user, password, dbname)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []
    finally:
        connection.close()


def create_and_expect_nothing_stored(
    postgres: PostgresServer,
    client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    arn: str,
    clone: str,
) -> None:
    """Run createSecret, which must fail (the caller states how) leaving no pending value
    and no clone; re-raises its error."""
    request = service.start(arn)
    try:
        handler(request.event("createSecret"), LambdaContext())
    finally:
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_secret_value(SecretId=arn, VersionId=request.token)
        assert postgres.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (clone,)) == []


@pytest.fixture
def alternating_arn(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    app_user: AppUser,
    master_arn: str,
) -> str:
    body = pg_secret(postgres, app_user.name, app_user.password, app_user.dbname, masterarn=master_arn)
    return store_secret(sm_client, service, f"{app_user.name}-alternating", body)


def test_three_rotations_alternate_and_share_privileges(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
    alternating_arn: str,
) -> None:
    original, clone, db = app_user.name, app_user.name + "_clone", app_user.dbname
    run_sql(postgres, original, app_user.password, db, "CREATE TABLE before_rotation (v int)")
    run_sql(postgres, original, app_user.password, db, "INSERT INTO before_rotation VALUES (1)")
    refused_during_rotations = 0

    def rotate() -> None:
        nonlocal refused_during_rotations
        before = postgres.failed_logins()
        service.rotate(handler, alternating_arn)
        refused_during_rotations += postgres.failed_logins() - before

    rotate()
    current = value(sm_client, alternating_arn, "AWSCURRENT")
    assert current["username"] == clone
    assert current["masterarn"] == value(sm_client, alternating_arn, "AWSPREVIOUS")["masterarn"]
    # The clone's sessions run as the original: same tables, same ownership.
    assert run_sql(postgres, clone, current["password"], db, "SELECT session_user, current_user") == [
        (clone, original)
    ]
    assert run_sql(postgres, clone, current["password"], db, "SELECT v FROM before_rotation") == [(1,)]

    # A grant given to the original after the first rotation reaches the clone.
    postgres.execute("CREATE TABLE granted_later (v int)", dbname=db)
    postgres.execute("INSERT INTO granted_later VALUES (2)", dbname=db)
    postgres.execute(f'GRANT SELECT ON granted_later TO "{original}"', dbname=db)
    assert run_sql(postgres, clone, current["password"], db, "SELECT v FROM granted_later") == [(2,)]
    # An object the clone creates is the original's.
    run_sql(postgres, clone, current["password"], db, "CREATE TABLE made_by_clone (v int)")
    owner = postgres.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_clone'", dbname=db)
    assert owner == [(original,)]

    rotate()
    current, previous = (
        value(sm_client, alternating_arn, "AWSCURRENT"),
        value(sm_client, alternating_arn, "AWSPREVIOUS"),
    )
    assert (current["username"], previous["username"]) == (original, clone)
    assert run_sql(postgres, original, current["password"], db, "SELECT count(*) FROM made_by_clone") == [
        (0,)
    ]
    # The previous user keeps working until the next rotation: applications switch at leisure.
    assert can_login(postgres, clone, previous["password"], db)
    assert not can_login(postgres, original, app_user.password, db)

    rotate()
    current, previous = (
        value(sm_client, alternating_arn, "AWSCURRENT"),
        value(sm_client, alternating_arn, "AWSPREVIOUS"),
    )
    assert (current["username"], previous["username"]) == (clone, original)
    assert can_login(postgres, clone, current["password"], db)
    assert can_login(postgres, original, previous["password"], db)
    assert refused_during_rotations == 0


def test_revoked_grant_is_revoked_for_the_clone_too(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
    alternating_arn: str,
) -> None:
    db = app_user.dbname
    postgres.execute("CREATE TABLE secret_table (v int)", dbname=db)
    postgres.execute(f'GRANT SELECT ON secret_table TO "{app_user.name}"', dbname=db)
    service.rotate(handler, alternating_arn)
    clone = value(sm_client, alternating_arn, "AWSCURRENT")
    assert run_sql(
        postgres, clone["username"], clone["password"], db, "SELECT count(*) FROM secret_table"
    ) == [(0,)]
    postgres.execute(f'REVOKE SELECT ON secret_table FROM "{app_user.name}"', dbname=db)
    import psycopg2

    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        run_sql(postgres, clone["username"], clone["password"], db, "SELECT count(*) FROM secret_table")


def test_each_step_twice_and_crash_retry(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
    alternating_arn: str,
) -> None:
    request = service.start(alternating_arn)
    for step in ("createSecret", "createSecret", "setSecret", "setSecret"):
        handler(request.event(step), LambdaContext())
    # The function dies here; Secrets Manager retries the whole rotation.
    for step in ("createSecret", "setSecret", "testSecret", "testSecret", "finishSecret", "finishSecret"):
        handler(request.event(step), LambdaContext())
    current = value(sm_client, alternating_arn, "AWSCURRENT")
    assert labels(sm_client, alternating_arn)["AWSCURRENT"] == request.token
    assert can_login(postgres, current["username"], current["password"], app_user.dbname)
    assert can_login(postgres, app_user.name, app_user.password, app_user.dbname)


def test_master_without_privilege_fails_cleanly(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    weak, weak_password = unique("weak"), new_password()
    postgres.create_user(weak, weak_password)  # no CREATEROLE
    master = store_secret(
        sm_client, service, weak, pg_secret(postgres, weak, weak_password, "postgres"), rotation=False
    )
    body = pg_secret(postgres, app_user.name, app_user.password, app_user.dbname, masterarn=master)
    arn = store_secret(sm_client, service, "weak-master", body)
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(DatabaseOperationError, match="42501: permission denied") as raised:
        handler(request.event("setSecret"), LambdaContext())
    assert weak_password not in str(raised.value)
    assert postgres.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_user.name + "_clone",)) == []
    assert can_login(postgres, app_user.name, app_user.password, app_user.dbname)


def test_broken_current_credentials_never_unlock_the_master(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
    master_arn: str,
) -> None:
    body = pg_secret(postgres, app_user.name, "not-the-password-1", app_user.dbname, masterarn=master_arn)
    arn = store_secret(sm_client, service, "confused-deputy", body)
    with pytest.raises(DatabaseLoginError, match="with the AWSCURRENT credentials"):
        create_and_expect_nothing_stored(postgres, sm_client, service, handler, arn, app_user.name + "_clone")


def test_master_for_another_server_is_refused(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
    master_arn: str,
) -> None:
    master = value(sm_client, master_arn, "AWSCURRENT") | {"port": postgres.port + 1}
    other = store_secret(sm_client, service, "other-master", master, rotation=False)
    body = pg_secret(postgres, app_user.name, app_user.password, app_user.dbname, masterarn=other)
    arn = store_secret(sm_client, service, "other-server", body)
    with pytest.raises(SecretMismatchError, match="the master secret is for"):
        create_and_expect_nothing_stored(postgres, sm_client, service, handler, arn, app_user.name + "_clone")


def test_clone_that_lost_its_membership_is_repaired(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
    alternating_arn: str,
) -> None:
    service.rotate(handler, alternating_arn)
    service.rotate(handler, alternating_arn)
    clone = app_user.name + "_clone"
    postgres.execute(f'REVOKE "{app_user.name}" FROM "{clone}"')
    postgres.execute(f'ALTER ROLE "{clone}" RESET role')
    service.rotate(handler, alternating_arn)
    current = value(sm_client, alternating_arn, "AWSCURRENT")
    assert current["username"] == clone
    assert run_sql(postgres, clone, current["password"], app_user.dbname, "SELECT current_user") == [
        (app_user.name,)
    ]


def test_drifted_clone_fails_test_secret_and_loses_nothing(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
    alternating_arn: str,
) -> None:
    """testSecret proves the clone acts as the original; when it does not, AWSCURRENT stays."""
    from common.errors import VerificationError

    request = service.start(alternating_arn)
    handler(request.event("createSecret"), LambdaContext())
    handler(request.event("setSecret"), LambdaContext())
    clone = app_user.name + "_clone"
    postgres.execute(f'ALTER ROLE "{clone}" RESET role')  # drift between setSecret and testSecret
    with pytest.raises(VerificationError, match=f"does not act as '{app_user.name}'"):
        handler(request.event("testSecret"), LambdaContext())
    assert value(sm_client, alternating_arn, "AWSCURRENT")["username"] == app_user.name
    assert can_login(postgres, app_user.name, app_user.password, app_user.dbname)
