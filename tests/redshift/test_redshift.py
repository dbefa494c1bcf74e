"""Redshift: the exact statements sent (Redshift's syntax, some of which the PostgreSQL
stand-in could not run), logins, time-outs and sessions on the stand-in."""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING

import pytest

from common.engine import Login
from common.errors import DatabaseConnectionError, DatabaseLoginError, DatabaseOperationError
from common.tls import TlsPolicy
from rotators.redshift.catalog import (
    Target,
    default_grants,
    differences,
    membership_statements,
    object_statements,
    quote,
)
from rotators.redshift.engine import RedshiftEngine, driver_socket, is_login_refusal, md5_password
from tests.conftest import new_password, unique

if TYPE_CHECKING:
    from devtools.redshift import RedshiftStandIn


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


def test_memberships_sent_to_align_the_clone() -> None:
    member, admin = frozenset({"MEMBER"}), frozenset({"MEMBER", "ADMIN"})
    wanted = {
        Target("group", "analysts"): member,
        Target("group", "loaders"): member,
        Target("role", "reader"): member,
        Target("role", "owner role"): admin,
        Target("role", "demoted"): member,
    }
    held = {
        Target("group", "loaders"): member,
        Target("group", "old_group"): member,
        Target("role", "gone"): member,
        Target("role", "demoted"): admin,
    }
    assert membership_statements(wanted, held, "app_clone") == [
        'ALTER GROUP "analysts" ADD USER "app_clone"',
        'ALTER GROUP "old_group" DROP USER "app_clone"',
        'REVOKE ADMIN OPTION FOR ROLE "demoted" FROM "app_clone"',
        'REVOKE ROLE "gone" FROM "app_clone"',
        'GRANT ROLE "owner role" TO "app_clone" WITH ADMIN OPTION',
        'GRANT ROLE "reader" TO "app_clone"',
    ]
    assert membership_statements(wanted, wanted, "app_clone") == []


def test_object_statements_are_grouped_by_change_not_by_object() -> None:
    select = frozenset({"SELECT"})
    wanted = {
        Target("database", "dev"): frozenset({"CREATE", "TEMP"}),
        Target("database", "other"): frozenset({"TEMP"}),
        Target("schema", "sales"): frozenset({"USAGE"}),
        **{Target("table", f"t{index:03}", "sales"): select for index in range(450)},
        Target("table", "orders", "sales"): frozenset({"SELECT", "INSERT"}),
        Target("function", "f", "sales", "integer, text"): frozenset({"EXECUTE"}),
        Target("procedure", "load", "sales", ""): frozenset({"EXECUTE"}),
        Target("default", "etl", "sales", "r"): select,
        Target("default", "etl", "", "f"): frozenset({"EXECUTE"}),
        Target("default", "etl", "sales", "p"): frozenset({"EXECUTE"}),
        Target("column", "people", "hr", "name"): select,
        Target("column", "people", "hr", "email"): select,
    }
    held = {
        Target("schema", "sales"): frozenset({"USAGE", "CREATE"}),
        Target("table", "orders", "sales"): select,
        Target("table", "old", "sales"): select,
        Target("column", "people", "hr", "salary"): frozenset({"UPDATE"}),
    }
    statements = object_statements(wanted, held, "app_clone")
    tables = ", ".join(f'"sales"."t{index:03}"' for index in range(200))
    assert statements == [
        'GRANT CREATE, TEMP ON DATABASE "dev" TO "app_clone"',
        'GRANT TEMP ON DATABASE "other" TO "app_clone"',
        'ALTER DEFAULT PRIVILEGES FOR USER "etl" GRANT EXECUTE ON FUNCTIONS TO "app_clone"',
        'ALTER DEFAULT PRIVILEGES FOR USER "etl" IN SCHEMA "sales" '
        'GRANT EXECUTE ON PROCEDURES TO "app_clone"',
        'ALTER DEFAULT PRIVILEGES FOR USER "etl" IN SCHEMA "sales" GRANT SELECT ON TABLES TO "app_clone"',
        'GRANT EXECUTE ON FUNCTION "sales"."f"(integer, text) TO "app_clone"',
        'GRANT EXECUTE ON PROCEDURE "sales"."load"() TO "app_clone"',
        'GRANT INSERT ON TABLE "sales"."orders" TO "app_clone"',
        f'GRANT SELECT ON TABLE {tables} TO "app_clone"',
        "GRANT SELECT ON TABLE "
        + ", ".join(f'"sales"."t{index:03}"' for index in range(200, 400))
        + ' TO "app_clone"',
        "GRANT SELECT ON TABLE "
        + ", ".join(f'"sales"."t{index:03}"' for index in range(400, 450))
        + ' TO "app_clone"',
        'REVOKE CREATE ON SCHEMA "sales" FROM "app_clone"',
        'REVOKE SELECT ON TABLE "sales"."old" FROM "app_clone"',
        'GRANT SELECT ("email", "name") ON TABLE "hr"."people" TO "app_clone"',
        'REVOKE UPDATE ("salary") ON TABLE "hr"."people" FROM "app_clone"',
    ]
    assert object_statements(wanted, wanted, "app_clone") == []
    assert differences(wanted, wanted) == []
    assert "-CREATE on schema sales" in differences(wanted, held)


