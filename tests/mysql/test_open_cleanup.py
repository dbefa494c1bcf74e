"""open() leaves nothing open when a statement after the login fails.

PyMySQL runs ``SET AUTOCOMMIT`` after authenticating, inside its own ``connect()``; an
account limited to one statement an hour gets it refused on its second session.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from common.engine import Login
from common.errors import DatabaseConnectionError
from common.tls import TlsPolicy
from rotators.mysql.engine import MySQLEngine
from tests.conftest import new_password, unique

if TYPE_CHECKING:
    from devtools.mariadb import MariaDBServer


def sessions_of(mariadb: MariaDBServer, user: str) -> int:
    rows = mariadb.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))
    return int(rows[0][0])


def test_a_statement_refused_after_the_login_leaves_no_session(mariadb: MariaDBServer) -> None:
    user, password = unique("limited"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s WITH MAX_QUERIES_PER_HOUR 1", (user, password))
    login = Login(
        mariadb.host, mariadb.port, None, user, password, TlsPolicy(True, mariadb.ca_file), 5, 5, "x"
    )
    engine = MySQLEngine()
    engine.close(engine.open(login))  # its one statement: SET AUTOCOMMIT
    with pytest.raises(DatabaseConnectionError, match="has exceeded the 'max_queries_per_hour' resource"):
        engine.open(login)
    deadline = time.monotonic() + 5
    while sessions_of(mariadb, user) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sessions_of(mariadb, user) == 0
