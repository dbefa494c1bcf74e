"""Redis and Valkey ACL users with redis-py; ElastiCache and MemoryDB users through
their service's API (``managed.py``).

Redis users hold several passwords, so this engine never alternates users and never
changes a password in place: a rotation makes the user accept the pending password
beside the current one and drops any older one, one rotation after it
stopped being current. With a master secret the master user does that for the
secret's user; without one the user does it for itself, which Redis allows only to a
user that may change every user (``ACL SETUSER``): createSecret refuses a user that may
not, saying to add a master secret. Nothing but passwords changes: commands, key and
channel patterns and selectors are left as they are.

The commands themselves, and how ACL changes are persisted, are in ``dataplane.py``.

A secret with ``user_arn`` (AWS's ElastiCache format) names an ElastiCache or MemoryDB
user: its passwords change through the service's API, and every step logs in to an
endpoint the service's API lists for the user's clusters (the one the secret names in
``host``, which must be listed, else each in turn until one answers: a refused password
is an answer): the current password is proven before the API changes anything, the
pending one before it becomes current. Where no endpoint
can be found or reached (a network failure; a TLS failure stops the step) the secret is
refused, unless the deployment accepts rotation checked by the user's status only
(``MANAGED_USER_STATUS_ONLY``, as AWS's own ElastiCache function does): finishSecret then
re-applies ``[pending, current]`` before the labels move, so that what becomes current is
held by construction.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from common.engine import Capability, Engine, Login, engine_log, require_held
from common.errors import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseOperationError,
    PermissionDeniedError,
    SecretMismatchError,
    TlsConfigurationError,
    VerificationError,
)
from common.passwords import PasswordPolicy
from common.settings import flag, seconds
from rotators.redis.dataplane import connect, may_change, ping, replication, set_passwords, tls_failure
from rotators.redis.managed import ManagedUser, ServiceClients, UserArn, WaitBudget

if TYPE_CHECKING:
    from collections.abc import Mapping

    from redis import Redis

    from common.deadline import Deadline

#: How long a step may wait for a managed user to turn ``active`` (seconds, all waits).
DEFAULT_USER_WAIT = 240
#: The most a step may wait (the template's MaxValue of ManagedUserWaitSeconds, for its
#: 600 s time-out). Whatever the function's time-out, every wait also stops before the
#: step's deadline (``ManagedUser.wait_until_active``: StepTimeLimitError).
MAX_USER_WAIT = 480
USER_WAIT_VARIABLE = "MANAGED_USER_WAIT_SECONDS"
#: The opt-in to rotate a managed user no login can reach, checked by its status only.
STATUS_ONLY_VARIABLE = "MANAGED_USER_STATUS_ONLY"
#: The opt-in to rotate, on a self-managed node that replicates, that node's users only.
ONE_NODE_VARIABLE = "REDIS_ROTATE_NAMED_NODE_ONLY"


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
        user_wait_seconds: float | None = None,
        status_only: bool | None = None,
        named_node_only: bool | None = None,
        poll_seconds: float = 2.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``user_wait_seconds``, ``status_only`` and ``named_node_only`` default to
        ``MANAGED_USER_WAIT_SECONDS`` (240), ``MANAGED_USER_STATUS_ONLY`` and
        ``REDIS_ROTATE_NAMED_NODE_ONLY`` (false) of ``environ`` (the process's), read when
        first needed, so that a bad value fails a step."""
        self._service_clients = service_clients
        self._clients: dict[tuple[str, str], Any] = {}
        #: A managed user's ARN -> the listed endpoint that last answered a login.
        self._answered: dict[str, tuple[str, int]] = {}
        self._user_wait_seconds = user_wait_seconds
        self._status_only = status_only
        self._named_node_only = named_node_only
        self._environ = environ
        self.poll_seconds = poll_seconds
        #: The running step's budget for managed users' waits, from the step's first managed
        #: user on: every ManagedUser of the step shares it.
        self._budget: WaitBudget | None = None

    def start_step(self, deadline: Deadline) -> None:
        super().start_step(deadline)
        self._budget = None

    @cached_property
    def user_wait_seconds(self) -> float:
        if self._user_wait_seconds is not None:
            return self._user_wait_seconds
        wait = seconds(self._env, USER_WAIT_VARIABLE, DEFAULT_USER_WAIT)
        if wait > MAX_USER_WAIT:
            raise ConfigurationError(
                f"{USER_WAIT_VARIABLE} must be at most {MAX_USER_WAIT} seconds: one step waits that "
                "long in all and must fit the function's 600 s time-out"
            )
        return wait

    @cached_property
    def status_only(self) -> bool:
        if self._status_only is not None:
            return self._status_only
        return flag(self._env, STATUS_ONLY_VARIABLE, default=False)

    @cached_property
    def named_node_only(self) -> bool:
        if self._named_node_only is not None:
            return self._named_node_only
        return flag(self._env, ONE_NODE_VARIABLE, default=False)

    @property
    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    # -- sessions ----------------------------------------------------------------------

    def open(self, login: Login) -> RedisSession:
        session = RedisSession(login)
        if login.user_arn is None:
            session.client = connect(login)
            return session
        session.service = self._managed(login.user_arn)
        session.service.require(login.username)
        endpoints, why_none = self._endpoints(session.service)
        if login.host:
            named = (login.host.lower(), login.port)
            if not endpoints:
                # A login at an endpoint the API does not vouch for would prove nothing.
                self._accept_status_only(session.service, f"{why_none}, so the secret's host is not checked")
                return session
            if named not in endpoints:
                listed = ", ".join(f"{host}:{port}" for host, port in endpoints)
                raise SecretMismatchError(
                    f"the secret's host {login.host}:{login.port} is not an endpoint of "
                    f"{session.service.arn.arn}'s clusters (the service lists {listed}): a login there "
                    "would not prove the user's password"
                )
            targets = [login]
        elif endpoints:
            targets = [
                dataclasses.replace(login, host=host, port=port)
                for host, port in self._answered_first(session.service, endpoints)
            ]
        else:
            self._accept_status_only(session.service, why_none)
            return session
        unreachable: list[str] = []
        for target in targets:
            try:
                session.client = connect(target)
            except DatabaseConnectionError as error:
                if tls_failure(error):
                    # Not a network failure: the endpoint answered with a certificate this
                    # function does not trust. Never dropped for a status-only check.
                    raise TlsConfigurationError(
                        f"{error}: set DB_CA_BUNDLE to the CA of the cluster"
                    ) from error
                # Only an unreachable endpoint moves on: a refused password (the login's
                # DatabaseLoginError) is an answer, never skipped.
                unreachable.append(str(error))
                continue
            self._answered[session.service.arn.arn] = (target.host, target.port)
            return session
        self._accept_status_only(session.service, "; ".join(unreachable))
        return session

    def _answered_first(self, user: ManagedUser, endpoints: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """``endpoints`` in the service's order, the one that last answered for ``user`` in
        this container first: a user in several user groups or ACLs may have clusters the
        function cannot reach, and each of those costs a connect time-out per session."""
        answered = self._answered.get(user.arn.arn)
        if answered in endpoints:
            return [answered, *(endpoint for endpoint in endpoints if endpoint != answered)]
        return endpoints

    def _endpoints(self, user: ManagedUser) -> tuple[list[tuple[str, int]], str]:
        """The endpoints the API lists for ``user`` and, when none, why."""
        try:
            endpoints = user.endpoints()
        except PermissionDeniedError as error:
            if not self.status_only:
                raise PermissionDeniedError(
                    f"{error}: grant it on the user's user groups and replication groups (MemoryDB: ACLs "
                    "and clusters) with the template parameter CacheClusterArns"
                ) from error
            return [], f"its endpoints cannot be looked up ({error})"
        if not endpoints and user.serverless_caches:
            caches = ", ".join(user.serverless_caches[:3])
            return (
                [],
                f"its user groups serve only serverless caches ({caches}), whose endpoints are not looked up",
            )
        return endpoints, "the service lists no cluster endpoint for it"

    def _accept_status_only(self, user: ManagedUser, reason: str) -> None:
        """Go on without a login (the deployment's opt-in; logged once, with ``reason``),
        or refuse naming the opt-in."""
        if not self.status_only:
            raise DatabaseConnectionError(
                f"no login can prove the password of {user.arn.arn}: {reason}. Name a reachable endpoint "
                f"of its cluster in the secret ('host', 'port'), let the function reach it, or set "
                f"{STATUS_ONLY_VARIABLE}=true (template parameter ManagedUserStatusOnly) to accept a "
                "rotation checked by the user's status only, as AWS's ElastiCache function does (the "
                "README says what that risks)"
            )
        engine_log.warning(
            "password not proven by a login: the managed user is checked by its status only",
            extra={"user_arn": user.arn.arn, "reason": reason},
        )

    def proves_password(self, connection: RedisSession) -> bool:
        return connection.client is not None

    def close(self, connection: RedisSession) -> None:
        if connection.client is not None:
            connection.client.close()

    def verify_session(self, connection: RedisSession) -> None:
        if connection.client is not None:
            if not ping(connection.client):
                raise VerificationError("PING did not answer PONG")
            if connection.service is None:
                self._require_one_node(connection, strict=False)
            return
        assert connection.service is not None  # open() gives every session one or the other
        connection.service.wait_until_active()  # open() logged why no login proves it

    # -- passwords ---------------------------------------------------------------------

    def add_password(self, connection: RedisSession, *, user: str, keep: str, new: str) -> bool:
        self._set_passwords(connection, user, [new, keep])
        return True

    def change_own_password(self, connection: RedisSession, login: Login, new_password: str) -> None:
        # Not reached by a rotation (add_password always keeps two, so the Rotator never
        # falls back to this); kept because Engine declares it abstract, and exact.
        self._set_passwords(connection, login.username, [new_password])

    def _set_passwords(self, connection: RedisSession, user: str, passwords: list[str]) -> None:
        """Through the service's API for a managed user (newest first), else with ACL rules."""
        if connection.service is not None:
            if connection.login.username != user:
                # The session is another user's (a master's): never change its passwords.
                raise DatabaseOperationError(
                    f"the session is for {connection.login.username!r}, not {user!r}: a managed user's "
                    "passwords change only through its own session"
                )
            connection.service.set_passwords(passwords)
            return
        assert connection.client is not None  # open() gives every session one or the other
        self._require_one_node(connection, strict=True)
        set_passwords(connection.client, user, passwords)

    def _require_one_node(self, connection: RedisSession, *, strict: bool) -> None:
        """Refuse a self-managed node that replicates (``_replication_refusal``)."""
        refusal = self._replication_refusal(connection, strict=strict)
        if refusal is not None:
            raise DatabaseOperationError(refusal)

    def _replication_refusal(self, connection: RedisSession, *, strict: bool) -> str | None:
        """Why this self-managed node may not be rotated, or None: it replicates
        (``dataplane.replication``), and Redis never replicates ACL users, so a password
        changed here would leave every other node of the set refusing AWSCURRENT, with no
        error. Checked in every session a step verifies, when its user may run ``INFO``
        (createSecret refuses there, before anything is stored), in the preflight, and
        always (``strict``: a user that may not run ``INFO`` is refused) in the session that
        changes the passwords, before it changes them. ``REDIS_ROTATE_NAMED_NODE_ONLY``
        accepts the node, logged: each node's users are rotated by a secret of their own."""
        login, client = connection.login, connection.client
        assert client is not None
        try:
            where = replication(client)
        except PermissionDeniedError as error:
            if not strict:
                return None
            raise PermissionDeniedError(
                f"{error}: a password changes only on a node known not to replicate (Redis never "
                "replicates ACL users); grant INFO to the user that changes passwords"
            ) from error
        if where is None:
            return None
        node = f"{login.host}:{login.port}"
        if self.named_node_only:
            engine_log.warning(
                "rotating the named node only: its replicas or primary keep their own users",
                extra={"node": node, "replication": where},
            )
            return None
        return (
            f"{node} is {where}; Redis never replicates ACL users (each node keeps its own), so a "
            "password changed here would leave the other node(s) refusing AWSCURRENT. Either keep "
            "this user in an ACL file your deployment writes to every node (and rotate it there, "
            "not with this function), or give each node a secret of its own naming that node and "
            f"set {ONE_NODE_VARIABLE}=true (template parameter RedisRotateNamedNodeOnly) on the "
            "function that rotates them"
        )

    def _may_change_here(self, connection: RedisSession, actor: str, user: str, what: str) -> Capability:
        """``dataplane.may_change``, then whether this node may be rotated at all."""
        assert connection.client is not None
        capability = may_change(connection.client, actor, user, what)
        if capability.held:
            refusal = self._replication_refusal(connection, strict=False)
            if refusal is not None:
                return Capability(what, False, refusal)
        return capability

    def check_own_rotation(self, connection: RedisSession, login: Login) -> None:
        require_held(self.own_password_capabilities(connection, login), login.username)

    def own_password_capabilities(self, connection: RedisSession, login: Login) -> list[Capability]:
        what = "set its own passwords"
        if connection.service is not None or connection.client is None:
            return [Capability(what, None, "a managed user: its passwords change through the service's API")]
        return [self._may_change_here(connection, login.username, login.username, what)]

    def alternate_user_capabilities(
        self, connection: RedisSession, *, original: str, clone: str, database: str | None, current: Login
    ) -> list[Capability]:
        # Redis never makes a clone: the master gives the original user a second password.
        what = f"give {original!r} a second password"
        if connection.client is None:
            return [Capability(what, None, "not checked: the master secret names no endpoint")]
        return [self._may_change_here(connection, connection.login.username, original, what)]

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
        current: Login,
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
        if self._budget is None:
            self._budget = WaitBudget(self.user_wait_seconds, self.deadline)
        return ManagedUser(arn, self._clients[key], budget=self._budget, poll_seconds=self.poll_seconds)
