"""What the MySQL engine sends to each server family and version, exactly.

MySQL 8 and 5.7 cannot run on the test machine; these tests pin their statements.
"""

from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from common.engine import Login
from common.errors import DatabaseOperationError
from common.tls import TlsPolicy
from rotators.mysql.dialect import (
    Batch,
    Grant,
    Server,
    Step,
    grant_difference,
    native_password_hash,
    normalised_what,
    parse_grants,
    privileges_of,
    require_clause,
)
from rotators.mysql.engine import (
    _DEFAULT_QUOTING,
    AccountOptions,
    MySQLEngine,
    _default_quoting,
    _privilege_names,
    _run_batches,
    account_lockout,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

MYSQL_8 = "8.0.36"
AURORA_3 = "8.0.mysql_aurora.3.05.2"
AURORA_2 = "5.7.mysql_aurora.2.11.2"
MYSQL_57 = "5.7.44-log"
MYSQL_575 = "5.7.5-m15"
MYSQL_56 = "5.6.51"
MARIADB = "10.11.18-MariaDB-0+deb12u1"
MARIADB_HANDSHAKE = "5.5.5-10.6.12-MariaDB-log"
REPLACE_OWN = "ALTER USER CURRENT_USER() IDENTIFIED BY %s REPLACE %s"


@pytest.mark.parametrize(
    ("version", "flavour", "numbers", "limit"),
    [
        (MYSQL_8, "mysql", (8, 0, 36), 32),
        (AURORA_3, "mysql", (8, 0, 0), 32),
        (AURORA_2, "mysql", (5, 7, 0), 16),
        (MYSQL_57, "mysql", (5, 7, 44), 32),
        (MYSQL_56, "mysql", (5, 6, 51), 16),
        (MARIADB, "mariadb", (10, 11, 18), 80),
        (MARIADB_HANDSHAKE, "mariadb", (10, 6, 12), 80),
    ],
)
def test_server_family_and_version(
    version: str, flavour: str, numbers: tuple[int, int, int], limit: int
) -> None:
    server = Server.parse(version)
    assert (server.flavour, server.version, server.username_limit) == (flavour, numbers, limit)


@pytest.mark.parametrize(
    ("version", "own", "other"),
    [
        # MySQL 8.0.13+ names the current password (password_require_current).
        (MYSQL_8, REPLACE_OWN, "ALTER USER %s@%s IDENTIFIED BY %s"),
        (AURORA_3, REPLACE_OWN, "ALTER USER %s@%s IDENTIFIED BY %s"),
        ("8.0.13", REPLACE_OWN, "ALTER USER %s@%s IDENTIFIED BY %s"),
        ("8.0.12", "ALTER USER CURRENT_USER() IDENTIFIED BY %s", "ALTER USER %s@%s IDENTIFIED BY %s"),
        (MYSQL_57, "ALTER USER CURRENT_USER() IDENTIFIED BY %s", "ALTER USER %s@%s IDENTIFIED BY %s"),
        (MYSQL_575, "SET PASSWORD = PASSWORD(%s)", "SET PASSWORD FOR %s@%s = PASSWORD(%s)"),
        (MYSQL_56, "SET PASSWORD = PASSWORD(%s)", "SET PASSWORD FOR %s@%s = PASSWORD(%s)"),
        (MARIADB, "SET PASSWORD = PASSWORD(%s)", "ALTER USER %s@%s IDENTIFIED BY %s"),
    ],
)
def test_password_statements(version: str, own: str, other: str) -> None:
    server = Server.parse(version)
    assert server.change_own_password() == own
    assert server.set_password() == other


def test_default_role_statements() -> None:
    mysql, mariadb = Server.parse(MYSQL_8), Server.parse(MARIADB)
    assert mysql.set_default_roles([("reader", "%"), ("writer", "%")]) == (
        "SET DEFAULT ROLE %s@%s, %s@%s TO %s@%s",
        ["reader", "%", "writer", "%"],
    )
    assert mysql.set_default_roles([]) == ("SET DEFAULT ROLE NONE TO %s@%s", [])
    assert mariadb.set_default_roles([("reader", "")]) == ("SET DEFAULT ROLE %s FOR %s@%s", ["reader"])
    assert mariadb.set_default_roles([]) == ("SET DEFAULT ROLE NONE FOR %s@%s", [])
    assert Server.parse(MYSQL_57).default_roles_query() is None
    assert "mysql.default_roles" in str(mysql.default_roles_query())


@pytest.mark.parametrize(
    ("row", "clause", "params"),
    [
        (("", "", "", ""), "REQUIRE NONE", []),
        (("ANY", "", "", ""), "REQUIRE SSL", []),
        (("X509", "", "", ""), "REQUIRE X509", []),
        (("SPECIFIED", "", "/CN=ca", "/CN=app"), "REQUIRE ISSUER %s AND SUBJECT %s", ["/CN=ca", "/CN=app"]),
    ],
)
def test_tls_requirement(row: tuple[str, str, str, str], clause: str, params: list[str]) -> None:
    assert require_clause(*row) == (clause, params)


def test_grants_of_mysql_8_mysql_57_and_mariadb() -> None:
    mysql_8 = [
        "GRANT USAGE ON *.* TO `app`@`10.0.0.%`",
        "GRANT SELECT, INSERT ON `shop`.* TO `app`@`10.0.0.%` WITH GRANT OPTION",
        "GRANT `reader`@`%` TO `app`@`10.0.0.%`",
    ]
    mysql_57 = [
        "GRANT USAGE ON *.* TO 'app'@'10.0.0.%' REQUIRE SSL",
        "GRANT SELECT, INSERT ON `shop`.* TO 'app'@'10.0.0.%' WITH GRANT OPTION",
    ]
    mariadb = [
        "GRANT `reader` TO `app`@`10.0.0.%`",
        "GRANT USAGE ON *.* TO `app`@`10.0.0.%` IDENTIFIED BY PASSWORD '*0123456789ABCDEF' REQUIRE SSL",
        "GRANT SELECT, INSERT ON `shop`.* TO `app`@`10.0.0.%` WITH GRANT OPTION",
        "SET DEFAULT ROLE `reader` FOR `app`@`10.0.0.%`",
    ]
    for lines in (mysql_8, mysql_57, mariadb):
        grants = parse_grants(lines, "app", "10.0.0.%")
        assert Grant("SELECT, INSERT ON `shop`.*", "WITH GRANT OPTION") in grants
        assert all("PASSWORD" not in g.what + g.option and "REQUIRE" not in g.option for g in grants)
    assert Grant("`reader`@`%`", "") in parse_grants(mysql_8, "app", "10.0.0.%")
    assert len(parse_grants(mariadb, "app", "10.0.0.%")) == 3


def test_grant_and_revoke_statements_bind_the_account_and_keep_percent_literal() -> None:
    grant = Grant("SELECT ON `shop\\_%`.*", "WITH GRANT OPTION")
    assert grant.grant() == "GRANT SELECT ON `shop\\_%%`.* TO %s@%s WITH GRANT OPTION"
    assert grant.revokes() == [
        "REVOKE SELECT ON `shop\\_%%`.* FROM %s@%s",
        "REVOKE GRANT OPTION ON `shop\\_%%`.* FROM %s@%s",
    ]
    assert Grant("`reader`", "").revokes() == ["REVOKE `reader` FROM %s@%s"]


def test_a_line_for_another_account_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="unexpected SHOW GRANTS line"):
        parse_grants(["GRANT SELECT ON *.* TO `someone`@`%`"], "app", "%")


