"""A Redshift stand-in for the tests: PostgreSQL 15 behind a small protocol bridge.

No Redshift can be had here, and ``redshift_connector`` cannot talk to plain PostgreSQL:
it sends startup parameters PostgreSQL rejects (``client_protocol_version``,
``driver_version``, ``os_version``, ``driver_discovery_version``...), parses the
``server_version`` it is told with ``packaging.version`` (which fails on
``15.x (Debian ...)``), and its SCRAM path fails with current ``scramp``. The bridge
closes exactly those three gaps and nothing else:

* it terminates TLS with the server's own certificate (so the driver verifies a real
  certificate chain and host name) and forwards the session to PostgreSQL;
* it drops startup parameters PostgreSQL does not know;
* it reports ``server_version`` as ``8.0.2``, Redshift's.

The PostgreSQL behind it authenticates with md5, as Redshift does, so the driver's own
md5 path is what runs. Everything after the startup is relayed byte for byte.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
from typing import Any

from devtools.ports import free_port
from devtools.postgres import PostgresServer

SSL_REQUEST = 80877103
KNOWN_STARTUP_PARAMETERS = {b"user", b"database", b"application_name", b"options", b"client_encoding"}
REDSHIFT_VERSION = b"8.0.2"


class RedshiftStandIn(PostgresServer):
    """PostgreSQL (md5) reached through the bridge: ``host``/``port`` are the bridge's."""

    engine_key = "redshift"
    admin_database = "dev"

    def __init__(self) -> None:
        super().__init__(hba_method="md5")
        self.postgres_port = self.port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()

    def start(self) -> RedshiftStandIn:
        # PostgreSQL listens on postgres_port; the bridge takes the public port.
        public = self.port
        self.port = self.postgres_port
        super().start()
        self.port = public
        self.create_database("dev")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.root / "tls" / "server.crt", self.root / "tls" / "server.key")
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, args=(context,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        public = self.port
        self.port = self.postgres_port
        super().stop()
        self.port = public

    def admin_connection(self, dbname: str = "dev") -> Any:
        """The superuser's session straight to PostgreSQL (not through the bridge)."""
        public = self.port
        self.port = self.postgres_port
        try:
            return super().admin_connection(dbname)
        finally:
            self.port = public

    def _accept(self, context: ssl.SSLContext) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._bridge, args=(client, context), daemon=True).start()

    def _bridge(self, client: socket.socket, context: ssl.SSLContext) -> None:
        upstream: socket.socket | None = None
        try:
            client.settimeout(30)
            stream: socket.socket = client
            length, code = struct.unpack("!ii", _exactly(client, 8))
            if code == SSL_REQUEST:
                client.sendall(b"S")
                stream = context.wrap_socket(client, server_side=True)
                length, code = struct.unpack("!ii", _exactly(stream, 8))
            parameters = _exactly(stream, length - 8)
            kept = (
                b"".join(
                    key + b"\x00" + value + b"\x00"
                    for key, value in _pairs(parameters)
                    if key in KNOWN_STARTUP_PARAMETERS
                )
                + b"\x00"
            )
            upstream = socket.create_connection((self.host, self.postgres_port), timeout=30)
            upstream.sendall(struct.pack("!ii", 8 + len(kept), code) + kept)
            _relay(stream, upstream)
        except (OSError, ssl.SSLError, struct.error, ConnectionError):
            pass
        finally:
            client.close()
            if upstream is not None:
                upstream.close()

    # -- what the tests make on the server ----------------------------------------

    def create_database(self, dbname: str) -> None:
        """A database whose search path puts Redshift's catalog names first: Redshift's
        ``pg_default_acl`` names its owner column ``defacluser`` (PostgreSQL's is
        ``defaclrole``), and the rotator must send Redshift's statements."""
        from psycopg2 import sql

        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        self._add_redshift_catalog(dbname)

    def _add_redshift_catalog(self, dbname: str) -> None:
        from psycopg2 import sql

        for statement in (
            "CREATE SCHEMA redshift_catalog",
            "CREATE VIEW redshift_catalog.pg_default_acl AS SELECT defaclrole AS defacluser, "
            "defaclnamespace, defaclobjtype, defaclacl FROM pg_catalog.pg_default_acl",
            "GRANT USAGE ON SCHEMA redshift_catalog TO PUBLIC",
            "GRANT SELECT ON redshift_catalog.pg_default_acl TO PUBLIC",
        ):
            self.execute(statement, dbname=dbname)
        self.execute(
            sql.SQL(
                'ALTER DATABASE {} SET search_path = redshift_catalog, pg_catalog, "$user", public'
            ).format(sql.Identifier(dbname))
        )

    def create_user(self, user: str, password: str, dbname: str | None = None) -> None:
        """A user (Redshift's CREATE USER) that may use everything in ``dbname``."""
        from psycopg2 import sql

        self.execute(sql.SQL("CREATE USER {} PASSWORD %s").format(sql.Identifier(user)), (password,))
        if dbname is not None:
            self.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(user))
            )

    def create_master(self, user: str, password: str) -> None:
        """Redshift's admin user is a superuser."""
        from psycopg2 import sql

        self.execute(
            sql.SQL("CREATE USER {} SUPERUSER PASSWORD %s").format(sql.Identifier(user)), (password,)
        )

    def connect_as(self, user: str, password: str, dbname: str | None = None) -> Any:
        """A session through the bridge with redshift_connector, TLS verified against the
        stand-in's CA (the driver reads it through ``SSL_CERT_FILE``)."""
        import redshift_connector

        from rotators.redshift.engine import trusting

        with trusting(self.ca_file):
            return redshift_connector.connect(
                host=self.host,
                port=self.port,
                database=dbname or self.admin_database,
                user=user,
                password=password,
                ssl=True,
                sslmode="verify-full",
                timeout=5,
            )

    def is_refusal(self, error: Exception) -> bool:
        from rotators.redshift.engine import is_login_refusal

        return is_login_refusal(error)

    def whoami(self, user: str, password: str, dbname: str | None = None) -> tuple[str, str, str]:
        connection = self.connect_as(user, password, dbname)
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT session_user, current_user")
            login, acting = cursor.fetchone()
            socket_ = connection._usock  # the driver exposes its TLS socket nowhere else
            protocol = socket_.version() if isinstance(socket_, ssl.SSLSocket) else "none"
        finally:
            connection.close()
        return str(login), str(acting), str(protocol)


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _pairs(parameters: bytes) -> list[tuple[bytes, bytes]]:
    parts = parameters.rstrip(b"\x00").split(b"\x00")
    return list(zip(parts[0::2], parts[1::2], strict=False))


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Both directions in one thread (an SSL socket must not be read and written from two
    threads); server messages are rewritten until the session is ready, then passed as is."""
    starting, pending = True, b""
    while True:
        # Data already decrypted inside the SSL object does not wake select().
        ready: list[socket.socket] = (
            [client] if isinstance(client, ssl.SSLSocket) and client.pending() else []
        )
        if not ready:
            ready, _, _ = select.select([client, upstream], [], [], 30)
            if not ready:
                return
        for source in ready:
            chunk = source.recv(65536)
            if not chunk:
                return
            if source is client:
                upstream.sendall(chunk)
                continue
            if not starting:
                client.sendall(chunk)
                continue
            pending += chunk
            while len(pending) >= 5:
                size = struct.unpack("!i", pending[1:5])[0]
                if len(pending) < 1 + size:
                    break
                kind, body, pending = pending[:1], pending[5 : 1 + size], pending[1 + size :]
                if kind == b"S" and body.startswith(b"server_version\x00"):
                    body = b"server_version\x00" + REDSHIFT_VERSION + b"\x00"
                client.sendall(kind + struct.pack("!i", len(body) + 4) + body)
                if kind in (b"Z", b"E"):
                    starting = False
                    if pending:
                        client.sendall(pending)
                        pending = b""
                    break
