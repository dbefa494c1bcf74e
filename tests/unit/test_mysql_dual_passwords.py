"""MySQL 8 dual passwords, statement by statement as sent (no MySQL 8 runs here): which
servers hold two passwords, the happy path, the retry after a crash, and the fallback
for an account that may not keep two."""

from __future__ import annotations

import io
from typing import Any

import pymysql
import pytest

from common.errors import DatabaseOperationError
from common.observability import logger
from rotators.mysql.dialect import Server
from rotators.mysql.engine import MySQLEngine
from tests.unit.test_mysql_dialect import (
    AURORA_2,
    AURORA_3,
    MARIADB,
    MYSQL_8,
    MYSQL_57,
    RecordingConnection,
    pymysql_like,
)

ADD = "ALTER USER CURRENT_USER() IDENTIFIED BY %s REPLACE %s RETAIN CURRENT PASSWORD"
PRIMARY = "ALTER USER CURRENT_USER() IDENTIFIED BY %s"
REPLACE_PRIMARY = "ALTER USER CURRENT_USER() IDENTIFIED BY %s REPLACE %s"


class RefusingConnection(RecordingConnection):
    """Records statements and answers those starting with a key of ``errors`` with that
    PyMySQL error (the server's error number and message)."""

    def __init__(self, version: str, errors: dict[str, tuple[int, str]]) -> None:
        super().__init__(version, {})
        self.errors = errors

    def execute(self, statement: str, params: tuple[Any, ...] | None = None) -> None:
        super().execute(statement, params)
        for prefix, (code, message) in self.errors.items():
            if statement == prefix:
                raise pymysql.err.OperationalError(code, message)


@pytest.mark.parametrize(
    ("version", "dual"),
    [
        (MYSQL_8, True),
        ("8.0.14", True),
        ("8.0.13", False),
        (AURORA_3, True),
        (AURORA_2, False),
        (MYSQL_57, False),
        (MARIADB, False),
        ("11.4.2-MariaDB", False),
    ],
)
def test_which_servers_hold_two_passwords(version: str, dual: bool) -> None:
    assert Server.parse(version).has_dual_passwords is dual


def test_the_new_password_becomes_primary_and_the_current_one_secondary() -> None:
    connection = RecordingConnection(MYSQL_8, {})
    kept = MySQLEngine().add_password(
        pymysql_like(connection), user="app", keep="cur-Pass-1", new="new-Pass-2"
    )
    assert kept is True
    assert connection.sent == [(ADD, ("new-Pass-2", "cur-Pass-1"))]


def test_a_retry_logged_in_with_the_secondary_sets_the_primary_and_keeps_it() -> None:
    """The first attempt made the new password primary, then the function died; the retry
    logs in with AWSCURRENT, now the secondary: REPLACE refuses it (3891), and the primary
    is set replacing itself without RETAIN, which leaves the secondary (AWSCURRENT) as it is."""
    connection = RefusingConnection(MYSQL_8, {ADD: (3891, "Incorrect current password.")})
    kept = MySQLEngine().add_password(
        pymysql_like(connection), user="app", keep="cur-Pass-1", new="new-Pass-2"
    )
    assert kept is True
    assert connection.sent == [
        (ADD, ("new-Pass-2", "cur-Pass-1")),
        (REPLACE_PRIMARY, ("new-Pass-2", "new-Pass-2")),
    ]


def test_a_primary_that_is_neither_password_is_refused_by_name() -> None:
    """Neither AWSCURRENT nor the pending password is the primary: the server refuses both
    REPLACEs (3891) and the error says so, naming no password."""
    refused = (3891, "Incorrect current password.")
    connection = RefusingConnection(MYSQL_8, {ADD: refused, REPLACE_PRIMARY: refused})
    with pytest.raises(DatabaseOperationError, match="neither the current nor the pending") as raised:
        MySQLEngine().add_password(pymysql_like(connection), user="app", keep="cur-Pass-1", new="new-Pass-2")
    assert "Pass-" not in str(raised.value)


def test_an_account_without_application_password_admin_falls_back_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    connection = RefusingConnection(
        MYSQL_8, {ADD: (1227, "Access denied; you need APPLICATION_PASSWORD_ADMIN")}
    )
    kept = MySQLEngine().add_password(
        pymysql_like(connection), user="app", keep="cur-Pass-1", new="new-Pass-2"
    )
    assert kept is False  # the rotation core then changes the password the single-password way
    assert connection.sent == [(ADD, ("new-Pass-2", "cur-Pass-1"))]
    assert "lacks APPLICATION_PASSWORD_ADMIN" in lines.getvalue()
    assert "Pass-" not in lines.getvalue()


@pytest.mark.parametrize("version", [MARIADB, MYSQL_57, AURORA_2])
def test_servers_without_dual_passwords_are_not_sent_anything(version: str) -> None:
    connection = RecordingConnection(version, {})
    assert MySQLEngine().add_password(pymysql_like(connection), user="app", keep="a", new="b") is False
    assert connection.sent == []


def test_any_other_error_is_named_without_the_passwords() -> None:
    connection = RefusingConnection(MYSQL_8, {ADD: (3638, "Cannot use these credentials for 'app@%'")})
    with pytest.raises(DatabaseOperationError, match="add a password for 'app'") as raised:
        MySQLEngine().add_password(pymysql_like(connection), user="app", keep="cur-Pass-1", new="new-Pass-2")
    assert "Pass-" not in str(raised.value)
