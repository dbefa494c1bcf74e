"""The throwaway server starts even when another process takes its probed port first."""

from __future__ import annotations

import socket

from devtools.postgres import PostgresServer


def test_a_port_taken_after_the_probe_is_replaced() -> None:
    server = PostgresServer()
    taken = server.port
    # Another process binds the probed port before the server does.
    with socket.create_server(("127.0.0.1", taken)):
        server.start()
        try:
            assert server.port != taken
            assert server.execute("SELECT current_setting('port')::int") == [(server.port,)]
            assert server.can_login(server.admin_user, server.admin_password)
        finally:
            server.stop()
