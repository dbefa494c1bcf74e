"""Redis and Valkey ACL users with redis-py; ElastiCache and MemoryDB users through
their service's API (``managed.py``).

Redis users hold several passwords, so this engine never alternates users and never
changes a password in place: a rotation makes the user accept the pending password
beside the current one and drops any older one (``acl.py``), one rotation after it
stopped being current. With a master secret the master user does that for the
secret's user; without one the user does it for itself, which Redis allows only to a
user that may change every user (``ACL SETUSER``): createSecret refuses a user that may
not, saying to add a master secret. Nothing but passwords changes: commands, key and
channel patterns and selectors are left as they are.

ACL changes live in memory until persisted; the engine persists them the way the server
is configured: ``ACL SAVE`` when it has an ACL file, else ``CONFIG REWRITE`` when it has
a configuration file, so that a restarted server still accepts the new password.

A secret with ``user_arn`` (AWS's ElastiCache format) names an ElastiCache or MemoryDB
user: its passwords change through the service's API, and testSecret logs in to the
endpoint the secret names (``host``) or, when it names none, checks that the user is
``active`` and says that no login proved the password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common.engine import Capability, Engine, Login
from common.errors import DatabaseOperationError, PermissionDeniedError, VerificationError
from common.observability import logger
from common.passwords import PasswordPolicy
from common.redaction import redact
from rotators.redis.acl import password_hash, password_rules
from rotators.redis.managed import ManagedUser, ServiceClients, UserArn

if TYPE_CHECKING:
    from redis import Redis

#: How long a managed user may stay ``modifying`` before a step gives up (seconds).
DEFAULT_USER_WAIT = 240.0


@dataclass
class RedisSession:
    """A data-plane session (``client``), a managed user's API handle (``service``), or
    both: a managed user whose secret names the endpoint."""

    login: Login = field(repr=False)
    client: Redis | None = None
    service: ManagedUser | None = None


class RedisEngine(Engine[RedisSession]):
    """Redis 6.0+ and Valkey with ACL users; ElastiCache and MemoryDB users."""

    name = "redis"
    engines = frozenset({"redis", "valkey", "elasticache", "memorydb"})
    default_port = 6379
    default_dbname = None
    max_username_length = 1024
    # ElastiCache and MemoryDB: 16 to 128 printable characters, none of @ " / (nor space).
    password_policy = PasswordPolicy(min_length=16, max_length=128, always_excluded='@"/ ')
    master_adds_password = True

    def __init__(
        self,
        service_clients: ServiceClients | None = None,
        *,
        user_wait_seconds: float = DEFAULT_USER_WAIT,
        poll_seconds: float = 2.0,
    ) -> None:
        self._service_clients = service_clients
        self._clients: dict[tuple[str, str], Any] = {}
        self.user_wait_seconds = user_wait_seconds
        self.poll_seconds = poll_seconds

    # -- sessions ----------------------------------------------------------------------

    def open(self, login: Login) -> RedisSession:
        session = RedisSession(login)
        if login.user_arn is not None:
            session.service = self._managed(login.user_arn)
            session.service.require(login.username)
        if login.host:
            session.client = _connect(login)
        return session

    def close(self, connection: RedisSession) -> None:
        if connection.client is not None:
            connection.client.close()

    def is_broken(self, connection: RedisSession) -> bool:
        if connection.client is None:
            return False
        try:
            connection.client.ping()
        except Exception:  # noqa: BLE001 - any failure means the session is gone
            return True
        return False

    def verify_session(self, connection: RedisSession) -> None:
        if connection.client is not None:
            try:
                answered = _ping(connection.client)
            except Exception as error:
                raise DatabaseOperationError(f"could not run PING: {redact(str(error))}") from error
            if not answered:
                raise VerificationError("PING did not answer PONG")
            return
        assert connection.service is not None  # open() gives every session one or the other
        connection.service.wait_until_active()
        logger.warning(
            "password not proven by a login: the secret names no endpoint; the user is active",
            extra={"user_arn": connection.service.arn.arn},
        )

    # -- passwords ---------------------------------------------------------------------

    def add_password(self, connection: RedisSession, *, user: str, keep: str, new: str) -> bool:
        if connection.service is not None:
            connection.service.set_passwords([new, keep])
        else:
            self._set_passwords(connection, user, [keep, new])
        return True

    def change_own_password(self, connection: RedisSession, login: Login, new_password: str) -> None:
        # Not reached by a rotation (add_password always keeps two); kept exact for callers
        # that want one password.
        if connection.service is not None:
            connection.service.set_passwords([new_password])
        else:
            self._set_passwords(connection, login.username, [new_password])

    def check_own_rotation(self, connection: RedisSession, login: Login) -> None:
        if connection.service is not None or connection.client is None:
            return  # a managed user: the function's role changes it through the API
        client, user = connection.client, login.username
        try:
            # With no rules, ACL SETUSER on an existing user changes nothing: a probe of
            # the right itself. Reading the user and the persistence settings follows.
            _command(client, "probe ACL SETUSER", "ACL SETUSER", user)
            _command(client, "read its own ACL", "ACL GETUSER", user)
            _persistence(client)
        except PermissionDeniedError as error:
            raise PermissionDeniedError(
                f"user {user!r} may not set its own passwords ({error}); Redis lets only a user "
                "that may change every user do so: add a master secret (masterarn) whose user "
                "may run ACL SETUSER, ACL GETUSER and ACL SAVE or CONFIG REWRITE"
            ) from error

    def own_password_capabilities(self, connection: RedisSession, login: Login) -> list[Capability]:
        what = "set its own passwords"
        if connection.service is not None or connection.client is None:
            return [Capability(what, None, "a managed user: its passwords change through the service's API")]
        return [_may_change(connection.client, login.username, login.username, what)]

    def alternate_user_capabilities(
        self, connection: RedisSession, *, original: str, clone: str, database: str | None
    ) -> list[Capability]:
        # Redis never makes a clone: the master gives the original user a second password.
        what = f"give {original!r} a second password"
        if connection.client is None:
            return [Capability(what, None, "not checked: the master secret names no endpoint")]
        return [_may_change(connection.client, connection.login.username, original, what)]

    def _set_passwords(self, connection: RedisSession, user: str, wanted: list[str]) -> None:
        """Make ``user`` hold exactly ``wanted`` (one atomic ``ACL SETUSER``), check it,
        and persist it where the server keeps its users."""
        assert connection.client is not None
        client = connection.client
        held = _getuser(client, user)
        rules = password_rules(held.get("passwords", []), wanted)
        if rules:
            _command(client, f"set the passwords of {user!r}", "ACL SETUSER", user, *rules)
        if set(_getuser(client, user).get("passwords", [])) != {password_hash(p) for p in wanted}:
            raise VerificationError(f"user {user!r} does not hold the passwords just set")
        # Also when nothing changed: a retry after a crash between the change and the save.
        how = _persistence(client)
        if how is not None:
            _command(client, f"persist the ACL ({how[0]})", *how)

    # -- what Redis never does -----------------------------------------------------------

    def set_alternate_user(
        self,
        connection: RedisSession,
        *,
        original: str,
        clone: str,
        user: str,
        password: str,
        database: str | None,
    ) -> None:
        raise DatabaseOperationError(
            "Redis users hold two passwords: the master user gives the same user a second one "
            "instead of alternating users"
        )

    def verify_privileges(
        self, connection: RedisSession, *, original: str, user: str, database: str | None
    ) -> None:
        if user != original:
            raise VerificationError(f"user {user!r} is not {original!r}: Redis rotates one user")

    # -- managed users -----------------------------------------------------------------

    def _managed(self, user_arn: str) -> ManagedUser:
        arn = UserArn.parse(user_arn)
        if self._service_clients is None:
            raise DatabaseOperationError(f"this function has no {arn.service} client for {arn.arn}")
        key = (arn.service, arn.region)
        if key not in self._clients:
            self._clients[key] = self._service_clients(arn.service, arn.region)
        return ManagedUser(
            arn, self._clients[key], wait_seconds=self.user_wait_seconds, poll_seconds=self.poll_seconds
        )


def _connect(login: Login) -> Redis:
    """One authenticated connection: verified TLS unless the secret says ``ssl: false``,
    no retries (a retried refused login would be counted twice), no client-side commands
    the user may not be allowed (``CLIENT SETNAME``, ``CLIENT SETINFO``)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    tls: dict[str, Any] = {"ssl": False}
    if login.tls.enabled:
        tls = {
            "ssl": True,
            "ssl_ca_certs": login.tls.trust_anchor(),
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
        }
    # With a single connection the client connects (and authenticates) when built.
    client: Redis | None = None
    try:
        client = redis.Redis(
            host=login.host,
            port=login.port,
            username=login.username,
            password=login.password,
            socket_connect_timeout=login.connect_timeout,
            socket_timeout=login.statement_timeout,
            single_connection_client=True,
            retry=Retry(NoBackoff(), 0),
            lib_name=None,
            lib_version=None,
            **tls,
        )
        _ping(client)
    except redis.exceptions.AuthenticationError as error:
        _close(client)
        raise login.refused() from error
    except redis.exceptions.RedisError as error:
        _close(client)
        raise login.unreachable(str(error) or type(error).__name__) from error
    return client


