"""The interface a database engine implements: database operations and nothing else.

The rotation core decides what to do and when; an engine only knows how to log in,
change a password, keep the alternate user in line with the original, and prove a
session works. Engines import their driver lazily and never import boto3.
"""

from __future__ import annotations

import logging
import math
import os
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from common.deadline import UNBOUNDED, Deadline
from common.errors import (
    AccountBlockedError,
    DatabaseConnectionError,
    DatabaseLoginError,
    DatabaseOperationError,
    PermissionDeniedError,
    RotationError,
    SecretFormatError,
    VerificationError,
)
from common.passwords import PasswordPolicy
from common.redaction import redact
from common.secret import host_problem
from common.settings import service_name
from common.tls import TlsPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator

    from common.secret import DatabaseSecret
    from common.settings import Settings

ConnectionT = TypeVar("ConnectionT")

#: Where an engine says what is worth knowing but no failure (a fallback it took, a check
#: it could not make). A child of the rotation functions' Powertools logger (whatever
#: ``POWERTOOLS_SERVICE_NAME`` names), so its lines come out in the same JSON with the
#: same mask; this module does not import Powertools, since the application layer ships
#: it without.
engine_log = logging.getLogger(f"{service_name(os.environ)}.engine")


@dataclass(frozen=True)
class Login:
    """Everything needed to open one session; ``label`` names the secret version it
    came from (``AWSCURRENT``, ``AWSPENDING``, ``master``...) for errors and logs."""

    host: str
    port: int
    dbname: str | None
    username: str
    password: str = field(repr=False)
    tls: TlsPolicy
    connect_timeout: int
    statement_timeout: int
    label: str
    #: A user managed through a cloud service's API (AWS's ElastiCache secret format).
    user_arn: str | None = None

    def __post_init__(self) -> None:
        # Drivers hand these to C libraries and the wire: a NUL byte raises a raw
        # ValueError (libpq) or truncates, and text that is not valid Unicode (a lone
        # surrogate from a JSON escape) raises a UnicodeEncodeError whose repr holds the
        # value. Refuse both here, for every engine, naming the key and never the value.
        for key in ("host", "username", "password", "dbname"):
            text = getattr(self, key)
            if text is None:
                continue
            if "\x00" in text:
                raise SecretFormatError(f"the {self.label} secret's key '{key}' contains a NUL byte")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise SecretFormatError(
                    f"the {self.label} secret's key '{key}' is not valid Unicode text "
                    "(a lone surrogate cannot be sent to a database)"
                ) from None
        # Every session opens here, whatever gave the host (a secret, RDS, a managed
        # user's endpoint): no driver may fall back to a local socket. Only a managed
        # user's login may lack a host until its engine finds the endpoint.
        problem = host_problem(self.host) if self.host or self.user_arn is None else None
        if problem:
            raise SecretFormatError(f"the {self.label} secret's key 'host' {problem}")

    @classmethod
    def for_secret(
        cls,
        engine: Engine[ConnectionT],
        secret: DatabaseSecret,
        label: str,
        settings: Settings,
        dbname: str | None = None,
    ) -> Login:
        """How to log in with ``secret``: the engine's defaults for port and database, the
        TLS policy of the secret and settings, the configured time-outs."""
        return cls(
            host=secret.host,
            port=secret.port or engine.default_port,
            dbname=dbname or secret.dbname or engine.default_dbname,
            username=secret.username,
            password=secret.password,
            tls=TlsPolicy.for_secret(secret, settings.ca_bundle),
            connect_timeout=settings.connect_timeout,
            statement_timeout=settings.statement_timeout,
            label=label,
            user_arn=secret.user_arn,
        )

    def refused(self) -> DatabaseLoginError:
        """The error for a server that refused these credentials."""
        return DatabaseLoginError(
            f"{self.host}:{self.port} refused the {self.label} credentials for user {self.username!r}"
        )

    def blocked(self, reason: str) -> AccountBlockedError:
        """The error for a server that blocks the account (``reason``: the server's words)."""
        return AccountBlockedError(
            f"{self.host}:{self.port} blocks user {self.username!r} after too many refused logins "
            f"in a row ({self.label} credentials not checked): {redact(reason)}; no login works until "
            "an administrator unblocks the account (MariaDB: FLUSH PRIVILEGES; MySQL 8: after "
            "PASSWORD_LOCK_TIME, or ALTER USER ... ACCOUNT UNLOCK)"
        )

    def unreachable(self, reason: str) -> DatabaseConnectionError:
        """The error for any other failure to open a session (``reason`` is the driver's)."""
        return DatabaseConnectionError(
            f"cannot connect to {self.host}:{self.port} as {self.username!r} ({self.label}): {redact(reason)}"
        )


