"""What an application needs of a database session beyond opening and closing it.

The engines (``rotators/<engine>/engine.py``) open and close sessions for the rotation
functions and for applications alike; what only applications need lives here, one small
adapter per engine: whether a kept session can still be used, and how a unit of work
ends. Each adapter imports its driver only when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from common.errors import ConfigurationError

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from pymysql.connections import Connection as MySQLConnection

    from common.engine import Engine

SessionT_contra = TypeVar("SessionT_contra", contravariant=True)


class SessionKind(Protocol[SessionT_contra]):
    """The application side of one engine's sessions."""

    def is_broken(self, session: SessionT_contra, idle: float) -> bool:
        """Whether a kept session can no longer be used, found out without sending
        anything that could change data; ``idle`` is the seconds since its last unit of
        work."""
        ...

    def end(self, session: SessionT_contra) -> None:
        """End a unit of work that succeeded: commit the transaction it opened, so that no
        session waits idle in a transaction and the next unit sees fresh data."""
        ...


class PostgresSessions:
    """psycopg2 opens a transaction at the first statement and keeps it until commit."""

    def is_broken(self, session: PgConnection, idle: float) -> bool:
        import select

        import psycopg2

        if session.closed:
            return True
        # A server that ended the session (restart, pg_terminate_backend, idle time-out)
        # has said so (a FATAL message, which poll() files as a notice) and closed the
        # socket (which the next poll() finds): an idle session reads what is waiting.
        # Notifications are only queued; the bound keeps a chatty server from holding us.
        try:
            for _ in range(4):
                readable, _, _ = select.select([session], [], [], 0)
                if not readable:
                    break
                session.poll()
        except (psycopg2.Error, OSError, ValueError):
            return True
        return bool(session.closed)

    def end(self, session: PgConnection) -> None:
        session.commit()


class MySQLSessions:
    """PyMySQL sessions (opened in autocommit by the engine).

    PyMySQL learns that the server ended a session only when it next reads, so a session
    idle for ``ping_after`` seconds or more is pinged (one round trip, no statement).
    """

    def __init__(self, ping_after: float = 1.0) -> None:
        self.ping_after = ping_after

    def is_broken(self, session: MySQLConnection, idle: float) -> bool:
        import pymysql

        if not session.open:
            return True
        if idle < self.ping_after:
            return False
        try:
            session.ping(reconnect=False)
        except (pymysql.err.Error, OSError):
            return True
        return False

    def end(self, session: MySQLConnection) -> None:
        from pymysql.constants.SERVER_STATUS import SERVER_STATUS_IN_TRANS

        status: int = session.server_status  # type: ignore[attr-defined]  # public, not in the stubs
        if status & SERVER_STATUS_IN_TRANS:  # the work began a transaction and left it open
            session.commit()


class MongoSessions:
    """PyMongo clients replace dropped sockets themselves; every operation is its own unit."""

    def is_broken(self, session: Any, idle: float) -> bool:
        # Only a closed client is beyond repair, and PyMongo has no public flag for it: the
        # attribute is pinned by tests/scenarios/test_connections.py on every driver upgrade.
        return bool(getattr(session, "_closed", False))

    def end(self, session: Any) -> None:
        return None


class RedshiftSessions:
    """redshift_connector sessions (opened in autocommit by the engine)."""

    def is_broken(self, session: Any, idle: float) -> bool:
        # The driver drops its stream when it closes and has no public flag for it: pinned
        # by tests/scenarios/test_connections.py.
        return getattr(session, "_sock", None) is None

    def end(self, session: Any) -> None:
        if session.in_transaction:  # the work began one and left it open
            session.commit()


_BY_ENGINE: dict[str, type[SessionKind[Any]]] = {
    "postgresql": PostgresSessions,
    "mysql": MySQLSessions,
    "mongodb": MongoSessions,
    "redshift": RedshiftSessions,
}


def sessions_for(engine: Engine[Any]) -> SessionKind[Any]:
    """The application side of ``engine``'s sessions."""
    try:
        return _BY_ENGINE[engine.name]()
    except KeyError:
        raise ConfigurationError(
            f"no application session support for engine {engine.name!r}: pass sessions= to "
            "RotationAwareConnection"
        ) from None
