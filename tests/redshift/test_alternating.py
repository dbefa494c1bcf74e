"""Redshift alternating users on the stand-in: everything the original holds reaches the
clone (tables, views, routines, groups, roles, columns, default privileges), in a fixed
number of catalog reads, and the pending user's proof neither fails on schemas it cannot
see nor passes when the clone lacks something."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import VerificationError
from devtools.service import STEPS, LambdaContext
from rotators.redshift.catalog import reads
from rotators.redshift.engine import RedshiftEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.redshift import RedshiftStandIn
    from devtools.service import RotationService


@dataclass
class Pair:
    db: str
    user: str
    clone: str
    master: str
    arn: str
    handler: RotationFunction[Any]


@pytest.fixture
def pair(redshift: RedshiftStandIn, sm_client: SecretsManagerClient, service: RotationService) -> Pair:
    """A user owning its own database, a superuser master, and the alternating secret."""
    db, user, password = unique("db"), unique("app"), new_password()
    redshift.create_database(db)
    redshift.create_user(user, password, db)
    master, master_password = unique("admin"), new_password()
    redshift.create_master(master, master_password)
    secret = {"engine": "redshift", "host": redshift.host, "port": redshift.port, "dbname": db}
    master_arn = store_secret(
        sm_client,
        service,
        master,
        secret | {"username": master, "password": master_password, "dbname": "dev"},
        rotation=False,
    )
    arn = store_secret(
        sm_client, service, user, secret | {"username": user, "password": password, "masterarn": master_arn}
    )
    handler = handler_for(RedshiftEngine(), sm_client, DB_CA_BUNDLE=redshift.ca_file)
    return Pair(db, user, user + "_clone", master, arn, handler)


def mismatches(redshift: RedshiftStandIn, db: str, user: str, clone: str) -> list[tuple[Any, ...]]:
    """PostgreSQL's own answer, independent of the rotator's catalog: every relation and
    routine outside the system schemas on which the two users' privileges differ."""
    return redshift.execute(
        "SELECT c.oid::regclass::text, p FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, "
        "unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES']) p "
        "WHERE c.relkind IN ('r', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND has_table_privilege(%s, c.oid, p) <> has_table_privilege(%s, c.oid, p) "
        "UNION ALL SELECT f.oid::regprocedure::text, 'EXECUTE' FROM pg_proc f "
        "JOIN pg_namespace n ON n.oid = f.pronamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND has_function_privilege(%s, f.oid, 'EXECUTE') <> has_function_privilege(%s, f.oid, 'EXECUTE')",
        (user, clone, user, clone),
        dbname=db,
    )


