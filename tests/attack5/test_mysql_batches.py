"""Attack round 5 on issue 15's batched MySQL/MariaDB mirroring (``BEGIN NOT ATOMIC``
blocks on MariaDB, ``;``-joined multi-statements for MySQL), against the real MariaDB the
suite starts. Each test states the promise it checks; a failing test is a finding.

The round's column-grant, global grant option and resource-limit tests live on, made
stricter, in tests/mysql/test_grant_lines.py."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

import pytest

from common.errors import DatabaseOperationError
from rotators.mysql.dialect import Server, Step
from rotators.mysql.engine import MySQLEngine, _run_batches
from tests.conftest import new_password, unique
from tests.helpers import handler_for, store_secret, value
from tests.mysql.conftest import maria_login, maria_master, maria_secret, mirror_clone, run_many
from tests.mysql.test_charset import client_accepts
from tests.mysql.test_mariadb import grants_of

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def test_odd_identifiers_roles_proxies_routines_and_wildcard_hosts_mirror_exactly(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Grant lines whose identifiers hold ``;``, quotes, backticks, ``%``, ``_``, ``\\``,
    unicode and 64-character names; a role (with ADMIN OPTION, as default role), a proxy
    grant, a procedure and a function grant, column grants, GRANT OPTION, two host parts
    with wildcards: after two alternating rotations the clone holds exactly what the
    original holds at each host, and each AWSCURRENT logs in."""
    user, password = unique("odd"), new_password()
    db = "d;b'x%_\\ü" + unique("")[-6:]
    table = "t`q;" + "é" * 10
    column = "c;'`d\\%_"
    long_table = "L" * 64
    role = "r'o;le`%" + unique("")[-6:]
    proxied = "p'x;`y" + unique("")[-6:]
    hosts = ("%", "10.%.1_")
    master_user, master_password = unique("admin"), new_password()
    mariadb.create_master(master_user, master_password)
    master_arn = store_secret(
        sm_client, service, master_user, maria_secret(mariadb, master_user, master_password), rotation=False
    )
    # The master may grant proxies (as on RDS): done as root over the socket.
    mariadb.bootstrap(
        f"GRANT PROXY ON ''@'%' TO '{master_user}'@'%' WITH GRANT OPTION;CREATE USER {_q(proxied)}@'%';"
    )
    setup = [
        f"CREATE DATABASE {_q(db)}",
        f"CREATE TABLE {_q(db)}.{_q(table)} ({_q(column)} int, other int)",
        f"CREATE TABLE {_q(db)}.{_q(long_table)} (v int)",
        f"CREATE PROCEDURE {_q(db)}.{_q('pr;oc`')}() SELECT 1",
        f"CREATE FUNCTION {_q(db)}.{_q('fn%_')}() RETURNS int RETURN 1",
        f"CREATE ROLE {_q(role)}",
        f"GRANT {_q(role)} TO {_q(master_user)}@'%' WITH ADMIN OPTION",
    ]
    for host in hosts:
        setup += [
            f"CREATE USER {_q(user)}@{_q(host)} IDENTIFIED BY '{password}'",
            f"GRANT SELECT, INSERT ON {_q(db)}.* TO {_q(user)}@{_q(host)} WITH GRANT OPTION",
            f"GRANT SELECT ({_q(column)}), UPDATE ({_q(column)}, other) ON {_q(db)}.{_q(table)} "
            f"TO {_q(user)}@{_q(host)}",
            f"GRANT DELETE ON {_q(db)}.{_q(long_table)} TO {_q(user)}@{_q(host)}",
            f"GRANT EXECUTE ON PROCEDURE {_q(db)}.{_q('pr;oc`')} TO {_q(user)}@{_q(host)}",
            f"GRANT EXECUTE ON FUNCTION {_q(db)}.{_q('fn%_')} TO {_q(user)}@{_q(host)}",
            f"GRANT {_q(role)} TO {_q(user)}@{_q(host)} WITH ADMIN OPTION",
            f"SET DEFAULT ROLE {_q(role)} FOR {_q(user)}@{_q(host)}",
        ]
    run_many(mariadb, setup)
    mariadb.bootstrap(f"GRANT PROXY ON {_q(proxied)}@'%' TO {_q(user)}@'%';")
    handler = handler_for(MySQLEngine(), sm_client, DB_CA_BUNDLE=mariadb.ca_file)
    arn = store_secret(
        sm_client, service, unique("odd"), maria_secret(mariadb, user, password, masterarn=master_arn)
    )
    for _ in range(2):
        service.rotate(handler, arn)
        current = value(sm_client, arn, "AWSCURRENT")
        assert client_accepts(mariadb, current["username"], current["password"])
        for host in hosts:
            assert grants_of(mariadb, user + "_clone", host) == grants_of(mariadb, user, host), host