class RecordingConnection:
    """Stands in for a PyMySQL connection: records every statement and its parameters,
    answers the engine's queries from ``answers`` (statement prefix -> rows)."""

    def __init__(self, version: str, answers: dict[str, list[tuple[Any, ...]]]) -> None:
        self.version = version
        # The session's sql_mode, read back after the default quoting is set.
        self.answers = {"SELECT @@SESSION.sql_mode": [("STRICT_TRANS_TABLES",)], **answers}
        self.sent: list[tuple[str, tuple[Any, ...] | None]] = []

    open = True

    def get_server_info(self) -> str:
        return self.version

    @contextmanager
    def cursor(self) -> Iterator[RecordingConnection]:
        yield self

    def execute(self, statement: str, params: tuple[Any, ...] | None = None) -> None:
        self.sent.append((statement, params))
        # A multi-statement query answers once per statement (the batches join by "; ").
        self.results_left = statement.count("; ") if not statement.startswith("BEGIN") else 0
        self._rows = next((rows for prefix, rows in self.answers.items() if statement.startswith(prefix)), [])

    def nextset(self) -> bool:
        self.results_left -= 1
        return self.results_left >= 0

    def _execute_command(self, command: int, argument: bytes) -> None:
        self.sent.append((f"COMMAND {command}", (argument,)))

    def _read_packet(self) -> None:
        return None

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._rows
        if callable(rows):
            return list(rows(self.sent[-1][1]))
        return rows


def pymysql_like(connection: RecordingConnection) -> Any:
    """The recording connection where the engine expects PyMySQL's (duck-typed)."""
    return connection


