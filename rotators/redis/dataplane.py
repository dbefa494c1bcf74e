"""The Redis commands of the engine, with redis-py: sessions, ACL password changes and
their persistence, and the checks of what a user may do.

Passwords change only through ``acl.password_rules`` (hashes, additions first, nothing
but passwords), in one atomic ``ACL SETUSER``, read back with ``ACL GETUSER``. ACL changes
live in memory until persisted: ``ACL SAVE`` when the server has an ACL file, else
``CONFIG REWRITE`` when it has a configuration file, so that a restarted server still
accepts the new password; sent at every change, also when nothing changed (a retry after
a crash between the change and the save).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from common.engine import Capability, DriverErrors, first_line
from common.errors import DatabaseOperationError, PermissionDeniedError, VerificationError
from common.redaction import redact
from rotators.redis.acl import password_hash, password_rules

if TYPE_CHECKING:
    from redis import Redis

    from common.engine import Login


def tls_failure(error: BaseException) -> bool:
    """Whether a failed :func:`connect` failed in the TLS handshake (redis-py wraps the
    ``ssl.SSLError`` in a ``ConnectionError``), not on the network."""
    import ssl

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def connect(login: Login) -> Redis:
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
        ping(client)
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


def ping(client: Redis) -> bool:
    """PING: True for PONG. A user whose rules forbid PING still has an authenticated
    session when the server says so (authentication comes first): that is the proof."""
    import redis

    try:
        return client.ping() is True
    except redis.exceptions.NoPermissionError:
        return True
    except redis.exceptions.RedisError as error:
        raise _ERRORS.shape("run PING", error) from error


def _reason(error: Exception) -> tuple[object | None, str | None]:
    """redis-py's errors: a refusal for lack of a right is ``NOPERM``; others have no
    code, only the server's message (which never holds a password: ACL rules are sent
    as hashes)."""
    import redis

    if isinstance(error, redis.exceptions.NoPermissionError):
        return "NOPERM", first_line(error)
    return None, first_line(error) if str(error) else None


_ERRORS = DriverErrors(_reason, denied=frozenset({"NOPERM"}))


def _command(client: Redis, what: str, *args: str) -> Any:
    with _ERRORS.operation(what):
        return client.execute_command(*args)  # type: ignore[no-untyped-call]  # untyped in redis-py


def _getuser(client: Redis, user: str) -> dict[str, Any]:
    info: dict[str, Any] | None = _command(client, f"read the ACL of {user!r}", "ACL GETUSER", user)
    if info is None:
        raise DatabaseOperationError(f"user {user!r} does not exist on this server")
    return info


def may_change(client: Redis, actor: str, user: str, what: str) -> Capability:
    """Whether ``actor`` may change ``user``'s passwords and persist them: the one rule
    that both the preflight and createSecret's check (``check_own_rotation``) apply.

    ``client`` is ``actor``'s own session. It needs ``ACL SETUSER``, ``ACL GETUSER``,
    ``INFO`` (the node's replication is read before any change: ``replication``) and
    exactly the command this server persists its ACL with (``ACL SAVE`` with an ACL file,
    ``CONFIG REWRITE`` with only a configuration file, read with ``CONFIG GET`` and
    ``INFO server`` as setSecret reads them): a right to the other one is no use.

    Asked with ``ACL DRYRUN`` (Redis 7+), which runs nothing. A session that may not run
    ``ACL DRYRUN`` and asks about itself probes the rights instead (``_probe_self_service``)."""
    import redis

    fix = "add a master secret (masterarn) whose user may, or grant the commands"
    try:
        reason = _dryrun_refusal(client, actor, user)
    except redis.exceptions.NoPermissionError:
        if actor == user:
            return _probe_self_service(client, user, what, fix)
        return Capability(what, None, "not checked: the session may not run ACL DRYRUN")
    except PermissionDeniedError as error:
        return Capability(what, False, f"{error}: {fix}")
    except (redis.exceptions.RedisError, DatabaseOperationError) as error:
        return Capability(what, None, f"not checked: {redact(str(error))}")
    if reason is not None:
        return Capability(what, False, f"{reason}: {fix}")
    return Capability(what, True, "ACL SETUSER, ACL GETUSER, INFO and persisting the ACL are allowed")


def _dryrun_refusal(client: Redis, actor: str, user: str) -> str | None:
    """Why ``ACL DRYRUN`` says ``actor`` may not change ``user``'s passwords, or None."""

    def refusal(*command: str) -> str | None:
        answer = client.execute_command("ACL DRYRUN", actor, *command)  # type: ignore[no-untyped-call]
        if answer in (b"OK", "OK", True):
            return None
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    for command in (("ACL", "SETUSER", user), ("ACL", "GETUSER", user), *_READS):
        reason = refusal(*command)
        if reason is not None:
            return reason
    how = _persistence(client)
    reason = None if how is None else refusal(*how.split())
    return None if reason is None else f"{reason}: {_persisted_with(how)}"


#: What a password change reads besides the user (``replication``, ``_persistence``);
#: ACL rights make no difference between INFO's sections.
_READS = (("CONFIG", "GET", "aclfile"), ("INFO", "replication"))


def _persisted_with(how: str | None) -> str:
    if how == "ACL SAVE":
        return "this server keeps its users in an ACL file, persisted with ACL SAVE"
    return f"this server persists its users with {how} (it has a configuration file and no ACL file)"


def _probe_self_service(client: Redis, user: str, what: str, fix: str) -> Capability:
    """The rights probed without ``ACL DRYRUN``, changing nothing (the contract of the
    preflight and of createSecret): the reads a password change makes (the user, the
    node's replication, the persistence settings) are made; the writes (``ACL SETUSER``
    and the persistence command) are only queued after ``MULTI`` and discarded (the
    server checks ACL rights when it queues; nothing runs). A user that may not run
    ``MULTI`` either is not checked for the writes (running them would write: ``CONFIG
    REWRITE`` would also persist any setting changed at run time): setSecret's own
    ``NOPERM`` names what is missing. Nor is a user that may run ``MULTI`` but not
    ``DISCARD`` (its session is reopened: ``_queued_then_discarded``)."""
    refused = (
        f"; Redis lets only a user that may change every user set its own passwords: {fix} "
        "(ACL SETUSER, ACL GETUSER, INFO and ACL SAVE or CONFIG REWRITE, as the server persists)"
    )
    try:
        _command(client, "read its own ACL", "ACL GETUSER", user)
        _command(client, "read its replication (INFO replication)", "INFO", "replication")
        how = _persistence(client)
    except PermissionDeniedError as error:
        return Capability(what, False, f"{error}{refused}")
    try:
        queued = _queued_then_discarded(client, "ACL SETUSER", user)
    except PermissionDeniedError as error:
        return Capability(what, False, f"{error}{refused}")
    if queued == _QUEUED and how is not None:
        try:
            queued = _queued_then_discarded(client, how)
        except PermissionDeniedError as error:
            return Capability(what, False, f"{error}: {_persisted_with(how)}: {fix}")
    writes = f"ACL SETUSER or {how or 'persisting'}"
    if queued == _NO_MULTI:
        return Capability(
            what,
            None,
            "not checked: the session may run neither ACL DRYRUN nor MULTI (the preflight and "
            f"createSecret write nothing); setSecret says if {writes} is refused",
        )
    if queued == _NO_DISCARD:
        return Capability(
            what,
            None,
            "not checked: the session may run MULTI but not DISCARD, so the writes are not probed "
            "(the preflight and createSecret write nothing; the session left in MULTI was closed); "
            f"setSecret says if {writes} is refused. Grant DISCARD to have them checked",
        )
    return Capability(
        what, True, f"ACL SETUSER, ACL GETUSER, INFO and {how or 'no persistence'} are allowed (probed)"
    )


#: What ``_queued_then_discarded`` found: the command queued (the session may run it),
#: the session may not run MULTI, or it may not run DISCARD.
_QUEUED, _NO_MULTI, _NO_DISCARD = "queued", "no MULTI", "no DISCARD"


def _queued_then_discarded(client: Redis, *command: str) -> str:
    """Whether the session may run ``command``, asked by queueing it after ``MULTI`` and
    sending ``DISCARD``: it never runs (``ACL SETUSER`` with no rules would change
    nothing anyway, but is never sent outside the transaction). ``_QUEUED`` when it may;
    ``_NO_MULTI``, having sent nothing else, when the session may not run ``MULTI``;
    raises PermissionDeniedError when it may not run ``command``.

    A session whose ``DISCARD`` fails (refused: ``_NO_DISCARD``, unless ``command`` was
    refused too) is still in the transaction: it is closed, never reused (a later command
    would only be queued, never run), and the client's next command opens a new one,
    authenticated as before."""
    import redis

    try:
        client.execute_command("MULTI")  # type: ignore[no-untyped-call]  # untyped in redis-py
    except redis.exceptions.NoPermissionError:
        return _NO_MULTI
    discarded = False
    try:
        _command(client, command[0], *command)
    finally:
        try:
            _command(client, "leave the probe's transaction (DISCARD)", "DISCARD")
            discarded = True
        except PermissionDeniedError:
            pass  # the command's own refusal, if any, goes on out
        finally:
            if not discarded:
                client.connection_pool.disconnect()
    return _QUEUED if discarded else _NO_DISCARD


def _persistence(client: Redis) -> str | None:
    """The command that persists ACL changes on this server, or None when it keeps its
    users in memory only (no ACL file, no configuration file)."""
    aclfile = _command(client, "read the aclfile setting", "CONFIG GET", "aclfile")
    if isinstance(aclfile, dict) and aclfile.get("aclfile"):
        return "ACL SAVE"
    server = _command(client, "read the server's configuration file", "INFO", "server")
    if isinstance(server, dict) and server.get("config_file"):
        return "CONFIG REWRITE"
    return None


def replication(client: Redis) -> str | None:
    """What makes this node one of a replication set, from ``INFO replication``: a
    replica (``role:slave``), or a primary with connected replicas (listed by the address
    each announced); None for a node on its own. Raises PermissionDeniedError when the
    session may not run ``INFO``.

    Redis never replicates ACL users: each node keeps its own, so a password changed on
    one node of a set is not changed on the others. A primary whose replicas are all
    disconnected at that moment lists none."""
    info = _command(client, "read its replication (INFO replication)", "INFO", "replication")
    if not isinstance(info, dict):
        return None
    if str(info.get("role")) in ("slave", "replica"):
        return f"a replica of {info.get('master_host')}:{info.get('master_port')}"
    replicas = [
        f"{node.get('ip')}:{node.get('port')}"
        for key, node in info.items()
        if re.fullmatch(r"slave\d+", str(key)) and isinstance(node, dict)
    ]
    if replicas or int(info.get("connected_slaves") or 0) > 0:
        count = max(len(replicas), int(info.get("connected_slaves") or 0))
        return f"a primary with {count} connected replica(s): {', '.join(replicas) or 'not listed'}"
    return None


def set_passwords(client: Redis, user: str, wanted: list[str]) -> None:
    """Make ``user`` hold exactly ``wanted`` (one atomic ``ACL SETUSER``), check it, and
    persist it where the server keeps its users."""
    held = _getuser(client, user)
    rules = password_rules(held.get("passwords", []), wanted)
    if rules:
        _command(client, f"set the passwords of {user!r}", "ACL SETUSER", user, *rules)
    if set(_getuser(client, user).get("passwords", [])) != {password_hash(p) for p in wanted}:
        raise VerificationError(f"user {user!r} does not hold the passwords just set")
    how = _persistence(client)
    if how is not None:
        _command(client, f"persist the ACL ({how})", how)
