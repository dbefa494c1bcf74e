"""A throwaway MariaDB server: temp dir, free port on 127.0.0.1, TLS with its own CA.

Uses the machine's ``mariadb-install-db`` and ``mariadbd`` (Debian: ``mariadb-server``).
Bootstrap SQL goes through the ``mariadb`` client over the server's private socket,
where the operating-system user is the database's ``unix_socket`` administrator; it
creates ``admin``@``%``, a password administrator for everything else.
"""

from __future__ import annotations

import getpass
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.ports import PortInUseError, start_on_free_port
from devtools.processes import stop_child
from devtools.throwaway import ThrowawayServer

if TYPE_CHECKING:
    from pymysql.connections import Connection

SERVICE_USER = "mysql"


def _binary(name: str) -> str:
    for candidate in (name, f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        found = shutil.which(candidate)
        if found:
            return found
    raise RuntimeError(f"{name} not found: install mariadb-server (Debian: apt-get install mariadb-server)")


class MariaDBServer(ThrowawayServer):
    """One server; :meth:`start` and :meth:`stop`."""

    service_user = SERVICE_USER

    def __init__(self) -> None:
        super().__init__("rotation-mariadb-")
        self.data_dir = self.root / "data"
        self.socket_path = self.root / "mysqld.sock"
        self.error_log = self.root / "error.log"
        self.admin_user = "admin"
        self.admin_password = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[Any] | None = None
        self._tls_files: tuple[Path, Path] = (Path(), Path())
        #: The ``mariadbd`` command line, kept so that the server can be started again.
        self.command: list[str] = []
        #: More ``mariadbd`` options, set before start() (a binary log, a replica's).
        self.options: list[str] = []

    def start(self) -> MariaDBServer:
        self._tls_files = self.make_certificates()
        self.give_to_service_user(self.root)
        self._install()
        self.port = start_on_free_port(self._launch, self.port)
        self.bootstrap(
            f"CREATE USER '{self.admin_user}'@'%' IDENTIFIED BY '{self.admin_password}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.admin_user}'@'%' WITH GRANT OPTION;"
        )
        return self

    def _install(self) -> None:
        """Create the system tables. Seen to fail once in a full run on a loaded shared
        machine (exit status 1, output not kept): the output is now reported, and one
        failure is retried on an empty data directory."""
        os_user = self.run_as or getpass.getuser()
        command = [
            _binary("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--user={os_user}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ]
        output = ""
        for _ in range(2):
            result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
            if result.returncode == 0:
                return
            output = f"{result.stdout[-1500:]}{result.stderr[-1500:]}"
            shutil.rmtree(self.data_dir, ignore_errors=True)
        raise RuntimeError(f"mariadb-install-db failed twice; the last time: {output}")

    def _launch(self, port: int) -> int:
        """Start mariadbd on ``port``; PortInUseError when another process holds it."""
        cert, key = self._tls_files
        command = [
            _binary("mariadbd"),
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--bind-address={self.host}",
            f"--port={port}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.root / 'mysqld.pid'}",
            f"--log-error={self.error_log}",
            f"--ssl-ca={self.ca_file}",
            f"--ssl-cert={cert}",
            f"--ssl-key={key}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=16M",
            "--innodb-flush-log-at-trx-commit=0",
            "--max-connections=60",
            "--log-warnings=4",
        ]
        command += self.options
        self.command = command
        self.spawn()
        try:
            self._wait_until_ready(timeout=60)
        except RuntimeError:
            stop_child(self._process)  # exited on its own, or did not start in time
            if "Bind on TCP/IP port" in self._own_log():
                raise PortInUseError(f"port {port} is taken") from None
            raise
        return port

    def _wait_until_ready(self, timeout: float) -> None:
        """Until the running process's log says it serves connections (a listening socket
        alone may be another process's, or ours before the server handles logins)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {self.log_text()[-2000:]}")
            if "ready for connections" in self._own_log():
                return
            time.sleep(0.05)
        raise RuntimeError("mariadbd did not start in time")

    def _own_log(self) -> str:
        """The error log since the running process started: it logs "Starting MariaDB ...
        as process <pid>" first (the log is shared with earlier runs and restarts)."""
        if self._process is None:
            return ""
        text = self.log_text()
        position = text.rfind(f" as process {self._process.pid}")
        return text[position:] if position >= 0 else ""

    def bootstrap(self, statements: str) -> str:
        """Run SQL as the socket administrator with the real ``mariadb`` client (the SQL
        goes over stdin, so that no password appears in a command line or its error);
        returns what it printed (tab-separated rows, no column names)."""
        user = "root" if self.as_root else getpass.getuser()
        result = subprocess.run(
            [_binary("mariadb"), "--no-defaults", "-N", "-B", f"--socket={self.socket_path}", "-u", user],
            input=statements,
            text=True,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"mariadb bootstrap failed: {result.stderr.strip()[-1000:]}")
        return result.stdout

    def spawn(self) -> None:
        """Start ``mariadbd`` with :attr:`command`, as the service user when we are root
        (set before it starts, so that it still dies with this process)."""
        self._process = self.start_service(
            self.command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        stop_child(self._process)
        self._process = None
        self.remove_files()

    def connect_as(
        self, user: str, password: str, database: str | None = None, *, tls: bool = True
    ) -> Connection[Any]:
        """A client session over TCP, with verified TLS unless ``tls`` is False."""
        import pymysql

        options: dict[str, Any] = {"ssl_disabled": True}
        if tls:
            options = {"ssl_ca": self.ca_file, "ssl_verify_cert": True, "ssl_verify_identity": True}
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=password,
            database=database,
            connect_timeout=5,
            autocommit=True,
            **options,
        )

    def execute(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement as ``admin``; returns its rows (if any)."""
        connection = self.connect_as(self.admin_user, self.admin_password)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall())
        finally:
            connection.close()

    # -- what the runner, the benchmark and the tests make on the server -----------------

    engine_key = "mariadb"
    admin_database = "mysql"

    def is_refusal(self, error: Exception) -> bool:
        import pymysql

        return isinstance(error, pymysql.err.OperationalError) and bool(error.args) and error.args[0] == 1045

    def whoami(self, user: str, password: str, dbname: str | None = None) -> tuple[str, str, str]:
        """(the login account, the account whose privileges apply, the TLS protocol)."""
        connection = self.connect_as(user, password, dbname)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT USER(), CURRENT_USER()")
                login, account = cursor.fetchone() or ("", "")
                cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
                protocol = (cursor.fetchone() or ("", "none"))[1] or "none"
        finally:
            connection.close()
        return str(login).split("@")[0], str(account).split("@")[0], str(protocol)

    def create_database(self, dbname: str) -> None:
        self.execute(f"CREATE DATABASE `{dbname.replace('`', '``')}`")

    def create_user(self, user: str, password: str, dbname: str | None = None) -> None:
        """An account at any host; every privilege on ``dbname`` when given."""
        self.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        if dbname is not None:
            self.execute(f"GRANT ALL PRIVILEGES ON `{dbname.replace('`', '``')}`.* TO %s@'%%'", (user,))

    def create_master(self, user: str, password: str) -> None:
        """A master user as on Amazon RDS: every privilege, grantable."""
        self.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        self.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,))

    def failed_logins(self) -> int:
        """How many logins the server has refused so far, from its error log.

        ``Access_denied_errors`` would count statements refused for lack of a privilege
        too; the log (``--log-warnings=4``) has one line per refused login.
        """
        return len(re.findall(r"\[Warning\] Access denied for user ", self.log_text()))

    def log_text(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""


#: A primary's options: a GTID binary log from its first statement on, as on RDS.
PRIMARY_OPTIONS = ["--log-bin=mariadb-bin", "--server-id=1", "--binlog-format=ROW"]


class MariaDBReplica(MariaDBServer):
    """A GTID replica of a running :class:`MariaDBServer` started with
    :data:`PRIMARY_OPTIONS`: its own data directory and port, ``read_only`` (as RDS read
    replicas), a certificate from the primary's CA for the same names, replicating over
    TLS (the primary's certificate verified) from the primary's first binary log event, so
    that it holds everything the primary does, ``admin`` included. Stop it first."""

    REPLICATION_USER = "replicator"

    def __init__(self, primary: MariaDBServer) -> None:
        super().__init__()
        self.primary = primary
        self.admin_password = primary.admin_password
        self.certificate_hosts = list(primary.certificate_hosts)
        self.options += ["--server-id=2", "--read-only", "--log-slave-updates=0"]

    def make_certificates(self) -> tuple[Path, Path]:
        self.root.chmod(0o755)
        tls_dir = self.root / "tls"
        tls_dir.mkdir()
        self.ca = self.primary.ca
        assert self.ca is not None, "start() the primary first"
        return self.ca.issue_server(tls_dir, "server", self.certificate_hosts)

    def start(self) -> MariaDBReplica:
        self._tls_files = self.make_certificates()
        self.give_to_service_user(self.root)
        self._install()
        self.port = start_on_free_port(self._launch, self.port)
        password = secrets.token_urlsafe(24)
        self.primary.execute(
            "CREATE USER %s@'%%' IDENTIFIED BY %s REQUIRE SSL", (self.REPLICATION_USER, password)
        )
        self.primary.execute("GRANT REPLICATION SLAVE ON *.* TO %s@'%%'", (self.REPLICATION_USER,))
        self.bootstrap(
            "SET GLOBAL gtid_slave_pos = '';"
            f"CHANGE MASTER TO MASTER_HOST='{self.primary.host}', MASTER_PORT={self.primary.port}, "
            f"MASTER_USER='{self.REPLICATION_USER}', MASTER_PASSWORD='{password}', MASTER_SSL=1, "
            f"MASTER_SSL_CA='{self.primary.ca_file}', MASTER_SSL_VERIFY_SERVER_CERT=1, "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;"
            "START SLAVE;"
        )
        self.catch_up()
        return self

    def catch_up(self, timeout: float = 30) -> None:
        """Wait until this replica has applied everything the primary has written so far."""
        (position,) = self.primary.execute("SELECT @@global.gtid_binlog_pos")[0]
        # Over the socket: before the first catch-up the replica has no ``admin`` yet.
        done = self.bootstrap(f"SELECT MASTER_GTID_WAIT('{position}', {timeout:g});").strip()
        if done != "0":
            status = self.bootstrap("SHOW SLAVE STATUS\\G")
            raise TimeoutError(f"the replica has not reached {position} in {timeout:g} s: {status[-1500:]}")

    def set_delay(self, seconds: int) -> None:
        """Apply every event ``seconds`` late (``MASTER_DELAY``): a lag a test can count on."""
        self.bootstrap(f"STOP SLAVE; CHANGE MASTER TO MASTER_DELAY={int(seconds)}; START SLAVE;")