LOGIN = Login("db", 3306, None, "app", "old-Pass-1", TlsPolicy(False), 5, 5, "AWSCURRENT")


def mirror(engine: MySQLEngine, connection: RecordingConnection, original: str = "app") -> None:
    """setSecret's mirror of ``original`` onto ``<original>_clone``, over the recording."""
    engine.set_alternate_user(
        pymysql_like(connection),
        original=original,
        clone=original + "_clone",
        user=original + "_clone",
        password="new-Pass-2",
        database=None,
        current=LOGIN,
    )


NATIVE_GRANT = [("GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*0123456789ABCDEF'",)]
ED25519_GRANT = [("GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED VIA ed25519 USING 'abc'",)]


@pytest.mark.parametrize(
    ("version", "own_grants", "expected"),
    [
        # MySQL 8: the password the session logged in with, for password_require_current.
        (MYSQL_8, [], (REPLACE_OWN, "new-Pass-2", "old-Pass-1")),
        (MYSQL_57, [], ("ALTER USER CURRENT_USER() IDENTIFIED BY %s", "new-Pass-2")),
        (MYSQL_56, [], ("SET PASSWORD = PASSWORD(%s)", "new-Pass-2")),
        # MariaDB logs SET PASSWORD as sent: a native-password account gets the hash.
        (MARIADB, NATIVE_GRANT, ("SET PASSWORD = %s", native_password_hash("new-Pass-2"))),
        (MARIADB, ED25519_GRANT, ("SET PASSWORD = PASSWORD(%s)", "new-Pass-2")),
    ],
)
def test_engine_sends_the_own_password_statement_of_the_server(
    version: str, own_grants: list[tuple[str]], expected: tuple[str, ...]
) -> None:
    connection = RecordingConnection(version, {"SHOW GRANTS FOR CURRENT_USER()": own_grants})
    MySQLEngine().change_own_password(pymysql_like(connection), LOGIN, "new-Pass-2")
    changes = [
        (statement, params) for statement, params in connection.sent if not statement.startswith("SHOW")
    ]
    assert changes == [(expected[0], expected[1:])]


def test_native_password_hash_is_mysqls() -> None:
    # The documented example: PASSWORD('mypass') in MySQL 5.x and MariaDB.
    assert native_password_hash("mypass") == "*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4"


def test_engine_mirrors_a_mysql_8_account_exactly() -> None:
    """The whole conversation of setSecret's master session with a MySQL 8 server, for a
    clone that does not exist yet."""
    original = [
        "GRANT USAGE ON *.* TO `{user}`@`10.0.0.%`",
        "GRANT SELECT ON `shop`.* TO `{user}`@`10.0.0.%` WITH GRANT OPTION",
        "GRANT `reader`@`%` TO `{user}`@`10.0.0.%`",
    ]
    clone_reads = []

    def show_grants(params: tuple[str, str]) -> list[tuple[str]]:
        user = params[0]
        if user == "app_clone":
            clone_reads.append(user)
            if len(clone_reads) == 1:  # before the grants: a new account holds only USAGE
                return [(original[0].format(user=user),)]
        return [(line.format(user=user),) for line in original]

    connection = RecordingConnection(
        MYSQL_8,
        {
            "SELECT Host FROM mysql.user WHERE User = %s": [("10.0.0.%",)],
            "SELECT Host, plugin, authentication_string": [
                ("10.0.0.%", "mysql_native_password", native_password_hash(LOGIN.password))
            ],
            "SELECT 1 FROM mysql.user": [],
            "SELECT ssl_type": [("ANY", "", "", "", 0, 0, 0, 3)],
            "SHOW GRANTS FOR": show_grants,  # type: ignore[dict-item]
            "SELECT DEFAULT_ROLE_USER": [("reader", "%")],
        },
    )
    engine = MySQLEngine()
    mirror(engine, connection)
    changes = [(s, p) for s, p in connection.sent if not s.startswith(("SELECT", "SHOW"))]
    account = ("app_clone", "10.0.0.%")
    # The account with its password, TLS requirement and resource limits in one statement
    # (a failed batch never leaves it open without TLS); then one multi-statement round trip, with
    # multi-statements allowed for it only (COM_SET_OPTION 0 = on, 1 = off). Before the
    # first grants read, once, the session's default quoting of names (no ANSI_QUOTES).
    assert changes == [
        (
            "CREATE USER %s@%s IDENTIFIED BY %s REQUIRE SSL WITH MAX_QUERIES_PER_HOUR %s "
            "MAX_UPDATES_PER_HOUR %s MAX_CONNECTIONS_PER_HOUR %s MAX_USER_CONNECTIONS %s",
            (*account, "new-Pass-2", 0, 0, 0, 3),
        ),
        (_DEFAULT_QUOTING, None),
        ("COMMAND 27", (b"\x00\x00",)),
        (
            "GRANT SELECT ON `shop`.* TO %s@%s WITH GRANT OPTION; "
            "GRANT `reader`@`%%` TO %s@%s; "
            "SET DEFAULT ROLE %s@%s TO %s@%s",
            (*account, *account, "reader", "%", *account),
        ),
        ("COMMAND 27", (b"\x01\x00",)),
    ]


