"""A throwaway Redis server: temp dir, free port on 127.0.0.1, TLS only, ACL users.

Uses the machine's ``redis-server`` (Debian: ``redis-server``, 7.0, built with TLS). The
plain TCP port is off: every client, the suite's own included, speaks verified TLS. The
``default`` user is disabled; ``admin`` holds every right. ACL changes persist the way
the server is configured: ``persistence="aclfile"`` keeps users in an ACL file (``ACL
SAVE``), ``"config"`` keeps them as ``user`` lines of the configuration file (``CONFIG
REWRITE``). :meth:`restart` stops the process and starts it again on the same files and
port, so a test can prove what survived.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any, Literal

from devtools.ports import PortInUseError, start_on_free_port
from devtools.processes import stop_child
from devtools.throwaway import ThrowawayServer

if TYPE_CHECKING:
    from redis import Redis

Persistence = Literal["aclfile", "config"]
ACL_LOG_LENGTH = 10000


def _binary() -> str:
    found = shutil.which("redis-server") or shutil.which("/usr/bin/redis-server")
    if found is None:
        raise RuntimeError("redis-server not found: install it (Debian: apt-get install redis-server)")
    return found


def password_rule(password: str) -> str:
    """The ACL rule that adds ``password`` (for the suite's own set-up only)."""
    return ">" + password


def rules_without_passwords(user: dict[str, Any]) -> dict[str, Any]:
    """What ``ACL GETUSER`` says of a user, less its passwords: what a rotation must
    leave unchanged."""
    return {key: value for key, value in user.items() if key != "passwords"}


#: What a user needs to rotate its own passwords without a master secret.
SELF_SERVICE_RULES = (
    "+acl|setuser",
    "+acl|getuser",
    "+acl|save",
    "+acl|dryrun",
    "+config|get",
    "+config|rewrite",
    "+info",
)


class RedisServer(ThrowawayServer):
    """One server; :meth:`start`, :meth:`restart` and :meth:`stop`."""

    def __init__(self, persistence: Persistence = "aclfile") -> None:
        super().__init__("rotation-redis-")
        self.persistence = persistence
        self.config_path = self.root / "redis.conf"
        self.acl_path = self.root / "users.acl"
        self.log_path = self.root / "redis.log"
        self.admin_user = "admin"
        self.admin_password = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[Any] | None = None

    def start(self) -> RedisServer:
        self._tls_files = self.make_certificates()
        users = [
            "user default off nopass resetchannels -@all",
            f"user {self.admin_user} on {password_rule(self.admin_password)} ~* &* +@all",
        ]
        if self.persistence == "aclfile":
            self.acl_path.write_text("\n".join(users) + "\n")
            self._users_in_config: list[str] = []
        else:
            self._users_in_config = users
        self.port = start_on_free_port(self._launch_on, self.port)
        return self

    def _launch_on(self, port: int) -> int:
        """Write the configuration for ``port`` and start; PortInUseError when another
        process took the port after it was probed."""
        cert, key = self._tls_files
        lines = [
            "bind 127.0.0.1",
            "port 0",
            f"tls-port {port}",
            f"tls-cert-file {cert}",
            f"tls-key-file {key}",
            f"tls-ca-cert-file {self.ca_file}",
            "tls-auth-clients no",
            f"dir {self.root}",
            f"logfile {self.log_path}",
            "save ''",
            "appendonly no",
            "protected-mode yes",
            f"acllog-max-len {ACL_LOG_LENGTH}",
            *([f"aclfile {self.acl_path}"] if self.persistence == "aclfile" else self._users_in_config),
        ]
        self.config_path.write_text("\n".join(lines) + "\n")
        self.port = port
        try:
            self._launch()
        except RuntimeError:
            if "Address already in use" in self.log_text():
                self.log_path.unlink(missing_ok=True)
                raise PortInUseError(f"port {port} was taken") from None
            raise
        return port

    def _launch(self) -> None:
        """Start the process on the configuration file as it is; wait until it serves."""
        self._process = self.start_service(
            [_binary(), str(self.config_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_text()[-2000:]}")
            try:
                self.admin().close()
                return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start in time")

    def _terminate(self) -> None:
        stop_child(self._process, timeout=20)
        self._process = None

    def restart(self) -> None:
        """Stop the process and start it again: only what was persisted survives."""
        self._terminate()
        self._launch()

    def halt(self, how: Literal["stop", "kill"]) -> None:
        """``stop``: SIGTERM (a clean shutdown); ``kill``: SIGKILL. :meth:`resume` starts it
        again on the same files and port."""
        assert self._process is not None, "start() the server first"
        stop_child(self._process, timeout=20, how=signal.SIGTERM if how == "stop" else signal.SIGKILL)
        self._process = None

    def resume(self) -> None:
        self._launch()

    def stop(self) -> None:
        self._terminate()
        self.remove_files()

    def connect_as(self, user: str, password: str, dbname: str | None = None) -> Redis:
        """A session over verified TLS, authenticated (one connection, no retries)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis(
            host=self.host,
            port=self.port,
            username=user,
            password=password,
            ssl=True,
            ssl_ca_certs=self.ca_file,
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            socket_connect_timeout=5,
            socket_timeout=10,
            single_connection_client=True,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            client.ping()
        except Exception:
            client.close()
            raise
        return client

    def admin(self) -> Redis:
        return self.connect_as(self.admin_user, self.admin_password)

    def command(self, *args: Any) -> Any:
        """One command as ``admin``."""
        client = self.admin()
        try:
            return self.command_on(client, *args)
        finally:
            client.close()

    @staticmethod
    def command_on(client: Redis, *args: Any) -> Any:
        """One command on an open session (redis-py's parsed reply)."""
        return client.execute_command(*args)  # type: ignore[no-untyped-call]  # untyped in redis-py

    def whoami(self, user: str, password: str, dbname: str | None = None) -> tuple[str, str, str]:
        """(the login user, the user whose rules apply, the TLS protocol the server speaks).
        Redis users act as themselves; the protocol comes from a handshake of our own."""
        import socket
        import ssl

        self.connect_as(user, password).close()
        context = ssl.create_default_context(cafile=self.ca_file)
        with (
            socket.create_connection((self.host, self.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=self.host) as tls,
        ):
            protocol = tls.version() or "none"
        return user, user, protocol

    #: A single user's previous password still logs in after a rotation, until the next.
    keeps_previous_password = True

    def is_refusal(self, error: Exception) -> bool:
        from redis.exceptions import AuthenticationError

        return isinstance(error, AuthenticationError)

    # -- what the runner, the benchmark and the tests make on the server -----------------

    engine_key = "redis"
    admin_database = ""  # Redis has no databases to log in to: the secret names none

    def create_database(self, dbname: str) -> None:
        """Redis has no databases to create: a user's keys live under its key patterns."""

    def create_user(self, user: str, password: str, dbname: str | None = None, *rules: str) -> None:
        """A user with ``password`` and the given ACL ``rules`` (default: its own keys,
        reads and writes, the right to set its own passwords and persist them)."""
        wanted = rules or (f"~{user}:*", "+@read", "+@write", "+ping", *SELF_SERVICE_RULES)
        self.command("ACL", "SETUSER", user, "reset", "on", password_rule(password), *wanted)
        self.persist()

    def create_master(self, user: str, password: str) -> None:
        """A user that may manage every other user (as an administrator does)."""
        self.command("ACL", "SETUSER", user, "reset", "on", password_rule(password), "~*", "&*", "+@all")
        self.persist()

    def persist(self) -> None:
        if self.persistence == "aclfile":
            self.command("ACL", "SAVE")
        else:
            self.command("CONFIG", "REWRITE")

    def getuser(self, user: str) -> dict[str, Any]:
        client = self.admin()
        try:
            info: dict[str, Any] | None = self.command_on(client, "ACL GETUSER", user)
        finally:
            client.close()
        if info is None:
            raise KeyError(user)
        if isinstance(info.get("commands"), list):
            # Redis 7.0 lists subcommand rules in no stable order (from a hash table): the
            # same rules may come back reordered, so compare them as a set.
            info["commands"] = sorted(info["commands"])
        return info

    def failed_logins(self) -> int:
        """Authentications the server refused so far, from its ``ACL LOG`` (Redis 7.0 has
        no ``acl_access_denied_auth`` in ``INFO stats`` yet; entries for the same client and
        user are merged, with a ``count``)."""
        client = self.admin()
        try:
            entries: list[dict[str, Any]] = self.command_on(client, "ACL LOG", str(ACL_LOG_LENGTH))
        finally:
            client.close()
        return sum(int(entry["count"]) for entry in entries if entry.get("reason") == "auth")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
