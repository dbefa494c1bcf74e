"""Issue 15's grant-line faults on the real MariaDB: the global grant option, column
lists the server reorders, and account resource limits reach the clone (from attack 5's
tests/attack5/test_mysql_batches.py, with the code fixed, not the tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from common.errors import VerificationError
from rotators.mysql.dialect import grant_difference, native_password_hash
from rotators.mysql.engine import MySQLEngine, _grants
from tests.conftest import new_password, unique
from tests.mysql.conftest import maria_login, maria_master, mirror_clone, mirror_once, run_many

if TYPE_CHECKING:
    from devtools.mariadb import MariaDBServer


def _user_flags(mariadb: MariaDBServer, who: str) -> list[tuple[object, ...]]:
    return mariadb.execute(
        "SELECT Select_priv, Grant_priv FROM mysql.user WHERE User = %s AND Host = '%%'", (who,)
    )


def test_a_global_grant_option_reaches_the_clone_or_the_step_fails(mariadb: MariaDBServer) -> None:
    """MariaDB prints ``GRANT SELECT ON *.* TO u IDENTIFIED BY PASSWORD '*...' WITH GRANT
    OPTION``: the grant option is read apart from the account options, so the clone holds
    it (Grant_priv). The attack test, unchanged but for the module it lives in."""
    user, password = unique("gopt"), new_password()
    setup = [
        f"CREATE USER `{user}`@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON *.* TO `{user}`@'%' WITH GRANT OPTION",
    ]
    try:
        mirror_once(mariadb, setup, user, password)
    except VerificationError as error:
        assert "GRANT OPTION" in str(error), f"the difference is not named: {error}"
        return
    flags = {who: _user_flags(mariadb, who) for who in (user, user + "_clone")}
    assert flags[user] == [("Y", "Y")]
    assert flags[user + "_clone"] == flags[user], flags


def test_the_bare_global_grant_option_with_limits_reaches_the_clone_and_leaves_it(
    mariadb: MariaDBServer,
) -> None:
    """``GRANT USAGE ON *.* ... WITH GRANT OPTION`` is a grant, not the usage every account
    holds: the clone gets it, with the limits MariaDB prints on the same line after it; when
    the original loses it, the next rotation takes it from the clone."""
    user, password = unique("gusage"), new_password()
    clone = user + "_clone"
    setup = [
        f"CREATE USER `{user}`@'%' IDENTIFIED BY '{password}' WITH MAX_UPDATES_PER_HOUR 7",
        f"GRANT USAGE ON *.* TO `{user}`@'%' WITH GRANT OPTION",
    ]
    mirror_once(mariadb, setup, user, password)
    assert _user_flags(mariadb, clone) == [("N", "Y")]
    assert mariadb.execute("SELECT max_updates FROM mysql.user WHERE User = %s", (clone,)) == [(7,)]
    mirror_once(mariadb, [f"REVOKE GRANT OPTION ON *.* FROM `{user}`@'%'"], user, password)
    assert _user_flags(mariadb, clone) == [("N", "N")] == _user_flags(mariadb, user)


def test_column_grants_of_three_columns_mirror(mariadb: MariaDBServer) -> None:
    """A column grant over three columns: MariaDB lists the clone's columns in another
    order than the original's; the comparison reads both in one form, so the rotation
    completes with the same privileges per column. The attack test, with the rotation
    now required to succeed."""
    user, password, db = unique("cols"), new_password(), unique("db")
    clone = user + "_clone"
    run_many(
        mariadb,
        [
            f"CREATE DATABASE `{db}`",
            f"CREATE USER `{user}`@'%' IDENTIFIED BY '{password}'",
            f"CREATE TABLE `{db}`.w (c0 int, c1 int, c2 int)",
            f"GRANT SELECT (c0, c1, c2), INSERT (c0, c1, c2), UPDATE (c0, c1, c2) "
            f"ON `{db}`.w TO `{user}`@'%'",
        ],
    )
    for _ in range(2):  # a second rotation finds nothing to change
        mirror_clone(mariadb, user, password)
    privileges = {
        who: set(
            mariadb.execute(
                "SELECT Db, Table_name, Column_name, Column_priv FROM mysql.columns_priv WHERE User = %s",
                (who,),
            )
        )
        for who in (user, clone)
    }
    assert len(privileges[user]) == 3
    assert privileges[user] == privileges[clone]


def test_a_clone_that_does_not_match_names_the_differing_grant_lines(mariadb: MariaDBServer) -> None:
    """The verification's message names the grant lines that differ (read as the engine
    reads them after its batch), never a password or its hash: the clone's grants are
    changed behind the engine's back, as another administrator could between the batch
    and the check."""
    user, password, db = unique("diff"), new_password(), unique("db")
    clone, secret = user + "_clone", new_password()
    run_many(
        mariadb,
        [
            f"CREATE DATABASE `{db}`",
            f"CREATE USER `{user}`@'%' IDENTIFIED BY '{password}' WITH MAX_USER_CONNECTIONS 9",
            f"GRANT SELECT ON `{db}`.* TO `{user}`@'%'",
        ],
    )
    engine = MySQLEngine()
    current = maria_login(mariadb, user, password, "AWSCURRENT")
    with engine.connect(maria_master(mariadb)) as master:
        engine.set_alternate_user(
            master, original=user, clone=clone, user=clone, password=secret, database=None, current=current
        )
        assert grant_difference(_grants(master, user, "%"), _grants(master, clone, "%")) == ""
        run_many(
            mariadb,
            [f"REVOKE SELECT ON `{db}`.* FROM `{clone}`@'%'", f"GRANT INSERT ON `{db}`.* TO `{clone}`@'%'"],
        )
        message = grant_difference(_grants(master, user, "%"), _grants(master, clone, "%"))
    assert message == f"missing: SELECT ON `{db}`.*, extra: INSERT ON `{db}`.*", message
    for hidden in (password, secret, native_password_hash(password), native_password_hash(secret)):
        assert hidden not in message


@pytest.mark.parametrize(
    ("options", "row"),
    [
        ("WITH MAX_USER_CONNECTIONS 3 MAX_QUERIES_PER_HOUR 100", (3, 100, 0, 0)),
        (
            "WITH MAX_UPDATES_PER_HOUR 5 MAX_CONNECTIONS_PER_HOUR 6 MAX_STATEMENT_TIME 1.5",
            (0, 0, 5, 6),
        ),
    ],
)
def test_account_resource_limits_reach_the_clone(
    mariadb: MariaDBServer, options: str, row: tuple[int, ...]
) -> None:
    """Every resource limit (MariaDB's MAX_STATEMENT_TIME too) reaches the clone; the
    first case is the attack test's."""
    user, password = unique("lim"), new_password()
    mirror_once(mariadb, [f"CREATE USER `{user}`@'%' IDENTIFIED BY '{password}' {options}"], user, password)
    limits = {
        who: mariadb.execute(
            "SELECT max_user_connections, max_questions, max_updates, max_connections, max_statement_time "
            "FROM mysql.user WHERE User = %s AND Host = '%%'",
            (who,),
        )
        for who in (user, user + "_clone")
    }
    assert limits[user][0][:4] == row
    assert limits[user + "_clone"] == limits[user], limits


def test_limits_the_original_dropped_are_dropped_from_the_clone(mariadb: MariaDBServer) -> None:
    user, password = unique("limdrop"), new_password()
    clone = user + "_clone"
    mirror_once(
        mariadb,
        [f"CREATE USER `{user}`@'%' IDENTIFIED BY '{password}' WITH MAX_USER_CONNECTIONS 4"],
        user,
        password,
    )
    assert mariadb.execute("SELECT max_user_connections FROM mysql.user WHERE User = %s", (clone,)) == [(4,)]
    mirror_once(mariadb, [f"ALTER USER `{user}`@'%' WITH MAX_USER_CONNECTIONS 0"], user, password)
    assert mariadb.execute("SELECT max_user_connections FROM mysql.user WHERE User = %s", (clone,)) == [(0,)]