def test_a_warehouse_reaches_the_clone_and_follows_the_original(
    redshift: RedshiftStandIn, pair: Pair, service: RotationService, sm_client: SecretsManagerClient
) -> None:
    db, user, clone = pair.db, pair.user, pair.clone
    schemas = redshift.create_warehouse(db, user, schemas=2, tables=50, views=5, functions=3)
    owner, group, role, shared = unique("etl"), unique("analysts"), unique("reader"), unique("shared")
    redshift.create_user(owner, new_password())
    redshift.create_role(role)
    redshift.create_datashare_database(shared)
    for statement in (
        f'CREATE GROUP "{group}"',
        f'ALTER GROUP "{group}" ADD USER "{user}"',
        # Another team's schema: the original has no USAGE on it (testSecret used to fail).
        "CREATE SCHEMA team_b",
        "CREATE TABLE team_b.secrets (id int)",
        "CREATE TABLE team_b.by_role (id int)",
        f'GRANT USAGE ON SCHEMA team_b TO "{role}"',
        f'GRANT SELECT ON team_b.by_role TO "{role}"',
        f'GRANT "{role}" TO "{user}"',
        "CREATE TABLE s00.people (name text, email text, salary int)",
        f'GRANT SELECT (name, email) ON s00.people TO "{user}"',
        f'GRANT USAGE, CREATE ON SCHEMA s00 TO "{owner}"',
        f'ALTER DEFAULT PRIVILEGES FOR USER "{owner}" IN SCHEMA s00 GRANT SELECT ON TABLES TO "{user}"',
        f'ALTER DEFAULT PRIVILEGES FOR USER "{owner}" GRANT EXECUTE ON FUNCTIONS TO "{user}"',
        f'GRANT CREATE ON DATABASE "{shared}" TO "{user}"',
    ):
        redshift.execute(statement, dbname=db)
    before = len(redshift.statements)
    marks: dict[str, int] = {}
    service.rotate(
        pair.handler, pair.arn, on_step=lambda step: marks.update({step: len(redshift.statements)})
    )
    sent = [s.text for s in redshift.statements[before:]]
    reading = [read.statement for read in reads(user, clone, master=True)]
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == clone

    def reads_in(step: str, until: str | None) -> int:
        counted = redshift.count_sent(reading, since=marks[step])
        return counted - (redshift.count_sent(reading, since=marks[until]) if until else 0)

    # The privilege reads are the catalog's fixed statements, whatever the number of objects:
    # setSecret reads both users before, after the memberships and after the objects (10
    # each); the pending user's proof (testSecret, and finishSecret's again) reads what a
    # user may see of another (7).
    assert reads_in("setSecret", "testSecret") == 3 * 10
    assert reads_in("testSecret", "finishSecret") == 7
    assert reads_in("finishSecret", None) == 7
    # 50 tables and 5 views got their SELECT in one statement, not 55.
    assert sum(text.startswith("GRANT SELECT ON TABLE") for text in sent) == 1

    assert mismatches(redshift, db, user, clone) == []
    checks = redshift.execute(
        "SELECT has_table_privilege(%(c)s, 's00.t00000', 'INSERT'), "
        "has_table_privilege(%(c)s, 's00.v0000', 'SELECT'), "  # the materialised view
        "has_function_privilege(%(c)s, 's01.f001(integer)', 'EXECUTE'), "
        "has_function_privilege(%(c)s, 's00.p002(integer)', 'EXECUTE'), "  # the procedure
        "has_column_privilege(%(c)s, 's00.people', 'email', 'SELECT'), "
        "has_column_privilege(%(c)s, 's00.people', 'salary', 'SELECT'), "
        "has_table_privilege(%(c)s, 'team_b.secrets', 'SELECT'), "
        "pg_has_role(%(c)s, %(role)s, 'MEMBER'), pg_has_role(%(c)s, %(group)s, 'MEMBER'), "
        "(SELECT count(*) FROM pg_default_acl WHERE defaclacl::text LIKE '%%' || %(c)s || '=%%'), "
        "has_database_privilege(%(c)s, %(shared)s, 'CREATE'), "
        "has_database_privilege(%(u)s, %(shared)s, 'CREATE')",
        {"c": clone, "u": user, "role": role, "group": group, "shared": shared},
        dbname=db,
    )[0]
    assert checks == (True, True, True, True, True, False, False, True, True, 2, False, True)
    members = redshift.execute(
        "SELECT user_name FROM svv_user_grants WHERE role_name = %s", (role,), dbname=db
    )
    assert sorted(row[0] for row in members) == sorted([user, clone])
    assert set(schemas) == {"s00", "s01"}

    # The clone is current; what the original gains or loses reaches it all the same.
    redshift.execute(f'REVOKE SELECT ON s01.t00001 FROM "{user}"', dbname=db)
    redshift.execute(f'REVOKE "{role}" FROM "{user}"', dbname=db)
    redshift.execute(f'REVOKE SELECT (email) ON s00.people FROM "{user}"', dbname=db)
    redshift.execute(f'GRANT UPDATE ON s00.t00002 TO "{user}"', dbname=db)
    service.rotate(pair.handler, pair.arn)
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == user
    assert mismatches(redshift, db, user, clone) == []
    after = redshift.execute(
        "SELECT has_table_privilege(%(c)s, 's01.t00001', 'SELECT'), pg_has_role(%(c)s, %(role)s, 'MEMBER'), "
        "has_column_privilege(%(c)s, 's00.people', 'email', 'SELECT'), "
        "has_table_privilege(%(c)s, 's00.t00002', 'UPDATE')",
        {"c": clone, "role": role},
        dbname=db,
    )[0]
    assert after == (False, False, False, True)
    assert redshift.can_login(clone, value(sm_client, pair.arn, "AWSPREVIOUS")["password"], db)


def test_a_schema_the_original_cannot_use_does_not_stop_the_pending_users_proof(
    redshift: RedshiftStandIn, pair: Pair, service: RotationService, sm_client: SecretsManagerClient
) -> None:
    """testSecret reads as the pending user, who has no USAGE on another team's schema:
    it used to fail there with "permission denied for schema" at every rotation."""
    for statement in (
        "CREATE SCHEMA other_team",
        "CREATE TABLE other_team.ledger (id int)",
        "CREATE VIEW other_team.summary AS SELECT count(*) AS n FROM other_team.ledger",
        "CREATE FUNCTION other_team.total() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA mine",
        "CREATE TABLE mine.orders (id int)",
        f'GRANT USAGE ON SCHEMA mine TO "{pair.user}"',
        f'GRANT SELECT ON mine.orders TO "{pair.user}"',
    ):
        redshift.execute(statement, dbname=pair.db)
    for expected in (pair.clone, pair.user, pair.clone):
        service.rotate(pair.handler, pair.arn)
        assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == expected
    assert redshift.execute(
        "SELECT has_table_privilege(%s, 'mine.orders', 'SELECT')", (pair.clone,), dbname=pair.db
    ) == [(True,)]


def test_the_pending_users_proof_fails_when_the_clone_lacks_a_privilege(
    redshift: RedshiftStandIn, pair: Pair, service: RotationService, sm_client: SecretsManagerClient
) -> None:
    redshift.execute(
        f'CREATE TABLE public.orders (id int); GRANT SELECT ON public.orders TO "{pair.user}"', dbname=pair.db
    )
    request = service.start(pair.arn)
    for step in STEPS[:2]:
        pair.handler(request.event(step), LambdaContext())
    # Behind the rotation's back, between setSecret and testSecret.
    redshift.execute(f'REVOKE SELECT ON public.orders FROM "{pair.clone}"', dbname=pair.db)
    with pytest.raises(VerificationError, match=r"\+SELECT on table public\.orders"):
        pair.handler(request.event("testSecret"), LambdaContext())
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == pair.user