def test_default_privileges_are_read_from_aclitems() -> None:
    # As PostgreSQL and Redshift print aclitem[]: a name needing quotes is quoted inside
    # the item, and the whole item is quoted (with backslash escapes) inside the array.
    acl = '{app=ar/etl_owner,"\\"other user\\"=r/etl_owner",app_clone=arwdx/etl_owner,=X/etl_owner}'
    assert default_grants(acl, "app") == {"SELECT", "INSERT"}
    assert default_grants(acl, "other user") == {"SELECT"}
    assert default_grants(acl, "app_clone") == {"SELECT", "INSERT", "UPDATE", "DELETE", "REFERENCES"}
    assert default_grants("{app=X/etl_owner}", "app") == {"EXECUTE"}
    assert default_grants(acl, "nobody") == frozenset()


def _login(
    redshift: RedshiftStandIn, user: str, password: str, *, connect: int = 5, statement: int = 5
) -> Login:
    tls = TlsPolicy(enabled=True, ca_file=redshift.ca_file)
    return Login(redshift.host, redshift.port, "dev", user, password, tls, connect, statement, "AWSCURRENT")


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
    user, password = unique("refused"), new_password()
    redshift.create_user(user, password)
    with pytest.raises(
        DatabaseLoginError, match=re.escape(f"refused the AWSCURRENT credentials for user {user!r}")
    ):
        RedshiftEngine().open(_login(redshift, user, "Wrong-pass-1"))


@pytest.mark.parametrize(
    ("code", "message", "refused"),
    [
        ("28P01", 'password authentication failed for user "app"', True),
        # Redshift answers a wrong password with 28000.
        ("28000", 'password authentication failed for user "app"', True),
        ("28000", 'no pg_hba.conf entry for host "10.0.0.9", user "app", database "dev", SSL off', False),
        ("28000", 'pg_hba.conf rejects connection for host "10.0.0.9", user "app"', False),
        ("3D000", 'database "nope" does not exist', False),
    ],
)
def test_only_a_refused_password_counts_as_a_refused_login(code: str, message: str, refused: bool) -> None:
    assert is_login_refusal(Exception({"S": "FATAL", "C": code, "M": message})) is refused
    assert not is_login_refusal(Exception("communication error"))


def test_a_host_rule_rejection_is_a_connection_error_not_a_refused_password(
    redshift: RedshiftStandIn,
) -> None:
    """SQLSTATE 28000 without "password authentication failed": no other password gets
    past a host rule, so the rotation must stop at once instead of trying the next one."""
    user, password = unique("hba"), new_password()
    redshift.create_user(user, password)
    redshift.reject_host(user)
    with pytest.raises(DatabaseConnectionError, match="pg_hba.conf rejects connection") as caught:
        RedshiftEngine().open(_login(redshift, user, password))
    assert not isinstance(caught.value, DatabaseLoginError)
    assert caught.value.__cause__ is not None and caught.value.__cause__.args[0]["C"] == "28000"


def test_a_statement_may_run_longer_than_the_connect_time_out(redshift: RedshiftStandIn) -> None:
    user, password = unique("slow"), new_password()
    redshift.create_user(user, password)
    engine = RedshiftEngine()
    with engine.connect(_login(redshift, user, password, connect=1, statement=6)) as connection:
        # The driver's own time-out would have been the connect time-out for the session.
        assert driver_socket(connection).gettimeout() == 7
        cursor = connection.cursor()
        cursor.execute("SELECT pg_sleep(2.5), 1")
        assert cursor.fetchall()[0][1] == 1
    with engine.connect(_login(redshift, user, password, connect=5, statement=1)) as connection:
        with pytest.raises(DatabaseOperationError, match="57014"):  # the server's statement time-out
            from rotators.redshift.engine import _run

            _run(connection, "SELECT pg_sleep(3)", (), "sleep")
    assert driver_socket(connection).fileno() == -1  # closed on leaving the session


def test_open_closes_its_session_when_the_statement_after_connecting_fails(
    redshift: RedshiftStandIn,
) -> None:
    user, password = unique("leak"), new_password()
    redshift.create_user(user, password)
    # 3,000,000 s is beyond what statement_timeout (milliseconds in an int) takes.
    with pytest.raises(DatabaseOperationError, match="could not set the time-out"):
        RedshiftEngine().open(_login(redshift, user, password, statement=3_000_000))
    assert redshift.sessions_of(user) == 0
    with RedshiftEngine().connect(_login(redshift, user, password)):
        assert redshift.sessions_of(user) == 1  # the count sees a session when there is one
