"""Hostile input on PostgreSQL: user names with ``%`` (psycopg2's %-substitution must
never touch them), NUL bytes, and a failing password change named with its reason."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import pytest
from psycopg2 import sql

from common.errors import DatabaseOperationError
from devtools.service import LambdaContext
from tests.conftest import new_password, pg_secret
from tests.helpers import store_secret, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.postgresql.conftest import AppUser


def names(template: str) -> tuple[str, str]:
    """(the secret's user, the decoy the old code rotated instead): ``a%%b`` and ``a%b``."""
    suffix = secrets.token_hex(3)
    user = template.format(suffix=suffix)
    return user, user.replace("%%", "%")


def role_names(postgres: PostgresServer, pattern: str) -> set[str]:
    return {
        str(r[0]) for r in postgres.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (pattern,))
    }


@pytest.mark.parametrize("template", ["pct%user_{suffix}", "a%%b_{suffix}", "%s%%s%(x)s_{suffix}"])
def test_single_user_rotation_changes_exactly_its_own_role(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    template: str,
) -> None:
    user, decoy = names(template)
    password, decoy_password = new_password(), new_password()
    postgres.create_user(user, password)
    # CREATEROLE: the old code's ALTER ROLE on the decoy would have succeeded.
    postgres.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(user)))
    if decoy != user:
        postgres.create_user(decoy, decoy_password)
    arn = store_secret(
        sm_client, service, f"pct-{secrets.token_hex(3)}", pg_secret(postgres, user, password, database)
    )
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == user
    assert can_login(postgres, user, current["password"], database)
    assert not can_login(postgres, user, password, database)
    if decoy != user:
        assert can_login(postgres, decoy, decoy_password, database)
        assert not can_login(postgres, decoy, current["password"], database)


@pytest.mark.parametrize("template", ["pct%user_{suffix}", "a%%b_{suffix}"])
def test_alternating_users_clone_exactly_the_secrets_role(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
    template: str,
) -> None:
    user, decoy = names(template)
    password, decoy_password = new_password(), new_password()
    postgres.create_user(user, password)
    decoys = {decoy: decoy_password, f"{decoy}_clone": new_password()} if decoy != user else {}
    for name, secret in decoys.items():
        postgres.create_user(name, secret)
    body = pg_secret(postgres, user, password, database, masterarn=master_arn)
    arn = store_secret(sm_client, service, f"pct-alt-{secrets.token_hex(3)}", body)

    service.rotate(handler, arn)  # creates the clone and sets its password
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == f"{user}_clone"
    assert postgres.whoami(current["username"], current["password"], database)[:2] == (f"{user}_clone", user)
    service.rotate(handler, arn)  # the master sets the original's password
    current, previous = value(sm_client, arn, "AWSCURRENT"), value(sm_client, arn, "AWSPREVIOUS")
    assert current["username"] == user
    assert can_login(postgres, user, current["password"], database)
    assert can_login(postgres, f"{user}_clone", previous["password"], database)
    # The decoys keep their passwords and gained no member.
    for name, secret in decoys.items():
        assert can_login(postgres, name, secret, database), name
        members = postgres.execute(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname = %s",
            (name,),
        )
        assert members == [(0,)], name
    prefix = user.split("_")[0].replace("%", r"\%")
    assert role_names(postgres, f"{prefix}%") >= {user, f"{user}_clone"}


def test_a_refused_password_change_says_whose_and_why(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    # Every session of this user acts as another role, which may not alter it: ALTER ROLE
    # fails after a good login. (A session read-only by default no longer does: the
    # engine opens a read-write transaction, finding A7-10.)
    other = f"{app_user.name}_acting"
    names = {"user": sql.Identifier(app_user.name), "other": sql.Identifier(other)}
    postgres.execute(sql.SQL("CREATE ROLE {other}").format(**names))
    postgres.execute(sql.SQL("GRANT {other} TO {user}").format(**names))
    postgres.execute(
        sql.SQL("ALTER ROLE {user} SET role = {value}").format(**names, value=sql.Literal(other))
    )
    request = service.start(app_user.arn)
    handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(DatabaseOperationError) as raised:
        handler(request.event("setSecret"), LambdaContext())
    reason = str(raised.value)
    assert reason.startswith(f"could not change the password of {app_user.name!r}: 42501: "), reason
    assert can_login(postgres, app_user.name, app_user.password, app_user.dbname)
