"""Attack round 5 on issue 15's Redshift work: DROP privilege mirroring through the
stand-in's emulation (devtools/redshift.py), with table names a hostile or unlucky
schema owner may pick."""

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


@pytest.mark.parametrize("table", ["a, b", "x TO y", 'q"uote', "wé ON z"])
def test_drop_on_oddly_named_tables_reaches_the_clone(
    redshift: RedshiftStandIn,
    pair: Pair,  # noqa: F811
    service: RotationService,
    sm_client: SecretsManagerClient,
    table: str,
) -> None:
    r"""The original holds DROP (and SELECT) on a table whose quoted name holds a comma,
    `` TO ``, a double quote or `` ON ``: after a rotation the clone holds both, as the
    stand-in's catalog answers (Redshift would take these names as they are).
    Finding (stand-in only): for ``x TO y`` the stand-in's rewrite of a DROP grant
    (``TABLE_GRANT``'s non-greedy ``(.+?)\s+(TO|FROM)``) splits the quoted name at `` TO ``
    and PostgreSQL answers "invalid name syntax": the test setup itself fails, so no
    test can show the rotator on such a name."""
    db, user, clone = pair.db, pair.user, pair.clone
    quoted = '"' + table.replace('"', '""') + '"'
    redshift.execute(f"CREATE TABLE public.{quoted} (id int)", dbname=db)
    redshift.execute(f'GRANT DROP, SELECT ON TABLE public.{quoted} TO "{user}"', dbname=db)
    relation = f"public.{quoted}"
    probe = "SELECT has_table_privilege(%s, %s, 'DROP'), has_table_privilege(%s, %s, 'SELECT')"
    assert redshift.execute(probe, (user, relation, user, relation), dbname=db) == [(True, True)]
    service.rotate(pair.handler, pair.arn)
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == clone
    assert redshift.execute(probe, (clone, relation, clone, relation), dbname=db) == [(True, True)]


def test_a_schema_grant_option_the_clone_passed_on_stops_with_the_schema_named(
    redshift: RedshiftStandIn,
    pair: Pair,  # noqa: F811
    service: RotationService,
    sm_client: SecretsManagerClient,
) -> None:
    """The clone (current) used its USAGE grant option on a schema to give a third user
    USAGE; the original then loses the option. setSecret fails naming the schema and
    what to do, the third user keeps USAGE, and AWSCURRENT still logs in."""
    from common.errors import DatabaseOperationError
    from devtools.service import LambdaContext
    from tests.conftest import new_password, unique
    from tests.redshift.test_exact import _as_user

    db, user, clone = pair.db, pair.user, pair.clone
    redshift.execute('CREATE SCHEMA "s;x"', dbname=db)
    redshift.execute(f'GRANT USAGE ON SCHEMA "s;x" TO "{user}" WITH GRANT OPTION', dbname=db)
    third = unique("third")
    redshift.create_user(third, new_password())
    service.rotate(pair.handler, pair.arn)
    current = value(sm_client, pair.arn, "AWSCURRENT")
    assert current["username"] == clone
    _as_user(redshift, clone, current["password"], db, f'GRANT USAGE ON SCHEMA "s;x" TO "{third}"')
    redshift.execute(f'REVOKE GRANT OPTION FOR USAGE ON SCHEMA "s;x" FROM "{user}"', dbname=db)
    request = service.start(pair.arn)
    pair.handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(DatabaseOperationError, match=r"no CASCADE.*SCHEMA \"s;x\"") as failure:
        pair.handler(request.event("setSecret"), LambdaContext())
    assert current["password"] not in str(failure.value)
    rows = redshift.execute("SELECT has_schema_privilege(%s, 's;x', 'USAGE')", (third,), dbname=db)
    assert rows == [(True,)]
    assert value(sm_client, pair.arn, "AWSCURRENT")["username"] == clone
    session = redshift.connect_as(clone, current["password"], db)
    session.close()
