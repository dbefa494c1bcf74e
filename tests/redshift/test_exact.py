"""Redshift alternating users: TRUNCATE, grant options and user attributes (CREATEDB,
CREATEUSER) reach the clone, and the comparison fails when they differ."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from common.errors import DatabaseOperationError
from devtools.service import STEPS, LambdaContext
from rotators.redshift.catalog import Target, differences, object_statements, privileges_of_pair
from tests.conftest import new_password, unique
from tests.helpers import value
from tests.redshift.test_alternating import pair  # noqa: F401  (fixture)

if TYPE_CHECKING:
    from collections.abc import Callable

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


_EXACT = (
    "has_table_privilege(%(u)s, 'ex.t', 'TRUNCATE')",
    "has_table_privilege(%(u)s, 'ex.g', 'SELECT WITH GRANT OPTION')",
    "has_schema_privilege(%(u)s, 'ex', 'USAGE WITH GRANT OPTION')",
    "has_function_privilege(%(u)s, 'ex.f()', 'EXECUTE WITH GRANT OPTION')",
    "(SELECT usecreatedb FROM pg_user WHERE usename = %(u)s)",
)
_DROP_AND_LIMIT = (
    "has_table_privilege(%(u)s, 'ex.t', 'DROP')",
    "has_table_privilege(%(u)s, 'ex.g', 'DROP WITH GRANT OPTION')",
    "has_table_privilege(%(u)s, 'ex.g', 'DROP')",
    "(SELECT useconnlimit FROM pg_user_info WHERE usename = %(u)s)",
)


def _probe(
    redshift: RedshiftStandIn, db: str, who: str, columns: tuple[str, ...] = _EXACT
) -> tuple[object, ...]:
    rows = redshift.execute(f"SELECT {', '.join(columns)}", {"u": who}, dbname=db)
    return tuple(rows[0])


def _catalog(redshift: RedshiftStandIn, db: str) -> Callable[[str, tuple[object, ...]], list[list[object]]]:
    """The catalog's reads, run straight on the stand-in as its superuser."""

    def run(statement: str, params: tuple[object, ...]) -> list[list[object]]:
        # psycopg2 reads every % as a placeholder: the LIKE patterns' own are doubled.
        escaped = re.sub(r"%(?!s)", "%%", statement)
        return [list(row) for row in redshift.execute(escaped, params, dbname=db)]

    return run


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
    """Differences only in what the old catalog could not read still fail the comparison
    (DROP on the stand-in's emulation, and the connection limit, too)."""
    db, user, clone = pair.db, pair.user, pair.clone
    _setup(redshift, db, user)
    redshift.execute(f'GRANT DROP ON ex.t TO "{user}"', dbname=db)
    service.rotate(pair.handler, pair.arn)
    redshift.execute(f'REVOKE DROP ON ex.t FROM "{clone}"', dbname=db)
    redshift.execute(f'ALTER USER "{clone}" CONNECTION LIMIT 3')
    redshift.execute(f'REVOKE TRUNCATE ON ex.t FROM "{clone}"', dbname=db)
    redshift.execute(f'REVOKE GRANT OPTION FOR SELECT ON ex.g FROM "{clone}"', dbname=db)
    redshift.execute(f'ALTER USER "{clone}" CREATEDB')

    wanted, held = privileges_of_pair(_catalog(redshift, db), user, clone, master=True)
    found = differences(wanted, held)
    assert "+DROP,TRUNCATE on table ex.t" in found
    assert "+SELECT WITH GRANT OPTION on table ex.g" in found
    assert "-CREATEDB on user attribute CREATEDB" in found
    assert "+UNLIMITED on CONNECTION LIMIT" in found and "-3 on CONNECTION LIMIT" in found


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