def test_more_than_a_thousand_statements_and_a_failure_in_the_second_batch(mariadb: MariaDBServer) -> None:
    """1,100 grant lines at one host: two batches; mirrored exactly. Then a grant the
    server refuses in the second batch: the error names that grant (not a neighbour),
    never the password, and the next attempt, once fixed, completes."""
    user, password, db = unique("many"), new_password(), unique("db")
    clone = user + "_clone"
    count = 1100
    setup = [f"CREATE DATABASE `{db}`", f"CREATE USER `{user}`@'%' IDENTIFIED BY '{password}'"]
    setup += [f"CREATE TABLE `{db}`.t{index:04} (v int)" for index in range(count)]
    setup += [f"GRANT SELECT ON `{db}`.t{index:04} TO `{user}`@'%'" for index in range(count)]
    run_many(mariadb, setup)
    engine = MySQLEngine()
    current = maria_login(mariadb, user, password, "AWSCURRENT")
    clone_password = new_password()
    with engine.connect(maria_master(mariadb)) as master:
        engine.set_alternate_user(
            master,
            original=user,
            clone=clone,
            user=clone,
            password=clone_password,
            database=None,
            current=current,
        )
        assert grants_of(mariadb, clone, "%") == grants_of(mariadb, user, "%")
        # t1050 sorts into the second batch of grants (after the first 1,000 steps).
        run_many(
            mariadb,
            [
                f"GRANT UPDATE ON `{db}`.t1050 TO `{user}`@'%'",
                f"GRANT INSERT ON `{db}`.t0001 TO `{user}`@'%'",
                f"DROP TABLE `{db}`.t1050",
            ]
            + [f"GRANT INSERT ON `{db}`.t{index:04} TO `{user}`@'%'" for index in range(2, 1049)],
        )
        newer = new_password()
        with pytest.raises(DatabaseOperationError) as failure:
            engine.set_alternate_user(
                master, original=user, clone=clone, user=clone, password=newer, database=None, current=current
            )
        assert "t1050" in str(failure.value), str(failure.value)
        assert newer not in str(failure.value)


def test_a_batch_larger_than_max_allowed_packet_fails_clearly_not_as_a_lost_connection(
    mariadb: MariaDBServer,
) -> None:
    """An operator's ``max_allowed_packet`` (1 MiB, MySQL 5.5's and older MariaDB's default)
    with wide column grants: every single statement fits, one batch of them does not.
    Expected: the mirror still completes (batches sized to the packet limit). Before
    the batching, each statement was sent alone and the rotation worked."""
    user, password, db = unique("wide"), new_password(), unique("db")
    clone = user + "_clone"
    columns = [f"c{index:03}_" + "x" * 56 for index in range(400)]
    setup = [f"CREATE DATABASE `{db}`", f"CREATE USER `{user}`@'%' IDENTIFIED BY '{password}'"]
    column_list = ", ".join(f"`{name}`" for name in columns)
    for index in range(16):
        setup.append(f"CREATE TABLE `{db}`.w{index} ({', '.join(f'`{name}` int' for name in columns)})")
        setup.append(
            f"GRANT SELECT ({column_list}), INSERT ({column_list}), UPDATE ({column_list}) "
            f"ON `{db}`.w{index} TO `{user}`@'%'"
        )
    run_many(mariadb, setup)
    line = max(len(str(row[0])) for row in mariadb.execute("SHOW GRANTS FOR %s@'%%'", (user,)))
    assert 60_000 < line < 200_000  # one statement is far below the limit, sixteen are not
    (previous,) = mariadb.execute("SELECT @@GLOBAL.max_allowed_packet")[0]
    mariadb.execute("SET GLOBAL max_allowed_packet = 1048576")
    try:
        mirror_clone(mariadb, user, password)  # batches are sized under the packet limit
        assert grants_of(mariadb, clone, "%") == grants_of(mariadb, user, "%")
    finally:
        mariadb.execute(f"SET GLOBAL max_allowed_packet = {int(previous)}")