class Engine(ABC, Generic[ConnectionT]):
    """Database operations for one family of servers.

    Contract for every method: failures raise the ``DatabaseError`` subclass that says
    what went wrong, with a message that never contains a password.
    """

    #: Short name used in logs and metrics.
    name: ClassVar[str]
    #: The secret's ``engine`` values this engine serves.
    engines: ClassVar[frozenset[str]]
    default_port: ClassVar[int]
    default_dbname: ClassVar[str | None]
    #: Longest user name the server accepts (the alternate user's name must fit).
    max_username_length: ClassVar[int]
    password_policy: ClassVar[PasswordPolicy] = PasswordPolicy()
    #: Whether the master user's session opens on the rotated secret's database instead of
    #: the master secret's own (Redshift keeps schema and table privileges per database).
    master_session_on_secret_database: ClassVar[bool] = False
    #: Whether, with a master secret, the master user gives the secret's own user a second
    #: password instead of alternating two users (servers whose users hold two passwords).
    master_adds_password: ClassVar[bool] = False
    #: The running step's deadline (:meth:`start_step`): an engine's own waits stop before
    #: it (StepTimeLimitError), and every login opened with :meth:`connect` or
    #: :meth:`bounded` fits in it.
    deadline: Deadline = UNBOUNDED

    def start_step(self, deadline: Deadline) -> None:
        """Called by the Rotator as each step, and each preflight, begins, with its
        deadline. Engines that keep per-step state (a budget) override it, calling this."""
        self.deadline = deadline

    def username_limit(self, engine: str) -> int:
        """The longest user name for a secret whose ``engine`` key is ``engine``; engines
        serving several server families (MySQL and MariaDB) override this."""
        return self.max_username_length

    @abstractmethod
    def open(self, login: Login) -> ConnectionT:
        """A new session for ``login``; the caller closes it with :meth:`close`.

        Raises ``login.refused()`` when the server refuses the credentials,
        ``login.blocked(...)`` when it blocks the account whatever the credentials, and
        ``login.unreachable(...)`` for anything else (unreachable, TLS failure, time-out):
        callers try other credentials only after a refused login.
        """

    @abstractmethod
    def close(self, connection: ConnectionT) -> None:
        """Close a session; never raises."""

    @contextmanager
    def closed_on_failure(self, connection: ConnectionT) -> Iterator[ConnectionT]:
        """For :meth:`open`: the block's statements run on a fresh ``connection``, which
        is closed (never leaked) when one of them fails."""
        try:
            yield connection
        except BaseException:
            self.close(connection)
            raise

    def bounded(self, login: Login) -> Login:
        """``login``, which starts only when the step's deadline leaves the connect
        time-out for it (else StepTimeLimitError); its statements' time-out cut to what the
        deadline leaves after a full-length login (at least 1 s, within the margin), so a
        blocked statement stops in time."""
        left = self.deadline.left()
        self.deadline.require(login.connect_timeout, f"logging in with the {login.label} credentials")
        after_login = left - login.connect_timeout
        if after_login < login.statement_timeout:
            login = replace(login, statement_timeout=max(1, math.floor(after_login)))
        return login

    @contextmanager
    def connect(self, login: Login) -> Iterator[ConnectionT]:
        """A session for ``login`` (:meth:`bounded` by the step's deadline), closed on exit
        (errors as for :meth:`open`). Every login of a step opens here, or with
        ``open(bounded(login))`` for a session kept beyond a block."""
        connection = self.open(self.bounded(login))
        try:
            yield connection
        finally:
            self.close(connection)

    @abstractmethod
    def change_own_password(self, connection: ConnectionT, login: Login, new_password: str) -> None:
        """Logged in as ``login.username``, change that user's password."""

    @abstractmethod
    def set_alternate_user(
        self,
        connection: ConnectionT,
        *,
        original: str,
        clone: str,
        user: str,
        password: str,
        database: str | None,
        current: Login,
    ) -> None:
        """Logged in as the master user, make ``user`` (``original`` or ``clone``) log in
        with ``password``, and bring ``clone`` in line with ``original``'s privileges at
        every rotation (``clone`` is created here when it is ``user`` and missing).
        ``database`` is the secret's (where MongoDB keeps its users). Safe to run again.

        ``current`` is the secret's current login (``current.username`` is the other
        user of the two), which the core has just proved the server accepts. An engine
        whose user names do not name one account (MySQL's ``user@host``) uses it to act
        only on the accounts those credentials proved; others may ignore it."""

    def add_password(self, connection: ConnectionT, *, user: str, keep: str, new: str) -> bool:
        """Make ``user`` accept ``new`` as well as ``keep``, and no other password: the one
        before ``keep`` goes now, a whole rotation after it stopped being current.

        The session is ``user``'s own, logged in with ``keep`` (single user), or the master
        user's (engines with :attr:`master_adds_password`). Safe to run again, and never
        refuses ``keep`` on the way. Returns False, having changed nothing, when the server
        or the account cannot hold two passwords; single-user rotation then changes the
        password instead. The default: no engine holds two passwords unless it says so.
        """
        return False

    def check_own_rotation(self, connection: ConnectionT, login: Login) -> None:
        """createSecret's check, logged in as a single user, that it may rotate its own
        password; raises PermissionDeniedError saying what to do when it may not. The
        default accepts: on most servers every user may change its own password. An engine
        that checks states its rule once, in :meth:`own_password_capabilities` (what the
        preflight reports), and applies it here with :func:`require_held`."""
        return None

    def proves_password(self, connection: ConnectionT) -> bool:
        """Whether opening ``connection`` proved its login's password to the server. False
        only for a session that no login opened (a user managed through a service's API,
        checked by its status when the deployment accepts that): finishSecret then applies
        the pending password again before the labels move."""
        return True

    @abstractmethod
    def verify_session(self, connection: ConnectionT) -> None:
        """Run a query that proves the session is usable."""

    @abstractmethod
    def verify_privileges(
        self, connection: ConnectionT, *, original: str, user: str, database: str | None
    ) -> None:
        """Logged in as ``user``, prove it holds the privileges of ``original``;
        raise VerificationError when it does not."""

    # -- read replicas: optional, the defaults suit an engine that cannot tell ----------

    def is_replica(self, connection: ConnectionT) -> bool:
        """Whether the session's server is a read-only replica, where a password cannot
        change (it changes on the writer and reaches the replica by replication)."""
        return False

    def write_position(self, connection: ConnectionT) -> str | None:
        """On the writer, after a change: a position in its change stream that a replica
        has reached once it holds the change; None when the engine cannot tell."""
        return None

    def has_replayed(self, connection: ConnectionT, position: str) -> bool | None:
        """On a replica: whether it has applied the writer's changes up to ``position``;
        None when it cannot tell (the rotation then retries logins on it instead)."""
        return None

    # -- preflight: read-only checks of what a strategy needs (engines override) ----------

    def own_password_capabilities(self, connection: ConnectionT, login: Login) -> list[Capability]:
        """Logged in as ``login.username``, whether that user may change its own password
        here (single user). Reads only; the default checks nothing."""
        return [Capability("change its own password", None, f"not checked by the {self.name} engine")]

    def login_lockout(self, connection: ConnectionT, login: Login) -> Lockout:
        """Logged in as ``login.username``, after how many refused logins in a row the
        server blocks that account (read only, where the account may read it). Raises
        DatabaseError when it cannot be read; the default (an engine whose servers have no
        such lockout) checks nothing and is not reported."""
        return Lockout(None, known=False, detail=f"not checked by the {self.name} engine")

    def alternate_user_capabilities(
        self, connection: ConnectionT, *, original: str, clone: str, database: str | None, current: Login
    ) -> list[Capability]:
        """Logged in as the master user, whether it may create and alter ``clone`` and give
        it what ``original`` holds (alternating users). ``current`` is AWSCURRENT's login,
        which the server has accepted (as in :meth:`set_alternate_user`). Reads only; the
        default checks nothing."""
        return [
            Capability(
                f"create and alter {clone!r} with the privileges of {original!r}",
                None,
                f"not checked by the {self.name} engine",
            )
        ]


