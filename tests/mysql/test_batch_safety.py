"""The clone's batches against the real MariaDB, where a user may choose the names that
appear in grant text: a column name that holds a statement never runs as the master user
(MySQL's multi-statement form and MariaDB's block), a batch that fails part-way leaves no
clone account without the original's TLS requirement, multi-statements are never left on,
and a failed batch names its own statement, never a former batch's.

MySQL's batch form (``;``-joined statements with multi-statements on) runs here against
the real MariaDB, which speaks the same protocol: the engine is told the server is MySQL
5.7 (8.0 would read ``mysql.default_roles``, which MariaDB lacks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

import rotators.mysql.engine as engine_module
from common.errors import DatabaseOperationError, VerificationError
from rotators.mysql.dialect import BATCH_STEP, Batch, Server, Step
from rotators.mysql.engine import MySQLEngine, _run_batch, _run_batches
from tests.conftest import new_password, unique
from tests.mysql.conftest import maria_login, maria_master
from tests.mysql.test_mariadb import grants_of

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymysql.connections import Connection

    from devtools.mariadb import MariaDBServer

MYSQL_57 = "5.7.40-log"
#: The MySQL path (told it is MySQL 5.7) and the server's own (MariaDB's block).
PATHS = [MYSQL_57, None]


@pytest.fixture
def master(mariadb: MariaDBServer) -> Iterator[Connection[Any]]:
    with MySQLEngine().connect(maria_master(mariadb)) as connection:
        yield connection


def _as_server(monkeypatch: pytest.MonkeyPatch, version: str | None) -> None:
    if version is not None:
        monkeypatch.setattr(engine_module, "_server", lambda _connection: Server.parse(version))


def _rotate(
    mariadb: MariaDBServer,
    original: str,
    clone: str,
    user: str,
    password: str,
    current: tuple[str, str],
) -> None:
    engine = MySQLEngine()
    with engine.connect(maria_master(mariadb)) as master:
        engine.set_alternate_user(
            master,
            original=original,
            clone=clone,
            user=user,
            password=password,
            database=None,
            current=maria_login(mariadb, *current, "AWSCURRENT"),
        )


def _questions(connection: Connection[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
        return int(cursor.fetchall()[0][1])


@pytest.mark.parametrize("version", PATHS, ids=["mysql-multi-statements", "mariadb-block"])
def test_a_column_name_holding_statements_never_runs_as_the_master(
    mariadb: MariaDBServer, monkeypatch: pytest.MonkeyPatch, version: str | None
) -> None:
    """The application user names a column so that the text of its REVOKE GRANT OPTION,
    cut at the first " ON ", would read "... ON *.* FROM app; GRANT ALL ON *.* TO app;":
    the next rotation revokes the clone's column grant and grants the user nothing."""
    _as_server(monkeypatch, version)
    app, db = unique("a"), unique("d")
    clone = app + "_clone"
    password, clone_password = new_password(), new_password()
    mariadb.execute(f"CREATE DATABASE `{db}`")
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (app, password))
    mariadb.execute(f"GRANT ALL ON `{db}`.* TO %s@'%%' WITH GRANT OPTION", (app,))
    _rotate(mariadb, app, clone, clone, clone_password, (app, password))

    column = f"x) ON *.* FROM {app}; GRANT ALL ON *.* TO {app};"
    assert len(column) <= 64  # a column name MariaDB and MySQL accept
    session = mariadb.connect_as(app, password)
    try:
        with session.cursor() as cursor:
            # What the application user may do with its own credentials.
            cursor.execute(f"CREATE TABLE `{db}`.t (`{column}` int)")
            cursor.execute(f"GRANT SELECT (`{column}`) ON `{db}`.t TO %s@'%%' WITH GRANT OPTION", (clone,))
    finally:
        session.close()

    _rotate(mariadb, app, clone, app, new_password(), (clone, clone_password))

    granted = " ".join(grants_of(mariadb, app, "%"))
    assert "ALL PRIVILEGES ON *.*" not in granted
    assert [line for line in grants_of(mariadb, app, "%") if "ON *.*" in line] == [
        "GRANT USAGE ON *.* TO <account>"
    ]
    assert grants_of(mariadb, clone, "%") == grants_of(mariadb, app, "%")


@pytest.mark.parametrize("version", [MYSQL_57, "10.11.5-MariaDB"], ids=["mysql", "mariadb"])
def test_a_statement_break_outside_quotes_is_refused_before_anything_is_sent(
    mariadb: MariaDBServer, master: Connection[Any], version: str
) -> None:
    db = unique("d")
    mariadb.execute(f"CREATE DATABASE `{db}`")
    user = unique("u")
    mariadb.execute("CREATE USER %s@'%%'", (user,))
    hostile = Step(
        f"GRANT SELECT ON `{db}`.* TO %s@%s; CREATE DATABASE `{db}_x`", (user, "%"), "grant a hostile line"
    )
    harmless = Step(f"GRANT SELECT ON `{db}`.* TO %s@%s", (user, "%"), "grant a line")
    for breaker in (hostile, hostile._replace(statement=harmless.statement + " -- x")):
        before = _questions(master)
        with pytest.raises(
            DatabaseOperationError, match=r"refused to batch grant a hostile line: .*outside quotes"
        ):
            _run_batches(master, Server.parse(version), [harmless, breaker])
        assert _questions(master) == before + 1  # the status read itself: nothing was sent
    assert not mariadb.execute("SHOW DATABASES LIKE %s", (f"{db}_x",))
    assert grants_of(mariadb, user, "%") == {"GRANT USAGE ON *.* TO <account>"}