def _steps(count: int) -> list[Step]:
    return [Step(f"GRANT SELECT ON `d`.`t{i}` TO %s@%s", ("u", "%"), f"grant t{i}") for i in range(count)]


def test_mariadb_batches_in_one_anonymous_block_that_records_its_step() -> None:
    (batch,) = Server.parse(MARIADB).batches(_steps(2))
    assert batch == Batch(
        "BEGIN NOT ATOMIC SET @secrets_rotation_step = 0; GRANT SELECT ON `d`.`t0` TO %s@%s; "
        "SET @secrets_rotation_step = 1; GRANT SELECT ON `d`.`t1` TO %s@%s; END",
        ("u", "%", "u", "%"),
        tuple(_steps(2)),
        multi=False,
    )


@pytest.mark.parametrize("version", [MYSQL_8, MYSQL_57, AURORA_3])
def test_mysql_batches_as_multi_statements_of_at_most_a_thousand(version: str) -> None:
    batches = Server.parse(version).batches(_steps(1500))
    assert [len(batch.steps) for batch in batches] == [1000, 500]
    assert all(batch.multi for batch in batches)
    assert batches[1].statement.split("; ")[0] == "GRANT SELECT ON `d`.`t1000` TO %s@%s"
    assert len(batches[1].params) == 1000
    # A single statement goes as it is: no multi-statement switch for it.
    assert Server.parse(version).batches(_steps(1)) == [
        Batch(_steps(1)[0].statement, ("u", "%"), tuple(_steps(1)), multi=False)
    ]


def test_a_failed_mysql_batch_names_the_statement_the_server_refused() -> None:
    """The server answers each statement of a multi-statement batch in turn and stops at
    the first error: the statements answered before it tell which one failed."""
    import pymysql

    class FailsThird(RecordingConnection):
        answered = 0

        def nextset(self) -> bool:
            self.answered += 1
            if self.answered == 2:
                raise pymysql.err.OperationalError(1146, "Table 'd.t2' doesn't exist")
            return True

    connection = FailsThird(MYSQL_8, {})
    with pytest.raises(DatabaseOperationError, match=r"could not grant t2: 1146: Table 'd.t2' doesn't exist"):
        _run_batches(pymysql_like(connection), Server.parse(MYSQL_8), _steps(4))
    # Multi-statements were switched off again.
    assert connection.sent[-1] == ("COMMAND 27", (b"\x01\x00",))


def test_clone_name_too_long_for_an_old_mysql_is_named() -> None:
    connection = RecordingConnection(MYSQL_56, {"SELECT Host FROM mysql.user": [("%",)]})
    with pytest.raises(DatabaseOperationError, match="longer than the 16 characters"):
        mirror(MySQLEngine(), connection, "application")


def test_salted_accounts_are_proved_by_the_account_a_login_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    """caching_sha2_password hashes are salted: the engine cannot tell from the password
    which ``app`` account the secret controls, so it asks a session of the current login
    (``CURRENT_USER()``) and acts on that account only, never on ``app@'10.9.9.9'``."""
    accounts = {
        "app": [
            ("%", "caching_sha2_password", "$A$005$salt-one"),
            ("10.9.9.9", "caching_sha2_password", "$A$005$x"),
        ],
        "app_clone": [],
    }

    def by_user(params: tuple[str]) -> list[tuple[str, str, str]]:
        return accounts[params[0]]

    def hosts(params: tuple[str]) -> list[tuple[str]]:
        return [(host,) for host, _, _ in accounts[params[0]]]

    connection = RecordingConnection(
        MYSQL_8,
        {
            "SELECT Host, plugin, authentication_string": by_user,  # type: ignore[dict-item]
            "SELECT Host FROM mysql.user WHERE User = %s": hosts,  # type: ignore[dict-item]
            "SELECT ssl_type": [("", "", "", "", 0, 0, 0, 0)],
            "SHOW GRANTS FOR": lambda params: [(f"GRANT USAGE ON *.* TO `{params[0]}`@`{params[1]}`",)],  # type: ignore[dict-item]
        },
    )
    session = RecordingConnection(MYSQL_8, {"SELECT CURRENT_USER()": [("app@%",)]})
    engine = MySQLEngine()
    monkeypatch.setattr(engine, "open", lambda login: pymysql_like(session))
    monkeypatch.setattr(engine, "close", lambda connection: None)
    mirror(engine, connection)
    assert session.sent == [("SELECT CURRENT_USER()", None)]
    changes = [
        p
        for s, p in connection.sent
        if not s.startswith(("SELECT", "SHOW", "COMMAND", "SET SESSION sql_mode"))
    ]
    assert changes
    assert all(params is not None and params[:2] == ("app_clone", "%") for params in changes), changes