def test_mysql_batch_on_a_lost_connection_names_the_statement_not_the_switch(mariadb: MariaDBServer) -> None:
    """MySQL's form: a statement that loses the connection part-way through a batch. The
    error should name what failed (the batch/statement), not the clean-up that switches
    multi-statements off on a dead session."""
    user = unique("lost")
    mariadb.execute("CREATE USER %s@'%%'", (user,))
    engine = MySQLEngine()
    mysql_8 = Server.parse("8.0.36")
    with engine.connect(maria_master(mariadb)) as master:
        with master.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID()")
            (own,) = cursor.fetchone() or (0,)
        steps = [
            Step("GRANT USAGE ON *.* TO %s@%s", (user, "%"), "first grant"),
            Step(f"KILL CONNECTION {int(own)}", (), "the statement that loses the session"),
            Step("GRANT USAGE ON *.* TO %s@%s", (user, "%"), "third grant"),
        ]
        with pytest.raises(DatabaseOperationError) as failure:
            _run_batches(master, mysql_8, steps)
        assert "switch multi-statements" not in str(failure.value), str(failure.value)


def test_two_pairs_sharing_a_master_rotate_concurrently(mariadb: MariaDBServer) -> None:
    """Two alternating pairs mirrored at once on two sessions of the same master: both
    complete and each clone holds exactly its own original's grants (batches and the
    step variable are per session)."""
    engine = MySQLEngine()
    pairs = []
    for _ in range(2):
        user, password, db = unique("pair"), new_password(), unique("db")
        setup = [f"CREATE DATABASE `{db}`", f"CREATE USER `{user}`@'%' IDENTIFIED BY '{password}'"]
        setup += [f"CREATE TABLE `{db}`.t{index} (v int)" for index in range(60)]
        setup += [f"GRANT SELECT ON `{db}`.t{index} TO `{user}`@'%'" for index in range(60)]
        run_many(mariadb, setup)
        pairs.append((user, password))
    errors: list[BaseException] = []

    def rotate(user: str, password: str) -> None:
        try:
            for _ in range(3):
                mirror_clone(mariadb, user, password, engine)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=rotate, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for user, _ in pairs:
        assert grants_of(mariadb, user + "_clone", "%") == grants_of(mariadb, user, "%")


def _short(prefix: str) -> str:
    return prefix + unique("")[-6:]