def _close(client: Redis | None) -> None:
    if client is not None:
        client.close()


def _ping(client: Redis) -> bool:
    """PING: True for PONG. A user whose rules forbid PING still has an authenticated
    session when the server says so (authentication comes first): that is the proof."""
    import redis

    try:
        return client.ping() is True
    except redis.exceptions.NoPermissionError:
        return True


def _command(client: Redis, what: str, *args: str) -> Any:
    import redis

    try:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]  # untyped in redis-py
    except redis.exceptions.NoPermissionError as error:
        raise PermissionDeniedError(f"could not {what}: {redact(str(error))}") from error
    except redis.exceptions.RedisError as error:
        raise DatabaseOperationError(f"could not {what}: {redact(str(error))}") from error


def _getuser(client: Redis, user: str) -> dict[str, Any]:
    info: dict[str, Any] | None = _command(client, f"read the ACL of {user!r}", "ACL GETUSER", user)
    if info is None:
        raise DatabaseOperationError(f"user {user!r} does not exist on this server")
    return info


def _may_change(client: Redis, actor: str, user: str, what: str) -> Capability:
    """Whether ``actor`` may change ``user``'s passwords and persist them, asked with
    ``ACL DRYRUN`` (Redis 7+), which runs nothing."""
    import redis

    fix = "add a master secret (masterarn) whose user may, or grant the commands"

    def refusal(*command: str) -> str | None:
        answer = client.execute_command("ACL DRYRUN", actor, *command)  # type: ignore[no-untyped-call]
        if answer in (b"OK", "OK", True):
            return None
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    try:
        for command in (("ACL", "SETUSER", user), ("ACL", "GETUSER", user), ("CONFIG", "GET", "aclfile")):
            reason = refusal(*command)
            if reason is not None:
                return Capability(what, False, f"{reason}: {fix}")
        reasons = [refusal("ACL", "SAVE"), refusal("CONFIG", "REWRITE")]
    except redis.exceptions.NoPermissionError:
        return Capability(what, None, "not checked: the session may not run ACL DRYRUN")
    except redis.exceptions.RedisError as error:
        return Capability(what, None, f"not checked: {redact(str(error))}")
    if all(reasons):
        return Capability(what, False, f"neither ACL SAVE nor CONFIG REWRITE is allowed: {fix}")
    return Capability(what, True, "ACL SETUSER, ACL GETUSER and persisting the ACL are allowed")


def _persistence(client: Redis) -> tuple[str, ...] | None:
    """The command that persists ACL changes on this server, or None when it keeps its
    users in memory only (no ACL file, no configuration file)."""
    aclfile = _command(client, "read the aclfile setting", "CONFIG GET", "aclfile")
    if isinstance(aclfile, dict) and aclfile.get("aclfile"):
        return ("ACL SAVE",)
    server = _command(client, "read the server's configuration file", "INFO", "server")
    if isinstance(server, dict) and server.get("config_file"):
        return ("CONFIG REWRITE",)
    return None