def test_drop_privileges_and_the_connection_limit_reach_the_clone_and_follow_the_original(
    redshift: RedshiftStandIn,
    pair: Pair,  # noqa: F811
    service: RotationService,
    sm_client: SecretsManagerClient,
) -> None:
    """Redshift's table DROP privilege (emulated on the stand-in: see devtools.redshift)
    and the user's CONNECTION LIMIT, given, changed and taken back."""
    db, user, clone = pair.db, pair.user, pair.clone
    _setup(redshift, db, user)
    redshift.execute(f'GRANT DROP ON ex.t TO "{user}"', dbname=db)
    redshift.execute(f'GRANT DROP, SELECT ON TABLE ex.g TO "{user}" WITH GRANT OPTION', dbname=db)
    redshift.execute(f'ALTER USER "{user}" CONNECTION LIMIT 7')
    service.rotate(pair.handler, pair.arn)
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == clone
    assert _probe(redshift, db, user, _DROP_AND_LIMIT) == (True, True, True, "7")
    assert _probe(redshift, db, clone, _DROP_AND_LIMIT) == _probe(redshift, db, user, _DROP_AND_LIMIT)

    redshift.execute(f'REVOKE DROP ON ex.t FROM "{user}"', dbname=db)
    redshift.execute(f'REVOKE GRANT OPTION FOR DROP ON TABLE ex.g FROM "{user}"', dbname=db)
    redshift.execute(f'ALTER USER "{user}" CONNECTION LIMIT UNLIMITED')
    redshift.execute(f'ALTER USER "{clone}" CONNECTION LIMIT 2')  # drift, undone too
    service.rotate(pair.handler, pair.arn)
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == user
    assert _probe(redshift, db, user, _DROP_AND_LIMIT) == (False, False, True, "UNLIMITED")
    assert _probe(redshift, db, clone, _DROP_AND_LIMIT) == _probe(redshift, db, user, _DROP_AND_LIMIT)


def _as_user(redshift: RedshiftStandIn, user: str, password: str, db: str, statement: str) -> None:
    """Run ``statement`` as ``user`` through the bridge."""
    session = redshift.connect_as(user, password, db)
    try:
        session.autocommit = True
        session.cursor().execute(statement)
    finally:
        session.close()


def test_a_grant_option_the_clone_passed_on_stops_the_rotation_with_what_to_do(
    redshift: RedshiftStandIn,
    pair: Pair,  # noqa: F811
    service: RotationService,
    sm_client: SecretsManagerClient,
) -> None:
    """Redshift's REVOKE has no CASCADE. When the original loses a grant option the clone
    has used, the rotation takes nothing from the third user: it stops, saying what to
    revoke, with AWSCURRENT untouched; once that is revoked, the next rotation completes."""
    db, user, clone = pair.db, pair.user, pair.clone
    _setup(redshift, db, user)
    third, third_password = unique("third"), new_password()
    redshift.create_user(third, third_password)
    redshift.execute(f'GRANT USAGE ON SCHEMA ex TO "{third}"', dbname=db)
    service.rotate(pair.handler, pair.arn)
    current = value(sm_client, pair.arn, "AWSCURRENT")
    assert current["username"] == clone
    _as_user(redshift, clone, current["password"], db, f'GRANT SELECT ON ex.g TO "{third}"')
    redshift.execute(f'REVOKE GRANT OPTION FOR SELECT ON ex.g FROM "{user}" CASCADE', dbname=db)
    since = len(redshift.statements)
    request = service.start(pair.arn)
    pair.handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(
        DatabaseOperationError,
        match=r"a privilege or grant option .* no longer holds: .*has no CASCADE; revoke what .*\"ex\".\"g\"",
    ):
        pair.handler(request.event("setSecret"), LambdaContext())
    assert (
        third
        in redshift.execute(
            "SELECT array_to_string(relacl, ',') FROM pg_class WHERE oid = 'ex.g'::regclass", dbname=db
        )[0][0]
    )
    assert "CASCADE" not in " ".join(sent.text for sent in redshift.statements[since:])
    assert value(sm_client, pair.arn, "AWSCURRENT") == current
    assert redshift.whoami(clone, current["password"], db)[0] == clone
    _as_user(redshift, clone, current["password"], db, f'REVOKE SELECT ON ex.g FROM "{third}"')
    # Secrets Manager retries the step; the rotation completes.
    for step in STEPS[1:]:
        pair.handler(request.event(step), LambdaContext())
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == user
    assert _probe(redshift, db, clone) == _probe(redshift, db, user)