@pytest.mark.parametrize(
    ("create_user", "limit"),
    [
        ("CREATE USER `app`@`%` IDENTIFIED WITH 'caching_sha2_password' REQUIRE NONE", None),
        ("CREATE USER `app`@`%` ... FAILED_LOGIN_ATTEMPTS 3 PASSWORD_LOCK_TIME 1", 3),
        ("CREATE USER `app`@`%` ... FAILED_LOGIN_ATTEMPTS 4 PASSWORD_LOCK_TIME UNBOUNDED", 4),
        ("CREATE USER `app`@`%` ... FAILED_LOGIN_ATTEMPTS 3 PASSWORD_LOCK_TIME 0", None),
        ("CREATE USER `app`@`%` ... FAILED_LOGIN_ATTEMPTS 0 PASSWORD_LOCK_TIME 2", None),
    ],
)
def test_mysql_8_account_lockout_is_read_from_show_create_user(create_user: str, limit: int | None) -> None:
    lockout = account_lockout("app", create_user)
    assert (lockout.limit, lockout.known) == (limit, True)
    assert "'app'" in lockout.detail


HOSTILE_COLUMN = "x) ON *.* FROM app; GRANT ALL ON *.* TO app WITH GRANT OPTION;"


@pytest.mark.parametrize(
    "what",
    [
        f"SELECT (`{HOSTILE_COLUMN}`) ON `d`.`t`",
        # A doubled back quote is part of the name: the name does not end there.
        "SELECT (`a`` ON *.* FROM app; --`, `b`) ON `d`.`t`",
        # Parentheses hide an ON too.
        "INSERT (`c ON x`), SELECT ON `d`.`t`",
    ],
)
def test_revoking_a_grant_option_finds_the_object_outside_quotes(what: str) -> None:
    statements = Grant(what, "WITH GRANT OPTION").revokes()
    assert statements[1] == "REVOKE GRANT OPTION ON `d`.`t` FROM %s@%s"
    # Every statement is one statement: no break outside quotes.
    for version in (MYSQL_8, MARIADB):
        Server.parse(version).batches([Step(statement, ("c", "%"), "revoke") for statement in statements])


@pytest.mark.parametrize(
    "statement",
    [
        "GRANT SELECT ON `d`.* TO %s@%s; DROP DATABASE d",
        "GRANT SELECT ON `d`.* TO %s@%s -- hidden",
        "GRANT SELECT ON `d`.* TO %s@%s # hidden",
        "GRANT SELECT ON `d`.* /* hidden */ TO %s@%s",
        # A back quote closed by a doubled one is still open: the break is outside.
        "GRANT SELECT (`a```); DROP DATABASE d; `) ON `d`.`t` TO %s@%s",
    ],
)
@pytest.mark.parametrize("version", [MYSQL_8, MARIADB])
def test_a_batch_refuses_a_statement_break_outside_quotes(statement: str, version: str) -> None:
    long_what = "grant " + "x" * 500
    with pytest.raises(
        DatabaseOperationError, match=r"refused to batch grant x+\.\.\.: its text holds"
    ) as failure:
        Server.parse(version).batches([Step(statement, ("u", "%"), long_what)])
    assert len(str(failure.value)) < 300  # the step is named clipped


def test_quoted_breaks_are_names_not_breaks() -> None:
    statement = "GRANT SELECT (`a;b`, `c--d`, `e#f`, `g/*h`) ON `d`.`t` TO %s@%s"
    (batch,) = Server.parse(MYSQL_8).batches([Step(statement, ("u", "%"), "grant")])
    assert batch.statement == statement