def test_a_batch_answered_with_more_results_than_steps_is_an_error_not_an_index_error(
    master: Connection[Any],
) -> None:
    """Were a statement ever to split in two, the answers no longer match the steps: the
    batch fails with a clear error, whether the extra statement succeeds or fails."""
    one = (Step("DO 1", (), "do one thing"),)
    with engine_module._multi_statements(master):
        with pytest.raises(DatabaseOperationError, match=r"batch of 1 statements was answered with 2"):
            _run_batch(master, Batch("DO 1; DO 2", (), one, multi=True))
        with pytest.raises(DatabaseOperationError, match=r"could not run 1 statements: 1146"):
            _run_batch(master, Batch("DO 1; SELECT * FROM mysql.no_such_table", (), one, multi=True))


def test_a_failed_batch_leaves_every_clone_account_with_the_tls_requirement(mariadb: MariaDBServer) -> None:
    """A grant the server refuses stops the batch at the first host; the clone accounts of
    the later hosts already log in with the pending password, so they must already require
    TLS (set with the password, not in the batch)."""
    app, db = unique("t"), unique("d")
    clone, password = app + "_clone", new_password()
    mariadb.execute(f"CREATE DATABASE `{db}`")
    mariadb.execute(f"CREATE TABLE `{db}`.gone (v int)")
    mariadb.execute(f"CREATE TABLE `{db}`.ok (v int)")
    hosts = ("%", "10.1.%", "10.2.%")
    for host in hosts:
        mariadb.execute("CREATE USER %s@%s IDENTIFIED BY %s REQUIRE SSL", (app, host, password))
        mariadb.execute(f"GRANT SELECT ON `{db}`.ok TO %s@%s", (app, host))
    mariadb.execute(f"GRANT SELECT ON `{db}`.gone TO %s@'%%'", (app,))
    mariadb.execute(f"DROP TABLE `{db}`.gone")
    with pytest.raises(DatabaseOperationError, match=r"gone.*1146"):
        _rotate(mariadb, app, clone, clone, new_password(), (app, password))
    rows = mariadb.execute("SELECT Host, ssl_type FROM mysql.user WHERE User = %s ORDER BY Host", (clone,))
    assert [(str(host), str(ssl_type)) for host, ssl_type in rows] == [(host, "ANY") for host in hosts]


def test_the_final_check_compares_the_tls_requirement(
    mariadb: MariaDBServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, password = unique("t"), new_password()
    clone = app + "_clone"
    mariadb.execute(
        "CREATE USER %s@'%%' IDENTIFIED BY %s REQUIRE SUBJECT '/CN=app' AND ISSUER '/CN=ca'", (app, password)
    )
    _rotate(mariadb, app, clone, clone, new_password(), (app, password))
    rows = mariadb.execute(
        "SELECT ssl_type, x509_subject, x509_issuer FROM mysql.user WHERE User = %s", (clone,)
    )
    assert [tuple(str(value) for value in row) for row in rows] == [("SPECIFIED", "/CN=app", "/CN=ca")]
    # A clone whose requirement came out different is caught by the comparison.
    monkeypatch.setattr(engine_module, "require_clause", lambda *_columns: ("REQUIRE SSL", []))
    with pytest.raises(VerificationError, match="does not have the TLS requirement"):
        _rotate(mariadb, app, clone, clone, new_password(), (app, password))


def test_multi_statements_are_off_after_a_successful_batch_too(
    mariadb: MariaDBServer, master: Connection[Any]
) -> None:
    user, db = unique("m"), unique("d")
    mariadb.execute(f"CREATE DATABASE `{db}`")
    mariadb.execute("CREATE USER %s@'%%'", (user,))
    steps = [Step(f"GRANT SELECT ON `{db}`.* TO %s@%s", (user, "%"), "grant"), Step("DO 1", (), "do")]
    _run_batches(master, Server.parse(MYSQL_57), steps)
    with master.cursor() as cursor, pytest.raises(Exception, match="1064|syntax"):
        cursor.execute("SELECT 1; SELECT 2")
    assert f"`{db}`.*" in " ".join(grants_of(mariadb, user, "%"))


def test_a_failed_mariadb_batch_never_names_a_former_batchs_statement(
    mariadb: MariaDBServer, master: Connection[Any]
) -> None:
    """The step variable lives as long as the session: a block the server refuses before
    its first statement (an identifier too long: error 1103) must not be read as having
    reached the step a former failed batch reached."""
    user, db = unique("s"), unique("d")
    mariadb.execute(f"CREATE DATABASE `{db}`")
    mariadb.execute(f"CREATE TABLE `{db}`.t0 (v int)")
    mariadb.execute("CREATE USER %s@'%%'", (user,))
    server = Server.parse("10.11.5-MariaDB")

    def grant(table: str, what: str) -> Step:
        return Step(f"GRANT SELECT ON `{db}`.`{table}` TO %s@%s", (user, "%"), what)

    with pytest.raises(DatabaseOperationError, match=r"could not first batch's second: 1146"):
        _run_batches(
            master, server, [grant("t0", "first batch's first"), grant("t1", "first batch's second")]
        )
    with pytest.raises(DatabaseOperationError, match=r"could not run 3 statements: 1103") as failure:
        _run_batches(
            master,
            server,
            [grant("t0", "one"), grant("t0", "two"), grant("x" * 70, "three")],
        )
    assert "two" not in str(failure.value)
    with master.cursor() as cursor:
        cursor.execute(f"SELECT {BATCH_STEP}")
        assert cursor.fetchall() == ((None,),)
