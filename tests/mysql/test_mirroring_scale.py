"""Mirroring hundreds of grant lines over several host parts on the real MariaDB: the
master session's round trips, counted by the server (its session's ``Questions``, which
counts what the client sent, not the statements of an anonymous block), do not grow with
the grant lines; a batch that fails part-way names the grant and the next rotation fixes
what it left; MySQL's multi-statement batches run against the real server too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.errors import DatabaseOperationError
from rotators.mysql.dialect import Server, Step
from rotators.mysql.engine import MySQLEngine, _run_batches
from tests.conftest import new_password, unique
from tests.mysql.conftest import maria_login, maria_master
from tests.mysql.test_mariadb import grants_of

if TYPE_CHECKING:
    from pymysql.connections import Connection

    from common.engine import Login
    from devtools.mariadb import MariaDBServer

HOSTS = ("%", "10.1.%", "10.2.%")
TABLES = 100


def _status(connection: Connection[Any]) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Questions', 'Com_grant', 'Com_revoke')")
        return {str(name): int(count) for name, count in cursor.fetchall()}


def _counted(engine: MySQLEngine, master: Connection[Any], **arguments: Any) -> dict[str, int]:
    """Run set_alternate_user on ``master``; what the server counted for the session."""
    before = _status(master)
    _mirror(engine, master, **arguments)
    after = _status(master)
    # The second status read is itself a question.
    return {name: after[name] - before[name] - (name == "Questions") for name in after}


def _mirror(
    engine: MySQLEngine,
    master: Connection[Any],
    original: str,
    clone: str,
    user: str,
    password: str,
    current: Login,
) -> None:
    engine.set_alternate_user(
        master, original=original, clone=clone, user=user, password=password, database=None, current=current
    )


def test_hundreds_of_grant_lines_over_three_hosts_in_constant_round_trips(mariadb: MariaDBServer) -> None:
    user, password, db = unique("wide"), new_password(), unique("db")
    clone = user + "_clone"
    mariadb.execute(f"CREATE DATABASE `{db}`")
    for index in range(TABLES):
        mariadb.execute(f"CREATE TABLE `{db}`.a{index:03} (v int)")
    mariadb.execute(f"CREATE TABLE `{db}`.m_gone (v int)")
    for host in HOSTS:
        mariadb.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, password))
        for index in range(TABLES):
            mariadb.execute(f"GRANT SELECT ON `{db}`.a{index:03} TO %s@%s", (user, host))
    lines = sum(len(mariadb.execute("SHOW GRANTS FOR %s@%s", (user, host))) for host in HOSTS)
    assert lines == len(HOSTS) * (TABLES + 1)
    engine = MySQLEngine()
    current = maria_login(mariadb, user, password, "AWSCURRENT")
    clone_password = new_password()
    with engine.connect(maria_master(mariadb)) as master:
        # First rotation: the clone is created at every host and given every grant line.
        counted = _counted(
            engine, master, original=user, clone=clone, user=clone, password=clone_password, current=current
        )
        assert counted["Com_grant"] == len(HOSTS) * TABLES
        # Per host: its accounts, TLS requirement, grants of both, default role, password
        # and the final comparison; one batch for all the grants. Never per grant line.
        assert counted["Questions"] <= 12 * len(HOSTS) + 5, counted
        for host in HOSTS:
            assert grants_of(mariadb, clone, host) == grants_of(mariadb, user, host), host

        # The original loses half its lines at one host and gains others: revokes and
        # grants go in the same single batch.
        for index in range(TABLES // 2):
            mariadb.execute(f"REVOKE SELECT ON `{db}`.a{index:03} FROM %s@'10.1.%%'", (user,))
        for index in range(TABLES // 2):
            mariadb.execute(f"GRANT INSERT ON `{db}`.a{index:03} TO %s@'10.2.%%'", (user,))
        original_password = new_password()
        counted = _counted(
            engine,
            master,
            user=user,
            password=original_password,
            original=user,
            clone=clone,
            current=maria_login(mariadb, clone, clone_password, "AWSCURRENT"),
        )
        assert counted["Com_revoke"] >= TABLES // 2 + TABLES // 2  # a changed line: revoked, granted anew
        assert counted["Questions"] <= 12 * len(HOSTS) + 5, counted
        for host in HOSTS:
            assert grants_of(mariadb, clone, host) == grants_of(mariadb, user, host), host

        # A grant the server refuses part-way through the batch (a table dropped after
        # the grant was made: MariaDB keeps the grant line, and refuses to grant it anew).
        mariadb.execute(f"GRANT SELECT ON `{db}`.m_gone TO %s@'%%'", (user,))
        mariadb.execute(f"GRANT UPDATE ON `{db}`.a099 TO %s@'%%'", (user,))
        mariadb.execute(f"DROP TABLE `{db}`.m_gone")
        newer, current = new_password(), maria_login(mariadb, user, original_password, "AWSCURRENT")
        with pytest.raises(DatabaseOperationError, match=r"m_gone.*1146") as failure:
            _mirror(engine, master, user, clone, clone, newer, current)
        assert f"grant '{clone}'@'%'" in str(failure.value)
        assert newer not in str(failure.value)
        # The password was set before the batch: the clone logs in with it.
        assert mariadb.whoami(clone, newer)[0] == clone
        # Fixed at the next attempt, once the table is back.
        mariadb.execute(f"CREATE TABLE `{db}`.m_gone (v int)")
        _mirror(engine, master, user, clone, clone, newer, current)
        for host in HOSTS:
            assert grants_of(mariadb, clone, host) == grants_of(mariadb, user, host), host


def test_mysql_multi_statement_batches_against_the_real_server(mariadb: MariaDBServer) -> None:
    """MySQL's batch form (``;``-joined statements, multi-statements switched on for it
    alone), run against MariaDB, which speaks the same protocol: one round trip, stops at
    the first failure and names it, leaves multi-statements off."""
    user, db = unique("multi"), unique("db")
    mariadb.execute(f"CREATE DATABASE `{db}`")
    mariadb.execute(f"CREATE TABLE `{db}`.t1 (v int)")
    mariadb.execute(f"CREATE TABLE `{db}`.t3 (v int)")
    mariadb.execute("CREATE USER %s@'%%'", (user,))
    steps = [
        Step(f"GRANT SELECT ON `{db}`.t{index} TO %s@%s", (user, "%"), f"grant t{index}")
        for index in (1, 2, 3)
    ]
    mysql_8 = Server.parse("8.0.36")
    assert [batch.multi for batch in mysql_8.batches(steps)] == [True]
    engine = MySQLEngine()
    with engine.connect(maria_master(mariadb)) as master:
        before = _status(master)
        with pytest.raises(DatabaseOperationError, match=r"could not grant t2: 1146"):
            _run_batches(master, mysql_8, steps)
        counted = _status(master)
        # The first grant ran, the failing one stopped the batch.
        assert counted["Com_grant"] - before["Com_grant"] == 2
        grants = " ".join(str(row[0]) for row in mariadb.execute("SHOW GRANTS FOR %s@'%%'", (user,)))
        assert f"`{db}`.`t1`" in grants and f"`{db}`.`t3`" not in grants
        with master.cursor() as cursor, pytest.raises(Exception, match="1064|syntax"):
            cursor.execute("SELECT 1; SELECT 2")
        _run_batches(master, mysql_8, [steps[0], steps[2]])
        grants = " ".join(str(row[0]) for row in mariadb.execute("SHOW GRANTS FOR %s@'%%'", (user,)))
        assert f"`{db}`.`t3`" in grants
