"""The throwaway servers start even when another process takes their probed port first."""

from __future__ import annotations

import socket

import pytest

from devtools.mariadb import MariaDBServer
from devtools.mongo_peer import MongoPeer
from devtools.postgres import PostgresServer
from tests.conftest import new_password, unique


@pytest.mark.parametrize("kind", [PostgresServer, MariaDBServer, MongoPeer])
def test_a_port_taken_after_the_probe_is_replaced(
    kind: type[PostgresServer | MariaDBServer | MongoPeer],
) -> None:
    server = kind()
    taken = server.port
    # Another process binds the probed port before the server does.
    with socket.create_server(("127.0.0.1", taken)):
        server.start()
        try:
            assert server.port != taken
            user, password = unique("port"), new_password()
            server.create_database(user)
            server.create_user(user, password, user)
            assert server.can_login(user, password, user)
            assert not server.can_login(user, password + "-wrong", user)
        finally:
            server.stop()