PrivilegesT = TypeVar("PrivilegesT")


def compare_with_original(
    own: PrivilegesT, read_original: Callable[[], PrivilegesT | None], *, user: str, original: str
) -> None:
    """testSecret's privilege check for engines whose pending user may not be allowed to
    read the original's privileges: compare when it may; otherwise accept a user that
    holds some privileges, since setSecret compared both as the master user.

    ``own`` must hold only real privileges: an engine leaves out what every account has
    (MySQL's ``USAGE ON *.*``), or a user stripped of everything would pass."""
    try:
        theirs = read_original()
    except PermissionDeniedError as error:
        if not own:
            raise VerificationError(f"user {user} holds no privileges") from error
        return
    if theirs is not None and own != theirs:
        raise VerificationError(f"user {user} does not hold the privileges of {original!r}")


@dataclass(frozen=True)
class DriverErrors:
    """How one driver's exceptions become this project's errors; an engine names only
    what differs between drivers.

    ``reason`` reads an exception's server error code (or None) and a message that is
    safe to show: never the statement, which may hold a password or its hash. Codes in
    ``denied`` mean the server refused the statement for lack of a privilege.
    """

    reason: Callable[[Exception], tuple[object | None, str | None]]
    denied: Collection[object] = frozenset()

    def shape(self, what: str, error: Exception, denied_hint: str | None = None) -> DatabaseOperationError:
        """The error for ``error`` raised while trying to ``what`` ("could not <what>: ...");
        a refusal for lack of a privilege is a PermissionDeniedError, explained by
        ``denied_hint`` when given."""
        code, message = self.reason(error)
        reason = redact(message) if message else type(error).__name__
        if code is not None and code in self.denied:
            return PermissionDeniedError(f"could not {what}: {denied_hint or f'{code}: {reason}'}")
        detail = f"{code}: {reason}" if code is not None else reason
        return DatabaseOperationError(f"could not {what}: {detail}")

    @contextmanager
    def operation(self, what: str, denied_hint: str | None = None) -> Iterator[None]:
        """Run the block, turning any driver exception into :meth:`shape`'s error (our own
        errors pass through unchanged), so no raw driver error leaves an engine."""
        try:
            yield
        except RotationError:
            raise
        except Exception as error:
            raise self.shape(what, error, denied_hint) from error


def require_held(capabilities: Iterable[Capability], user: str) -> None:
    """Raise PermissionDeniedError for the first capability found missing (``held`` False);
    one not checked (None) does not refuse: the step that needs it will say."""
    for capability in capabilities:
        if capability.held is False:
            raise PermissionDeniedError(f"user {user!r} may not {capability.what}: {capability.detail}")


def first_line(error: BaseException) -> str:
    """An exception's first non-empty line (drivers append statements, hints and topology
    descriptions below it), or its class name."""
    for line in str(error).strip().splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


@dataclass(frozen=True)
class Lockout:
    """Whether the server blocks an account after refused logins (MariaDB's
    ``max_password_errors``, MySQL 8's ``FAILED_LOGIN_ATTEMPTS``): ``limit`` refused logins
    in a row block it, None when they never do or it is not ``known``."""

    limit: int | None
    known: bool
    detail: str


@dataclass(frozen=True)
class Capability:
    """One thing a rotation strategy needs of the database, as a preflight found it.

    ``held`` is True or False when the engine checked it (read only), None when it did
    not; ``detail`` says why, and how to give what is missing. Never a secret value."""

    what: str
    held: bool | None
    detail: str
