"""A throwaway PostgreSQL server: temp dir, free port on 127.0.0.1, TLS with its own CA.

Started with the server binaries of the machine (``/usr/lib/postgresql/<v>/bin`` or
``PG_BIN``). PostgreSQL refuses to run as root, so as root it runs as ``postgres``.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.ports import PortInUseError, start_on_free_port
from devtools.processes import stop_child
from devtools.throwaway import ThrowawayServer

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.sql import Composable

SERVICE_USER = "postgres"
#: ``postmaster.pid``'s status line once the server has started, as ``pg_ctl -w`` counts
#: it: ``ready`` (accepts connections) or ``standby`` (a standby without hot standby,
#: which accepts none).
READY = ("ready", "standby")


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``postgres``."""
    configured = os.environ.get("PG_BIN")
    candidates = [configured] if configured else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install postgresql (Debian: "
        "apt-get install postgresql) or set PG_BIN"
    )


class PostgresServer(ThrowawayServer):
    """One server; :meth:`start` and :meth:`stop`. ``admin_password`` is the superuser's."""

    service_user = SERVICE_USER
    # SIGTERM is a "smart" shutdown, which waits for every client session to end: a run
    # killed with sessions open would leave the server behind. SIGQUIT stops it at once.
    death_signal = signal.SIGQUIT

    def __init__(self, *, hba_method: str = "scram-sha-256", password_encryption: str | None = None) -> None:
        super().__init__("rotation-pg-")
        self.bin_dir = find_bin_dir()
        self.hba_method = hba_method
        self.password_encryption = password_encryption or ("md5" if hba_method == "md5" else "scram-sha-256")
        self.data_dir = self.root / "data"
        self.log_path = self.root / "server.log"
        self.admin_user = SERVICE_USER
        self.admin_password = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[Any] | None = None

    def start(self) -> PostgresServer:
        cert, key = self.make_certificates()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        self.give_to_service_user(self.root)
        subprocess.run(
            self.as_service_user(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.admin_user,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    f"--auth-host={self.hba_method}",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        pwfile.unlink()
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            # A standby made with pg_basebackup streams over this server's Unix socket.
            "local replication all trust\n"
            f"hostssl all all 127.0.0.1/32 {self.hba_method}\n"
            # Plaintext is accepted too, so that "ssl": false can be shown to mean it.
            f"hostnossl all all 127.0.0.1/32 {self.hba_method}\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\ninclude_if_exists = 'port.conf'\n"
                f"unix_socket_directories = '{self.root}'\n"
                f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n"
                f"password_encryption = '{self.password_encryption}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 60\nshared_buffers = 16MB\n"
            )
        self.log_path.touch()
        self.give_to_service_user(
            self.data_dir / "pg_hba.conf", self.data_dir / "postgresql.conf", self.log_path
        )
        self.port = start_on_free_port(self._launch, self.port)
        return self

    def _launch(self, port: int) -> int:
        """Start the server on ``port`` (in a file of its own, which a later restart reads
        too); PortInUseError when another process holds the port."""
        port_conf = self.data_dir / "port.conf"
        port_conf.write_text(f"port = {port}\n")
        self.give_to_service_user(port_conf)
        logged_before = self.log_path.stat().st_size
        with self.log_path.open("ab") as log:
            # The postmaster itself, not pg_ctl (which would detach it): it dies with us.
            self._process = self.start_service(
                [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_until_ready(timeout=60)
        except RuntimeError as failure:
            stop_child(self._process, how=self.death_signal)
            with self.log_path.open("rb") as log:
                log.seek(logged_before)
                text = log.read().decode(errors="replace")
            if "could not bind" in text or "Address already in use" in text:
                raise PortInUseError(f"port {port} is taken") from None
            raise RuntimeError(f"{failure}: {text[-2000:]}") from None
        return port

    def _wait_until_ready(self, timeout: float) -> None:
        """Until the postmaster says in ``postmaster.pid`` that it accepts connections
        (``ready``; ``standby`` on a standby without hot standby), as ``pg_ctl -w`` does."""
        assert self._process is not None
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited ({self._process.returncode})")
            try:
                lines = pid_file.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= 8 and lines[0] == str(self._process.pid) and lines[7].strip() in READY:
                return
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not start within {timeout:g} s")

    def stop(self) -> None:
        # SIGQUIT: an immediate shutdown (pg_ctl -m immediate), a throwaway needs no checkpoint.
        stop_child(self._process, how=self.death_signal)
        self._process = None
        self.remove_files()

    def admin_connection(self, dbname: str = "postgres") -> PgConnection:
        """A superuser session over the server's private Unix socket (autocommit)."""
        import psycopg2

        connection = psycopg2.connect(
            host=str(self.root), port=self.port, user=self.admin_user, dbname=dbname
        )
        connection.autocommit = True
        return connection

    def connect_as(self, user: str, password: str, dbname: str | None = None) -> PgConnection:
        """A client session over TCP with verified TLS, as an application would open it."""
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=password,
            dbname=dbname or "postgres",
            sslmode="verify-full",
            sslrootcert=self.ca_file,
            connect_timeout=5,
        )

    def execute(
        self, statement: str | Composable, params: Any = None, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser; returns its rows (if any)."""
        connection = self.admin_connection(dbname)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    # -- what the runner, the benchmark and the tests make on the server -----------------

    engine_key = "postgres"
    admin_database = "postgres"

    def is_refusal(self, error: Exception) -> bool:
        import psycopg2

        return isinstance(error, psycopg2.OperationalError) and "password authentication failed" in str(error)

    def whoami(self, user: str, password: str, dbname: str | None = None) -> tuple[str, str, str]:
        """(the login user, the user its session acts as, the TLS protocol) of a new session."""
        connection = self.connect_as(user, password, dbname)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT session_user, current_user")
                session_user, current_user = cursor.fetchone() or ("", "")
            protocol = connection.info.ssl_attribute("protocol") if connection.info.ssl_in_use else "none"
        finally:
            connection.close()
        return str(session_user), str(current_user), str(protocol)

    def create_database(self, dbname: str) -> None:
        from psycopg2 import sql

        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))

    def create_user(self, user: str, password: str, dbname: str | None = None) -> None:
        """A login role; owner of ``dbname`` when given."""
        from psycopg2 import sql

        # Composed whole, no parameters: psycopg2's %-substitution would rewrite a % in the
        # quoted name (DESIGN.md section 6).
        self.execute(
            sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)
            )
        )
        if dbname is not None:
            self.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(user))
            )

    def create_master(self, user: str, password: str) -> None:
        """A master user as on Amazon RDS: not a superuser, but CREATEROLE."""
        from psycopg2 import sql

        self.execute(
            sql.SQL("CREATE ROLE {} WITH LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)
            )
        )

    def failed_logins(self) -> int:
        """How many password authentications the server has refused so far."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return len(re.findall(r"password authentication failed", text))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class PostgresStandby(PostgresServer):
    """A streaming standby of a running :class:`PostgresServer` (``pg_basebackup -R``): its
    own temp dir, port and log, the primary's certificate, CA and superuser password.
    Stop it before the primary."""

    def __init__(self, primary: PostgresServer) -> None:
        super().__init__(hba_method=primary.hba_method, password_encryption=primary.password_encryption)
        self.primary = primary
        self.ca = primary.ca
        self.admin_password = primary.admin_password

    def start(self) -> PostgresStandby:
        self.root.chmod(0o755)
        self.give_to_service_user(self.root)
        subprocess.run(
            self.as_service_user(
                [
                    str(self.bin_dir / "pg_basebackup"),
                    "-D",
                    str(self.data_dir),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "--no-sync",
                    "-h",
                    str(self.primary.root),
                    "-p",
                    str(self.primary.port),
                    "-U",
                    self.primary.admin_user,
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        # A later line wins: the copied configuration names the primary's socket directory
        # (and the copied port.conf its port, which _launch rewrites).
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"unix_socket_directories = '{self.root}'\n")
        self.log_path.touch()
        self.give_to_service_user(self.data_dir / "postgresql.conf", self.log_path)
        self.port = start_on_free_port(self._launch, self.port)
        return self

    def catch_up(self, timeout: float = 30) -> None:
        """Wait until this standby has applied everything the primary has written so far."""
        import time

        target = self.primary.execute("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while not self.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))[0][0]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby has not reached {target} in {timeout:g} s")
            time.sleep(0.02)

    def set_apply_delay(self, milliseconds: int) -> None:
        """Hold every replayed commit back this long (``recovery_min_apply_delay``): a lag
        a test can count on."""
        self.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(milliseconds)}ms'")
        self.execute("SELECT pg_reload_conf()")
