"""What the MySQL engine assumes of PyMySQL where it has no public API, pinned here so
that a driver upgrade that breaks it fails a test instead of a rotation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pymysql
import pytest

from common.engine import Login
from common.tls import TlsPolicy
from rotators.mysql.engine import MySQLEngine
from tests.conftest import new_password, unique

if TYPE_CHECKING:
    from devtools.mariadb import MariaDBServer


def test_the_statement_time_out_set_after_connecting_is_applied(mariadb: MariaDBServer) -> None:
    # open() connects with the connect time-out, then sets PyMySQL's private
    # _read_timeout to the statement time-out (PyMySQL has no public setter).
    user, password = unique("slow"), new_password()
    mariadb.create_user(user, password)
    login = Login(
        mariadb.host, mariadb.port, None, user, password, TlsPolicy(True, mariadb.ca_file), 30, 1, "x"
    )
    engine = MySQLEngine()
    connection = engine.open(login)
    try:
        with pytest.raises(pymysql.err.OperationalError) as raised, connection.cursor() as cursor:
            # Without the time-out this returns (0,) after 4 s.
            cursor.execute("SELECT SLEEP(4)")
        assert raised.value.args[0] == 2013  # CR_SERVER_LOST: the read timed out
    finally:
        engine.close(connection)
