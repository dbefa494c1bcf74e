"""Redshift alternating users: TRUNCATE, grant options and user attributes (CREATEDB,
CREATEUSER) reach the clone, and the comparison fails when they differ."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from rotators.redshift.catalog import Target, differences, object_statements, privileges_of_pair
from tests.conftest import new_password, unique
from tests.helpers import value
from tests.redshift.test_alternating import pair  # noqa: F401  (fixture)

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.redshift import RedshiftStandIn
    from devtools.service import RotationService
    from tests.redshift.test_alternating import Pair


def _setup(redshift: RedshiftStandIn, db: str, user: str) -> None:
    for statement in (
        "CREATE SCHEMA ex",
        f'GRANT USAGE ON SCHEMA ex TO "{user}" WITH GRANT OPTION',
        "CREATE TABLE ex.t (id int)",
        f'GRANT TRUNCATE ON ex.t TO "{user}"',
        "CREATE TABLE ex.g (id int)",
        f'GRANT SELECT ON ex.g TO "{user}" WITH GRANT OPTION',
        "CREATE FUNCTION ex.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "REVOKE EXECUTE ON FUNCTION ex.f() FROM PUBLIC",
        f'GRANT EXECUTE ON FUNCTION ex.f() TO "{user}" WITH GRANT OPTION',
    ):
        redshift.execute(statement, dbname=db)


def _probe(redshift: RedshiftStandIn, db: str, who: str) -> tuple[bool, ...]:
    rows = redshift.execute(
        "SELECT has_table_privilege(%(u)s, 'ex.t', 'TRUNCATE'), "
        "has_table_privilege(%(u)s, 'ex.g', 'SELECT WITH GRANT OPTION'), "
        "has_schema_privilege(%(u)s, 'ex', 'USAGE WITH GRANT OPTION'), "
        "has_function_privilege(%(u)s, 'ex.f()', 'EXECUTE WITH GRANT OPTION'), "
        "(SELECT usecreatedb FROM pg_user WHERE usename = %(u)s)",
        {"u": who},
        dbname=db,
    )
    return tuple(rows[0])


def test_truncate_grant_options_and_attributes_reach_the_clone(
    redshift: RedshiftStandIn,
    pair: Pair,  # noqa: F811
    service: RotationService,
    sm_client: SecretsManagerClient,
) -> None:
    db, user, clone = pair.db, pair.user, pair.clone
    _setup(redshift, db, user)
    redshift.execute(f'ALTER USER "{user}" CREATEDB')
    service.rotate(pair.handler, pair.arn)
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == clone
    assert _probe(redshift, db, user) == (True, True, True, True, True)
    assert _probe(redshift, db, clone) == _probe(redshift, db, user)


def test_clone_drift_is_undone_at_the_next_rotations(
    redshift: RedshiftStandIn,
    pair: Pair,  # noqa: F811
    service: RotationService,
    sm_client: SecretsManagerClient,
) -> None:
    db, user, clone = pair.db, pair.user, pair.clone
    _setup(redshift, db, user)
    service.rotate(pair.handler, pair.arn)
    redshift.execute(f'ALTER USER "{clone}" CREATEDB')
    redshift.execute(f'GRANT INSERT ON ex.g TO "{clone}" WITH GRANT OPTION', dbname=db)
    redshift.execute(f'REVOKE GRANT OPTION FOR USAGE ON SCHEMA ex FROM "{clone}"', dbname=db)
    for _ in range(2):
        service.rotate(pair.handler, pair.arn)
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == clone
    assert _probe(redshift, db, clone) == _probe(redshift, db, user) == (True, True, True, True, False)
    rows = redshift.execute("SELECT has_table_privilege(%s, 'ex.g', 'INSERT')", (clone,), dbname=db)
    assert rows == [(False,)]


def test_the_comparison_sees_grant_options_truncate_and_attributes(
    redshift: RedshiftStandIn,
    pair: Pair,  # noqa: F811
    service: RotationService,
) -> None:
    """Differences only in what the old catalog could not read still fail the comparison."""
    db, user, clone = pair.db, pair.user, pair.clone
    _setup(redshift, db, user)
    service.rotate(pair.handler, pair.arn)
    redshift.execute(f'REVOKE TRUNCATE ON ex.t FROM "{clone}"', dbname=db)
    redshift.execute(f'REVOKE GRANT OPTION FOR SELECT ON ex.g FROM "{clone}"', dbname=db)
    redshift.execute(f'ALTER USER "{clone}" CREATEDB')

    def run(statement: str, params: tuple[object, ...]) -> list[list[object]]:
        # psycopg2 reads every % as a placeholder: the LIKE patterns' own are doubled.
        escaped = re.sub(r"%(?!s)", "%%", statement)
        return [list(row) for row in redshift.execute(escaped, params, dbname=db)]

    wanted, held = privileges_of_pair(run, user, clone, master=True)
    found = differences(wanted, held)
    assert "+TRUNCATE on table ex.t" in found
    assert "+SELECT WITH GRANT OPTION on table ex.g" in found
    assert "-CREATEDB on user attribute CREATEDB" in found


def test_statements_split_grant_options() -> None:
    table, grantee = Target("table", "t", "s"), "c"
    wanted = {table: frozenset({"SELECT", "SELECT WITH GRANT OPTION", "INSERT"})}
    assert object_statements(wanted, {}, grantee) == [
        'GRANT INSERT ON TABLE "s"."t" TO "c"',
        'GRANT SELECT ON TABLE "s"."t" TO "c" WITH GRANT OPTION',
    ]
    held = {table: frozenset({"SELECT", "SELECT WITH GRANT OPTION", "DELETE", "DELETE WITH GRANT OPTION"})}
    assert object_statements({table: frozenset({"SELECT"})}, held, grantee) == [
        'REVOKE DELETE ON TABLE "s"."t" FROM "c"',
        'REVOKE GRANT OPTION FOR SELECT ON TABLE "s"."t" FROM "c"',
    ]
    attribute = Target("attribute", "CREATEDB")
    assert object_statements({}, {attribute: frozenset({"CREATEDB"})}, grantee) == [
        'ALTER USER "c" NOCREATEDB'
    ]


@pytest.mark.parametrize(
    ("acl", "expected"),
    [("{c=r*a/o}", {"SELECT", "SELECT WITH GRANT OPTION", "INSERT"}), ("{c=r/o}", {"SELECT"})],
)
def test_default_acl_grant_options(acl: str, expected: set[str]) -> None:
    from rotators.redshift.catalog import default_grants

    assert default_grants(acl, "c") == frozenset(expected)


def test_the_originals_own_default_privileges_reach_the_clone(
    redshift: RedshiftStandIn,
    pair: Pair,  # noqa: F811
    service: RotationService,
    sm_client: SecretsManagerClient,
) -> None:
    """The original grants SELECT on the tables it creates to a reporting user: the
    clone, once current, does the same for its tables, and keeps doing so (no drift)."""
    db, user, clone = pair.db, pair.user, pair.clone
    reporting = unique("reporting")
    redshift.create_user(reporting, new_password())
    redshift.execute(
        f'ALTER DEFAULT PRIVILEGES FOR USER "{user}" GRANT SELECT ON TABLES TO "{reporting}" '
        "WITH GRANT OPTION",
        dbname=db,
    )
    for _ in range(3):
        service.rotate(pair.handler, pair.arn)
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == clone
    redshift.execute(f'SET ROLE "{clone}"; CREATE TABLE public.made_by_clone (id int)', dbname=db)
    rows = redshift.execute(
        "SELECT has_table_privilege(%s, 'public.made_by_clone', 'SELECT WITH GRANT OPTION'), "
        "has_table_privilege(%s, 'public.made_by_clone', 'INSERT')",
        (reporting, reporting),
        dbname=db,
    )
    assert rows == [(True, False)]
