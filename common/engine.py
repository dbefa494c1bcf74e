"""The interface a database engine implements: database operations and nothing else.

The rotation core decides what to do and when; an engine only knows how to log in,
change a password, keep the alternate user in line with the original, and prove a
session works. Engines import their driver lazily and never import boto3.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from common.passwords import PasswordPolicy

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from common.tls import TlsPolicy

ConnectionT = TypeVar("ConnectionT")


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

    def username_limit(self, engine: str) -> int:
        """The longest user name for a secret whose ``engine`` key is ``engine``; engines
        serving several server families (MySQL and MariaDB) override this."""
        return self.max_username_length

    @abstractmethod
    def connect(self, login: Login) -> AbstractContextManager[ConnectionT]:
        """A session for ``login``, closed on exit.

        Raises DatabaseLoginError when the server refuses the credentials, and
        DatabaseConnectionError for anything else (unreachable, TLS failure, time-out):
        the core tries other credentials only after a refused login.
        """

    @abstractmethod
    def change_own_password(self, connection: ConnectionT, login: Login, new_password: str) -> None:
        """Logged in as ``login.username``, change that user's password."""

    @abstractmethod
    def set_alternate_user(
        self, connection: ConnectionT, *, original: str, clone: str, user: str, password: str
    ) -> None:
        """Logged in as the master user, make ``user`` (``original`` or ``clone``) log in
        with ``password``, and bring ``clone`` in line with ``original``'s privileges at
        every rotation (``clone`` is created here when it is ``user`` and missing).
        Safe to run again."""

    @abstractmethod
    def verify_session(self, connection: ConnectionT) -> None:
        """Run a query that proves the session is usable."""

    @abstractmethod
    def verify_privileges(self, connection: ConnectionT, *, original: str, user: str) -> None:
        """Logged in as ``user``, prove it holds the privileges of ``original``;
        raise VerificationError when it does not."""