def test_a_column_name_the_clone_chose_is_run_as_the_masters_sql(mariadb: MariaDBServer) -> None:
    """CRITICAL. ``Grant.revokes()`` takes the target of ``REVOKE GRANT OPTION ON ...``
    from the *first* `` ON `` of the grant text, which may lie inside a back-quoted column
    name: the rest of the name is then spliced unquoted into the master's SQL. Batched,
    a ``;`` in the name starts a statement of the attacker's. The clone (the application
    while it is AWSCURRENT, holding ``ALL ON appdb.* WITH GRANT OPTION`` as its original
    does) creates a column named ``a ON *.* FROM <clone>;GRANT ALL ON *.* TO <clone>#``
    and grants itself SELECT on it WITH GRANT OPTION; at the next rotation the master
    revokes what the original lacks, in MySQL's multi-statement batch, and runs the
    attacker's GRANT. Expected: no statement of the master's ever contains text from an
    identifier outside its quotes (the revoke targets ``appdb.t``). Actual (MySQL form,
    run against the real server): the clone holds ALL PRIVILEGES ON *.*."""
    original, db = _short("o"), _short("d")
    clone = original + "_clone"
    column = f"a ON *.* FROM {clone};GRANT ALL ON *.* TO {clone}#"
    assert len(column) <= 64
    run_many(
        mariadb,
        [
            f"CREATE DATABASE `{db}`",
            f"CREATE USER `{original}`@'%' IDENTIFIED BY 'x{original}'",
            f"CREATE USER `{clone}`@'%' IDENTIFIED BY 'x{clone}'",
            f"GRANT ALL ON `{db}`.* TO `{original}`@'%' WITH GRANT OPTION",
            f"GRANT ALL ON `{db}`.* TO `{clone}`@'%' WITH GRANT OPTION",
        ],
    )
    # What the application does as the clone: its own privileges suffice.
    attacker = mariadb.connect_as(clone, f"x{clone}")
    try:
        with attacker.cursor() as cursor:
            cursor.execute(f"CREATE TABLE `{db}`.t (`{column}` int)")
            cursor.execute(f"GRANT SELECT (`{column}`) ON `{db}`.t TO CURRENT_USER WITH GRANT OPTION")
    finally:
        attacker.close()
    engine = MySQLEngine()
    from rotators.mysql.engine import _grants

    with engine.connect(maria_master(mariadb)) as master:
        held, wanted = _grants(master, clone, "%"), _grants(master, original, "%")
        # The engine's own composition (MySQLEngine._mirror_account) of the revokes.
        steps = [
            Step(statement, (clone, "%"), f"revoke {grant.what}")
            for grant in sorted(held - wanted)
            if not grant.is_usage_only
            for statement in grant.revokes()
        ]
        assert any(column.split(" ON ", 1)[1] in step.statement for step in steps)
        with contextlib.suppress(DatabaseOperationError):
            _run_batches(master, Server.parse("8.0.36"), steps)
    global_privileges = mariadb.execute(
        "SELECT Super_priv, Create_user_priv FROM mysql.user WHERE User = %s", (clone,)
    )
    assert global_privileges == [("N", "N")], "the clone made itself a server administrator"


def test_the_same_column_name_stops_every_mariadb_rotation_without_naming_it(mariadb: MariaDBServer) -> None:
    """The MariaDB form of the attack above: the anonymous block does not parse (the
    ``#`` comments out its END), so nothing runs — but the rotation fails at every
    attempt with "could not run N statements: 1064", naming neither the grant nor the
    column: the application, as clone, can stop its secret's rotation for good."""
    original, db = _short("o"), _short("d")
    clone = original + "_clone"
    password = f"x{original}"
    column = f"a ON *.* FROM {clone};GRANT ALL ON *.* TO {clone}#"
    run_many(
        mariadb,
        [
            f"CREATE DATABASE `{db}`",
            f"CREATE USER `{original}`@'%' IDENTIFIED BY '{password}'",
            f"CREATE USER `{clone}`@'%' IDENTIFIED BY 'x{clone}'",
            f"GRANT ALL ON `{db}`.* TO `{original}`@'%' WITH GRANT OPTION",
            f"GRANT ALL ON `{db}`.* TO `{clone}`@'%' WITH GRANT OPTION",
            f"CREATE TABLE `{db}`.t (`{column}` int)",
            f"GRANT SELECT (`{column}`) ON `{db}`.t TO `{clone}`@'%' WITH GRANT OPTION",
        ],
    )
    mirror_clone(mariadb, original, password)
    assert grants_of(mariadb, clone, "%") == grants_of(mariadb, original, "%")
