"""Alternating users: the clone holds exactly what the original holds, at every rotation.

Regression tests of an attack (branch ``attack1``): privileges, attributes and memberships
given to the clone itself survived rotations and a clone session reached them with
``SET ROLE NONE``; the original's role settings never applied to clone sessions. The
master user is as on Amazon RDS: CREATEROLE, not a superuser."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg2
import pytest

from common.errors import PermissionDeniedError, VerificationError
from devtools.service import LambdaContext
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


def run_as(
    postgres: PostgresServer, user: str, password: str, dbname: str, statements: list[str]
) -> list[tuple[Any, ...]]:
    """The rows of the last statement that returns any, in one session of ``user``."""
    connection = postgres.connect_as(user, password, dbname)
    connection.autocommit = True
    rows: list[tuple[Any, ...]] = []
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                rows = list(cursor.fetchall()) if cursor.description else rows
    finally:
        connection.close()
    return rows


def alternating_user(
    postgres: PostgresServer,
    database: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    master_arn: str,
) -> tuple[str, str, str]:
    """An original user owning table ``payroll`` (one row) in ``database``, and its
    alternating-users secret: (original, its password, the secret's ARN)."""
    original, password = unique("orig"), new_password()
    postgres.create_user(original, password)
    postgres.execute(
        f'CREATE TABLE payroll (salary int); ALTER TABLE payroll OWNER TO "{original}"', dbname=database
    )
    postgres.execute("INSERT INTO payroll VALUES (100000)", dbname=database)
    body = pg_secret(postgres, original, password, database, masterarn=master_arn)
    return original, password, store_secret(sm_client, service, unique("alt"), body)


@pytest.mark.parametrize("drift", ["table grant", "role attribute", "membership", "owned table"])
def test_what_the_clone_was_given_itself_is_taken_away_at_every_rotation(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
    drift: str,
) -> None:
    original, password, arn = alternating_user(postgres, database, sm_client, service, master_arn)
    service.rotate(handler, arn)  # creates the clone; AWSCURRENT is the clone
    clone = original + "_clone"
    if drift == "table grant":
        # Granted by the table's owner, the original: a grant the master may revoke.
        run_as(postgres, original, password, database, [f'GRANT SELECT ON payroll TO "{clone}"'])
        # The clone inherits the original's privileges as a member; the grant to the clone
        # itself is what must go.
        probe = [
            "SELECT count(*) > 0 FROM pg_class, aclexplode(relacl) AS acl "
            "WHERE relname = 'payroll' AND acl.grantee = session_user::regrole"
        ]
    elif drift == "role attribute":
        postgres.execute(f'ALTER ROLE "{clone}" CREATEDB')
        probe = ["SELECT rolcreatedb FROM pg_roles WHERE rolname = session_user"]
    elif drift == "membership":
        extra = unique("extra")
        postgres.execute(f'CREATE ROLE "{extra}"; GRANT "{extra}" TO "{clone}"')
        probe = [f"SELECT pg_has_role(session_user, '{extra}', 'MEMBER')"]
    else:
        postgres.execute(
            f'CREATE TABLE clones_own (v int); ALTER TABLE clones_own OWNER TO "{clone}"', dbname=database
        )
        postgres.execute("INSERT INTO clones_own VALUES (7)", dbname=database)
        probe = ["SELECT relowner::regrole::text = session_user FROM pg_class WHERE relname = 'clones_own'"]
    current = value(sm_client, arn, "AWSCURRENT")
    assert run_as(postgres, clone, current["password"], database, probe) == [(True,)]  # the drift is real
    for _ in range(2):  # the original's turn, then the clone's again
        service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == clone
    assert run_as(postgres, clone, current["password"], database, probe) == [(False,)]
    # The master lent itself memberships for REASSIGN and DROP OWNED, and gave them back.
    master = value(sm_client, master_arn, "AWSCURRENT")["username"]
    memberships = (
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s"
    )
    assert postgres.execute(memberships, (master,)) == [(0,)]
    # Nothing was dropped: a table the clone owned now belongs to the original.
    if drift == "owned table":
        assert postgres.execute(
            "SELECT relowner::regrole::text, (SELECT v FROM clones_own) "
            "FROM pg_class WHERE relname = 'clones_own'",
            dbname=database,
        ) == [(original, 7)]
    assert run_as(postgres, clone, current["password"], database, ["SELECT salary FROM payroll"]) == [
        (100000,)
    ]


def test_a_grant_the_master_cannot_revoke_stops_set_secret_and_fails_test_secret(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
) -> None:
    original, _, arn = alternating_user(postgres, database, sm_client, service, master_arn)
    service.rotate(handler, arn)
    clone = original + "_clone"
    postgres.execute("CREATE TABLE audit (v int)", dbname=database)  # the superuser's
    postgres.execute(f'GRANT SELECT ON audit TO "{clone}"', dbname=database)
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext())
    pending = value(sm_client, arn, "AWSPENDING")
    with pytest.raises(
        PermissionDeniedError, match=rf"could not make '{clone}' hold only .*table audit"
    ) as raised:
        handler(request.event("setSecret"), LambdaContext())
    assert pending["password"] not in str(raised.value)
    # One transaction: the original's password did not change either.
    with pytest.raises(psycopg2.OperationalError):
        run_as(postgres, original, pending["password"], database, ["SELECT 1"])
    # A grant made between setSecret and testSecret fails testSecret.
    postgres.execute(f'REVOKE SELECT ON audit FROM "{clone}"', dbname=database)
    handler(request.event("setSecret"), LambdaContext())
    handler(request.event("testSecret"), LambdaContext())
    handler(request.event("finishSecret"), LambdaContext())
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext())
    handler(request.event("setSecret"), LambdaContext())
    postgres.execute(f'GRANT SELECT ON audit TO "{clone}"', dbname=database)
    with pytest.raises(VerificationError, match=rf"holds more than '{original}'.*table audit"):
        handler(request.event("testSecret"), LambdaContext())


