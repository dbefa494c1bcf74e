"""Attack round 7: Redshift privilege mirroring with odd identifiers on the PostgreSQL
stand-in (devtools/redshift.py): a double quote, upper case, unicode, ``%s``/``%%`` (the
driver's paramstyle markers), ``$1`` and commas, in schema, table, column, function,
group and default-privilege names at once, through two rotations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.helpers import value
from tests.redshift.test_alternating import pair  # noqa: F401  (fixture)

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.redshift import RedshiftStandIn
    from devtools.service import RotationService
    from tests.redshift.test_alternating import Pair


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


NAMES = ['S"q', "UPPER Case", "ünï-ç😀", "p%s", "a%%b", "x, y", "$1", "t) TO x"]


@pytest.mark.parametrize("name", NAMES)
def test_odd_names_in_every_kind_mirror_through_two_rotations(
    redshift: RedshiftStandIn,
    pair: Pair,  # noqa: F811
    service: RotationService,
    sm_client: SecretsManagerClient,
    name: str,
) -> None:
    db, user, clone = pair.db, pair.user, pair.clone
    schema, table, column, function = q("s" + name), q("t" + name), q("c" + name), q("f" + name)
    group = q(("g" + name)[:60])
    for statement in (
        f"CREATE SCHEMA {schema}",
        f"CREATE TABLE {schema}.{table} (id int, {column} int)",
        f"CREATE FUNCTION {schema}.{function}(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 1'",
        f"GRANT USAGE ON SCHEMA {schema} TO {q(user)}",
        f"GRANT SELECT ON TABLE {schema}.{table} TO {q(user)} WITH GRANT OPTION",
        f"GRANT UPDATE ({column}) ON TABLE {schema}.{table} TO {q(user)}",
        f"REVOKE EXECUTE ON FUNCTION {schema}.{function}(integer) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {schema}.{function}(integer) TO {q(user)}",
    ):
        redshift.execute(statement, dbname=db)
    redshift.execute(f"CREATE GROUP {group}")
    redshift.execute(f"ALTER GROUP {group} ADD USER {q(user)}")
    relation = f"{schema}.{table}"
    probe = (
        "SELECT has_schema_privilege(%s, %s, 'USAGE'), "
        "has_table_privilege(%s, %s, 'SELECT WITH GRANT OPTION'), "
        "has_column_privilege(%s, %s, %s, 'UPDATE'), has_function_privilege(%s, %s, 'EXECUTE')"
    )
    fn = f"{schema}.{function}(integer)"

    def holds(who: str) -> list[tuple[bool, ...]]:
        args = (who, "s" + name, who, relation, who, relation, "c" + name, who, fn)
        return redshift.execute(probe, args, dbname=db)

    assert holds(user) == [(True, True, True, True)]
    service.rotate(pair.handler, pair.arn)
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == clone
    assert holds(clone) == [(True, True, True, True)]
    members = redshift.execute(
        "SELECT u.usename FROM pg_group g, pg_user u WHERE g.groname = %s AND u.usesysid = ANY(g.grolist)",
        (("g" + name)[:60],),
    )
    assert {row[0] for row in members} == {user, clone}
    # The original loses everything: the next rotation (clone current) takes it from the clone.
    for statement in (
        f"REVOKE ALL ON TABLE {schema}.{table} FROM {q(user)} CASCADE",
        f"REVOKE EXECUTE ON FUNCTION {schema}.{function}(integer) FROM {q(user)}",
    ):
        redshift.execute(statement, dbname=db)
    redshift.execute(f"ALTER GROUP {group} DROP USER {q(user)}")
    service.rotate(pair.handler, pair.arn)
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == user
    assert holds(clone)[0][1:] == (False, False, False)