def test_batches_split_by_size_below_max_allowed_packet() -> None:
    from rotators.mysql.dialect import BYTES_PER_BATCH

    long_name = "c" * 60
    columns = ", ".join(f"`{long_name}{index:03}`" for index in range(200))
    steps = [
        Step(f"GRANT SELECT ({columns}) ON `d`.`t{i}` TO %s@%s", ("u", "%"), f"grant t{i}")
        for i in range(200)
    ]
    for version in (MYSQL_8, MARIADB):
        batches = Server.parse(version).batches(steps)
        assert len(batches) > 1
        assert all(len(batch.statement.encode()) <= BYTES_PER_BATCH for batch in batches)
        assert [step for batch in batches for step in batch.steps] == steps


def test_the_private_pymysql_calls_the_batches_use_keep_their_shape() -> None:
    """COM_SET_OPTION goes through two private PyMySQL methods (no public call exists);
    requirements.txt pins PyMySQL below 1.3, and this fails first if their shape moves."""
    import inspect

    from pymysql.connections import Connection

    # Neither is in the stubs: read by name.
    execute_command = inspect.signature(getattr(Connection, "_execute_command"))  # noqa: B009
    assert list(execute_command.parameters) == ["self", "command", "sql"]
    # Called with no argument: every parameter after self has a default.
    _self, *rest = inspect.signature(getattr(Connection, "_read_packet")).parameters.values()  # noqa: B009
    assert all(parameter.default is not inspect.Parameter.empty for parameter in rest)
    assert isinstance(inspect.getattr_static(Connection, "open"), property)


class _OffFails(RecordingConnection):
    """Fails the batch's third answer; the switch back (option 1) fails too."""

    closed = False

    def nextset(self) -> bool:
        import pymysql

        raise pymysql.err.OperationalError(1146, "Table 'd.t1' doesn't exist")

    def _execute_command(self, command: int, argument: bytes) -> None:
        import pymysql

        super()._execute_command(command, argument)
        if argument == b"\x01\x00":
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")

    def close(self) -> None:
        self.closed = True
        self.open = False


def test_a_failed_switch_back_closes_the_connection_and_raises_the_batchs_own_error() -> None:
    connection = _OffFails(MYSQL_8, {})
    with pytest.raises(DatabaseOperationError, match=r"could not grant t1: 1146"):
        _run_batches(pymysql_like(connection), Server.parse(MYSQL_8), _steps(3))
    assert connection.closed


def test_a_connection_already_closed_gets_no_switch_back() -> None:
    connection = _OffFails(MYSQL_8, {})
    connection.open = False
    with pytest.raises(DatabaseOperationError, match=r"could not grant t1: 1146"):
        _run_batches(pymysql_like(connection), Server.parse(MYSQL_8), _steps(3))
    assert ("COMMAND 27", (b"\x01\x00",)) not in connection.sent
    assert not connection.closed


def test_a_failed_switch_back_after_a_good_batch_closes_the_connection() -> None:
    class OffFailsOnly(_OffFails):
        def nextset(self) -> bool:
            return RecordingConnection.nextset(self)

    connection = OffFailsOnly(MYSQL_8, {})
    with pytest.raises(DatabaseOperationError, match=r"switch multi-statements for a batch: 2013"):
        _run_batches(pymysql_like(connection), Server.parse(MYSQL_8), _steps(3))
    assert connection.closed


def test_the_tls_requirement_goes_with_the_password() -> None:
    mysql_8, old = Server.parse(MYSQL_8), Server.parse(MYSQL_56)
    assert mysql_8.create_user(False, "REQUIRE SSL") == "CREATE USER %s@%s IDENTIFIED BY %s REQUIRE SSL"
    assert mysql_8.set_password(False, "REQUIRE X509") == "ALTER USER %s@%s IDENTIFIED BY %s REQUIRE X509"
    assert (
        Server.parse(MARIADB).set_password(True, "REQUIRE SSL")
        == "ALTER USER %s@%s IDENTIFIED BY PASSWORD %s REQUIRE SSL"
    )
    assert old.requires_apart and not mysql_8.requires_apart
    assert old.require_statement("REQUIRE SSL") == "GRANT USAGE ON *.* TO %s@%s REQUIRE SSL"
    with pytest.raises(ValueError, match="no REQUIRE"):
        old.set_password(False, "REQUIRE SSL")


LIMITS = "MAX_QUERIES_PER_HOUR %s MAX_UPDATES_PER_HOUR %s MAX_CONNECTIONS_PER_HOUR %s MAX_USER_CONNECTIONS %s"