def test_an_attribute_only_a_superuser_may_change_is_refused_by_name(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
) -> None:
    original, password, arn = alternating_user(postgres, database, sm_client, service, master_arn)
    service.rotate(handler, arn)
    postgres.execute(f'ALTER ROLE "{original}_clone" REPLICATION')
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(PermissionDeniedError, match="only a superuser may change REPLICATION"):
        handler(request.event("setSecret"), LambdaContext())
    assert run_as(postgres, original, password, database, ["SELECT 1"]) == [(1,)]


def test_clone_sessions_get_the_originals_role_settings(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
) -> None:
    original, password, arn = alternating_user(postgres, database, sm_client, service, master_arn)
    schema = 'App "x", y'  # quoting that must survive the copy
    postgres.execute(
        f'CREATE SCHEMA "{schema.replace(chr(34), 2 * chr(34))}" AUTHORIZATION "{original}"', dbname=database
    )
    run_as(
        postgres,
        original,
        password,
        database,
        [f'CREATE TABLE "{schema.replace(chr(34), 2 * chr(34))}".orders (v int)'],
    )
    postgres.execute(f"ALTER ROLE \"{original}\" SET search_path = '{schema}', public")
    postgres.execute(f'ALTER ROLE "{original}" IN DATABASE "{database}" SET work_mem = \'5MB\'')
    query = ["SELECT count(*), current_setting('work_mem') FROM orders"]
    assert run_as(postgres, original, password, database, query) == [(0, "5MB")]
    service.rotate(handler, arn)  # the clone is created
    current = value(sm_client, arn, "AWSCURRENT")
    assert run_as(postgres, current["username"], current["password"], database, query) == [(0, "5MB")]
    # A setting the original drops, and one the clone alone was given, go at the next rotations.
    postgres.execute(f'ALTER ROLE "{original}" IN DATABASE "{database}" RESET work_mem')
    postgres.execute(f"ALTER ROLE \"{current['username']}\" SET statement_timeout = '1s'")
    service.rotate(handler, arn)
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    rows = run_as(
        postgres,
        current["username"],
        current["password"],
        database,
        ["SELECT count(*), current_setting('work_mem'), current_setting('statement_timeout') FROM orders"],
    )
    assert rows == [(0, "4MB", "0")]
