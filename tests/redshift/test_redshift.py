"""Redshift: the exact statements sent (Redshift's syntax, some of which the PostgreSQL
stand-in could not run), and privileges reaching the clone on the stand-in."""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING

import pytest

from common.engine import Login
from common.tls import TlsPolicy
from rotators.redshift.engine import RedshiftEngine, _default_grants, md5_password, quote, statements_to_align
from tests.conftest import new_password, unique
from tests.helpers import handler_for, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.redshift import RedshiftStandIn
    from devtools.service import RotationService


def test_password_is_sent_in_redshifts_md5_form() -> None:
    # PostgreSQL's and Redshift's well-known md5 of user "postgres" with password "postgres".
    assert md5_password("postgres", "postgres") == "md53175bce1d3201d16594cebf9d7eb3f9d"
    assert quote('we"ird user') == '"we""ird user"'


def test_generated_passwords_meet_redshifts_rules() -> None:
    policy = RedshiftEngine.password_policy
    for _ in range(200):
        password = policy.generate()
        assert 8 <= len(password) <= 64
        assert set(password) & set(string.ascii_uppercase) and set(password) & set(string.ascii_lowercase)
        assert set(password) & set(string.digits)
        assert not set(password) & set("'\"\\/@ ")


def test_statements_sent_to_align_the_clone() -> None:
    wanted = {
        "groups": frozenset({"analysts", "loaders"}),
        "database dev": frozenset({"CREATE", "TEMP"}),
        "schema sales": frozenset({"USAGE"}),
        'table "sales"."orders"': frozenset({"SELECT", "INSERT"}),
        "default etl_owner sales": frozenset({"SELECT"}),
    }
    held = {
        "groups": frozenset({"loaders", "old_group"}),
        "database dev": frozenset({"TEMP"}),
        "schema sales": frozenset({"USAGE", "CREATE"}),
        'table "sales"."orders"': frozenset({"SELECT"}),
    }
    assert statements_to_align(wanted, held, "app_clone") == [
        'ALTER GROUP "analysts" ADD USER "app_clone"',
        'ALTER GROUP "old_group" DROP USER "app_clone"',
        'GRANT CREATE ON DATABASE "dev" TO "app_clone"',
        'ALTER DEFAULT PRIVILEGES FOR USER "etl_owner" IN SCHEMA "sales" '
        'GRANT SELECT ON TABLES TO "app_clone"',
        'REVOKE CREATE ON SCHEMA "sales" FROM "app_clone"',
        'GRANT INSERT ON TABLE "sales"."orders" TO "app_clone"',
    ]
    assert statements_to_align(wanted, wanted, "app_clone") == []


def test_default_privileges_are_read_from_aclitems() -> None:
    acl = '{app=ar/etl_owner,"other user"=r/etl_owner,app_clone=arwdx/etl_owner}'
    assert _default_grants(acl, "app") == {"SELECT", "INSERT"}
    assert _default_grants(acl, "app_clone") == {"SELECT", "INSERT", "UPDATE", "DELETE", "REFERENCES"}
    assert _default_grants(acl, "nobody") == frozenset()


def test_groups_grants_and_default_privileges_reach_the_clone(
    redshift: RedshiftStandIn,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
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
    clone = user + "_clone"
    owner, group = unique("etl"), unique("analysts")
    redshift.create_user(owner, new_password())
    for statement in (
        f'CREATE GROUP "{group}"',
        "CREATE SCHEMA sales",
        f'GRANT USAGE ON SCHEMA sales TO "{user}"',
        "CREATE TABLE sales.orders (id int)",
        f'GRANT SELECT ON sales.orders TO "{user}"',
    ):
        redshift.execute(statement, dbname=db)
    service.rotate(handler, arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == clone

    def can(who: str, privilege: str, table: str = "sales.orders") -> bool:
        return bool(
            redshift.execute("SELECT has_table_privilege(%s, %s, %s)", (who, table, privilege), dbname=db)[0][
                0
            ]
        )

    assert can(clone, "SELECT") and not can(clone, "INSERT")
    # Given to the original after the first rotation: a group, a grant, a default privilege.
    redshift.execute(f'ALTER GROUP "{group}" ADD USER "{user}"', dbname=db)
    redshift.execute(f'GRANT INSERT ON sales.orders TO "{user}"', dbname=db)
    redshift.execute(
        f'ALTER DEFAULT PRIVILEGES FOR USER "{owner}" IN SCHEMA sales GRANT SELECT ON TABLES TO "{user}"',
        dbname=db,
    )
    redshift.execute(f'GRANT USAGE, CREATE ON SCHEMA sales TO "{owner}"', dbname=db)
    service.rotate(handler, arn)  # the clone is current and follows the original all the same
    assert value(sm_client, arn, "AWSCURRENT")["username"] == user
    members = redshift.execute(
        "SELECT u.usename FROM pg_group g, pg_user u WHERE g.groname = %s AND u.usesysid = ANY(g.grolist)",
        (group,),
        dbname=db,
    )
    assert {row[0] for row in members} == {user, clone}
    assert can(clone, "INSERT")
    redshift.execute(f'SET ROLE "{owner}"; CREATE TABLE sales.future (id int); RESET ROLE', dbname=db)
    assert can(clone, "SELECT", "sales.future") and can(user, "SELECT", "sales.future")
    # Revoked from the original: revoked from the clone at the next rotation.
    redshift.execute(f'REVOKE INSERT ON sales.orders FROM "{user}"', dbname=db)
    redshift.execute(f'ALTER GROUP "{group}" DROP USER "{user}"', dbname=db)
    service.rotate(handler, arn)
    assert not can(clone, "INSERT")
    assert redshift.can_login(clone, value(sm_client, arn, "AWSCURRENT")["password"], db)


def test_plaintext_only_when_asked(redshift: RedshiftStandIn) -> None:
    user, password = unique("plain"), new_password()
    redshift.create_user(user, password)
    for tls in (TlsPolicy(enabled=False), TlsPolicy(enabled=True, ca_file=redshift.ca_file)):
        login = Login(redshift.host, redshift.port, "dev", user, password, tls, 5, 5, "AWSCURRENT")
        with RedshiftEngine().connect(login) as connection:
            RedshiftEngine().verify_session(connection)  # the session works in both modes
            socket_is_tls = type(connection._usock).__name__ == "SSLSocket"
            assert socket_is_tls is tls.enabled


def test_a_refused_password_is_a_login_error(redshift: RedshiftStandIn) -> None:
    from common.errors import DatabaseLoginError

    user, password = unique("refused"), new_password()
    redshift.create_user(user, password)
    login = Login(
        redshift.host,
        redshift.port,
        "dev",
        user,
        "Wrong-pass-1",
        TlsPolicy(True, redshift.ca_file),
        5,
        5,
        "AWSCURRENT",
    )
    with pytest.raises(
        DatabaseLoginError, match=re.escape(f"refused the AWSCURRENT credentials for user {user!r}")
    ):
        RedshiftEngine().open(login)