@pytest.mark.parametrize(
    ("version", "statement"),
    [
        # MySQL 8 and MariaDB: with the password, in ALTER USER (CREATE USER alike).
        (MYSQL_8, f"ALTER USER %s@%s IDENTIFIED BY %s REQUIRE SSL WITH {LIMITS}"),
        (MARIADB, f"ALTER USER %s@%s IDENTIFIED BY %s REQUIRE SSL WITH {LIMITS} MAX_STATEMENT_TIME %s"),
        # MySQL 5.6: no account options with a password, a GRANT USAGE of their own.
        (MYSQL_56, f"GRANT USAGE ON *.* TO %s@%s REQUIRE SSL WITH {LIMITS}"),
    ],
)
def test_resource_limits_go_with_the_tls_requirement(version: str, statement: str) -> None:
    server = Server.parse(version)
    limits = (1, 2, 3, 4, Decimal("1.500000"))[: len(server.resource_limits)]
    clause, params = AccountOptions("ANY", "", "", "", limits).clause(server)
    assert params == list(limits)
    sent = server.require_statement(clause) if server.requires_apart else server.set_password(False, clause)
    assert sent == statement


def test_account_options_name_what_differs() -> None:
    server = Server.parse(MARIADB)
    wanted = AccountOptions("SPECIFIED", "", "/CN=ca", "/CN=app", (0, 100, 0, 3, Decimal("1.500000")))
    held = AccountOptions("ANY", "", "", "", (0, 100, 0, 0, Decimal("0.000000")))
    assert wanted.differences(held, server) == (
        "TLS requirement SPECIFIED /CN=ca /CN=app, not ANY, MAX_USER_CONNECTIONS 3, not 0, "
        "MAX_STATEMENT_TIME 1.500000, not 0.000000"
    )
    assert wanted.differences(wanted, server) == ""


MARIADB_GLOBAL = (
    "GRANT SELECT ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC07F1AEAD1477967B16F28227' "
    "WITH GRANT OPTION MAX_QUERIES_PER_HOUR 100 MAX_USER_CONNECTIONS 3 MAX_STATEMENT_TIME 1.500000"
)


@pytest.mark.parametrize(
    ("line", "grant"),
    [
        # MariaDB: the grant option after the password hash, limits after the option.
        (MARIADB_GLOBAL, Grant("SELECT ON *.*", "WITH GRANT OPTION")),
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB' REQUIRE SSL WITH GRANT OPTION",
            Grant("USAGE ON *.*", "WITH GRANT OPTION"),
        ),
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB' WITH MAX_USER_CONNECTIONS 3",
            Grant("USAGE ON *.*", ""),
        ),
        # Words in a quoted REQUIRE SUBJECT or password are no option.
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED VIA ed25519 USING 'x WITH GRANT OPTION' "
            "REQUIRE SUBJECT '/CN=WITH GRANT OPTION'",
            Grant("USAGE ON *.*", ""),
        ),
        ("GRANT `r` TO `app`@`%` WITH ADMIN OPTION", Grant("`r`", "WITH ADMIN OPTION")),
    ],
)
def test_the_grant_option_is_read_apart_from_the_account_options(line: str, grant: Grant) -> None:
    (parsed,) = parse_grants([line], "app", "%")
    assert parsed == grant
    assert "PASSWORD" not in parsed.grant() and "*B6" not in parsed.grant()


def test_usage_with_the_grant_option_is_a_grant_and_plain_usage_is_not() -> None:
    assert Grant("USAGE ON *.*", "").is_usage_only
    with_option = Grant("USAGE ON *.*", "WITH GRANT OPTION")
    assert not with_option.is_usage_only
    assert with_option.grant() == "GRANT USAGE ON *.* TO %s@%s WITH GRANT OPTION"


def test_column_lists_compare_in_one_form_whatever_order_and_quoting() -> None:
    mariadb = "SELECT (`c1`, `c0`, `c 2`), INSERT (`c1`, `c0`), DELETE ON `db`.`w`"
    mysql_57 = "SELECT (c0, c1, `c 2`), INSERT (c0, c1), DELETE ON `db`.`w`"
    assert normalised_what(mariadb) == normalised_what(mysql_57)
    assert normalised_what(mariadb) == "SELECT (`c 2`, `c0`, `c1`), INSERT (`c0`, `c1`), DELETE ON `db`.`w`"
    # Back quotes, commas and parentheses inside a name stay in it.
    assert privileges_of("UPDATE (`a,b`, `x``)`) ON `d`.`t`") == [("UPDATE", ["a,b", "x`)"])]
    assert normalised_what("`reader`@`%`") == "`reader`@`%`"  # a role grant has no columns
    parsed = parse_grants(
        ["GRANT SELECT (`b`, `a`) ON `d`.`t` TO `app`@`%`", "GRANT INSERT (a, b) ON `d`.`u` TO `app`@`%`"],
        "app",
        "%",
    )
    assert parsed == {Grant("SELECT (`a`, `b`) ON `d`.`t`", ""), Grant("INSERT (`a`, `b`) ON `d`.`u`", "")}


def test_a_column_list_in_no_known_form_is_refused() -> None:
    with pytest.raises(ValueError, match="unrecognised column list"):
        normalised_what("SELECT (a(b)) ON `d`.`t`")


def test_the_grant_difference_names_lines_clipped_and_counted() -> None:
    wanted = {Grant(f"SELECT ON `d`.`t{i}`", "") for i in range(5)} | {
        Grant("SELECT ON *.*", "WITH GRANT OPTION")
    }
    held = {Grant(f"SELECT ON `d`.`t{i}`", "") for i in range(1, 5)} | {Grant("SELECT ON *.*", "")}
    held.add(Grant("INSERT (" + ", ".join(f"`c{i}`" for i in range(80)) + ") ON `d`.`t`", ""))
    message = grant_difference(wanted, held)
    assert message.startswith("missing: SELECT ON *.* WITH GRANT OPTION; SELECT ON `d`.`t0`, extra: ")
    assert "INSERT (`c0`" in message and "..." in message and "`c79`" not in message
    assert grant_difference(wanted, wanted) == ""
    many = {Grant(f"SELECT ON `d`.`x{i}`", "") for i in range(7)}
    assert grant_difference(many, set()).endswith(" and 4 more")


def test_the_preflight_reads_privilege_names_past_column_lists() -> None:
    what = normalised_what("SELECT (`a`, `b`), INSERT (`a`) ON `d`.`t`")
    assert _privilege_names(what) == {"SELECT", "INSERT"}
    assert _privilege_names("`reader`@`%`") == set()


def test_a_global_line_keeps_its_grant_option_and_column_lists_read_in_one_order() -> None:
    """MariaDB prints the global line with the account's password, TLS requirement and
    limits around ``WITH GRANT OPTION``, and a column grant's columns in an order of its
    own: the grant option is kept, the columns compared as sets."""
    line = (
        "GRANT SELECT ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*78E9' REQUIRE SSL "
        "WITH GRANT OPTION MAX_QUERIES_PER_HOUR 100 MAX_USER_CONNECTIONS 3"
    )
    assert parse_grants([line], "u", "%") == {Grant("SELECT ON *.*", "WITH GRANT OPTION")}
    one = parse_grants(["GRANT SELECT (`c1`, `c0`, `c,2`), INSERT (`c2`) ON `d`.`w` TO `u`@`%`"], "u", "%")
    other = parse_grants(["GRANT SELECT (`c,2`, `c1`, `c0`), INSERT (`c2`) ON `d`.`w` TO `u`@`%`"], "u", "%")
    assert one == other == {Grant("SELECT (`c,2`, `c0`, `c1`), INSERT (`c2`) ON `d`.`w`", "")}


def test_the_replication_status_statement_lists_every_source() -> None:
    assert Server.parse("10.11.6-MariaDB-0+deb12u1").replica_status == "SHOW ALL SLAVES STATUS"
    assert Server.parse("8.0.36").replica_status == "SHOW REPLICA STATUS"
    assert Server.parse("8.0.21").replica_status == "SHOW SLAVE STATUS"
    assert Server.parse("5.7.44-log").replica_status == "SHOW SLAVE STATUS"


def test_the_default_quoting_takes_out_every_mode_that_sets_ansi_quotes() -> None:
    """A combination mode left in sql_mode sets ANSI_QUOTES again (MariaDB, MySQL 5.7)."""
    for mode in ("ANSI_QUOTES", "ANSI", "ORACLE", "POSTGRESQL", "MSSQL", "DB2", "MAXDB"):
        assert f"',{mode},', ','" in _DEFAULT_QUOTING


def test_a_session_still_quoting_with_ansi_quotes_names_sql_mode() -> None:
    """Read back, not assumed: a mode the list does not know fails naming sql_mode."""
    connection = RecordingConnection(
        MARIADB, {"SELECT @@SESSION.sql_mode": [("PIPES_AS_CONCAT,ANSI_QUOTES",)]}
    )
    with pytest.raises(DatabaseOperationError, match="sql_mode still has ANSI_QUOTES"):
        _default_quoting(pymysql_like(connection))
    quiet = RecordingConnection(MARIADB, {})
    _default_quoting(pymysql_like(quiet))
    _default_quoting(pymysql_like(quiet))  # once per session
    assert [statement for statement, _ in quiet.sent] == [_DEFAULT_QUOTING, "SELECT @@SESSION.sql_mode"]
