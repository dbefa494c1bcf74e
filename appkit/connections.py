"""Rotation-aware database sessions for application functions.

``RotationAwareConnection`` opens a session from a secret through an engine of this
suite and keeps it across warm invocations. When the server refuses the cached
credentials it refreshes the secret and retries, once per candidate: ``AWSCURRENT``
read again, then ``AWSPENDING`` (during a single-user rotation the database already
has the pending password while ``AWSCURRENT`` still holds the old one); then it raises
DatabaseLoginError.

Each ``run`` is one unit of work: it ends with the transaction the work opened committed
(or, on failure, with the session closed, which rolls it back), so no kept session waits
idle in a transaction. A kept session found unusable *before* the work is sent is
replaced silently. Work that failed because the session broke under it is never sent
again unless the caller says it may be (``retry=True``): it may have reached the server.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Generic, TypeVar

from appkit.managed import ManagedSecrets
from appkit.sessions import sessions_for
from common.engine import ConnectionT, Engine, Login
from common.errors import DatabaseLoginError, SecretFormatError, StagingError
from common.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from appkit.retrieval import SecretCache
    from appkit.sessions import SessionKind
    from common.secret import DatabaseSecret

ResultT = TypeVar("ResultT")


class RotationAwareConnection(Generic[ConnectionT]):
    """One database session for one secret, reused across invocations (``reuse=False``
    opens a new one for each unit of work). Not shared between threads: use one per
    worker. ``sessions`` is the engine's application side (found by engine name when
    omitted; see ``appkit.sessions``); ``managed`` completes an RDS-managed secret (only
    username and password) from RDS (see ``appkit.managed``)."""

    def __init__(
        self,
        engine: Engine[ConnectionT],
        secret_id: str,
        cache: SecretCache,
        *,
        settings: Settings | None = None,
        reuse: bool = True,
        sessions: SessionKind[ConnectionT] | None = None,
        managed: ManagedSecrets | None = None,
    ) -> None:
        self.engine = engine
        self.secret_id = secret_id
        self.cache = cache
        self.settings = settings or Settings.from_environ()
        self.reuse = reuse
        self.sessions = sessions or sessions_for(engine)
        self.managed = managed or ManagedSecrets()
        self.refreshes = 0
        self._session: ConnectionT | None = None
        self._released_at = 0.0
        # The credentials that last opened a session, and the AWSCURRENT value read at the
        # time: tried first while AWSCURRENT is unchanged, so that during a single-user
        # rotation new sessions do not each meet a refused password; once the (cached,
        # SECRETS_MAX_AGE-bound) AWSCURRENT changes, it is taken first instead.
        self._working: DatabaseSecret | None = None
        self._working_since: DatabaseSecret | None = None
        self._current: DatabaseSecret | None = None
        self._lock = threading.Lock()

    def prime(self) -> None:
        """Read and check the secret now (at initialisation), so the first request does
        not, and a wrong secret id, a secret that is not a database secret, or one for
        another engine fails here, named."""
        secret = self._secret("AWSCURRENT", refresh=False)
        if secret.engine not in self.engine.engines:
            served = ", ".join(sorted(self.engine.engines))
            raise SecretFormatError(
                f"secret {self.secret_id} has engine {secret.engine!r}; this connection serves {served}"
            )

    def run(self, work: Callable[[ConnectionT], ResultT], *, retry: bool = False) -> ResultT:
        """Run ``work`` as one unit of work and return its result.

        ``retry=True`` declares ``work`` idempotent (a read, an upsert): when a kept
        session broke under it, it runs once more on a new session. Without it, that
        failure is raised (the next call opens a new session), so a write is never
        repeated.
        """
        with self._lock:
            session, reused = self._take()
            try:
                result = self._unit(work, session)
            except Exception:
                dropped = reused and self.sessions.is_broken(session, 0.0)
                self._discard(session)
                if not (retry and dropped):
                    raise
                session = self._open()
                try:
                    result = self._unit(work, session)
                except Exception:
                    self._discard(session)
                    raise
            self._release(session)
            return result

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._discard(self._session)

    def _unit(self, work: Callable[[ConnectionT], ResultT], session: ConnectionT) -> ResultT:
        result = work(session)
        self.sessions.end(session)
        return result

    def _take(self) -> tuple[ConnectionT, bool]:
        """(a session for the next unit of work, whether it is a kept one)."""
        kept, self._session = self._session, None
        if kept is not None:
            if not self.sessions.is_broken(kept, time.monotonic() - self._released_at):
                return kept, True
            self.engine.close(kept)  # gone before any work was sent: replace it silently
        return self._open(), False

    def _release(self, session: ConnectionT) -> None:
        if self.reuse:
            self._session, self._released_at = session, time.monotonic()
        else:
            self.engine.close(session)

    def _discard(self, session: ConnectionT) -> None:
        self._session = None
        self.engine.close(session)

    def _open(self) -> ConnectionT:
        refused: list[str] = []
        last: DatabaseLoginError | None = None
        for label, secret in self._candidates():
            try:
                session = self.engine.open(Login.for_secret(self.engine, secret, label, self.settings))
            except DatabaseLoginError as error:
                refused.append(label)
                last = error
                continue
            self._working, self._working_since = secret, self._current
            return session
        raise DatabaseLoginError(
            f"the database refused the credentials of {self.secret_id} ({', '.join(refused)}), "
            "also after reading the secret again"
        ) from last

    def _candidates(self) -> Iterator[tuple[str, DatabaseSecret]]:
        """Each distinct credential once: the last that worked (while the cached
        AWSCURRENT is the one it was found with), the cached AWSCURRENT, the last that
        worked, then (read again) AWSCURRENT and AWSPENDING; each read only when needed."""
        # Between setSecret and finishSecret of a single-user rotation the database has
        # the AWSPENDING password while AWSCURRENT still holds the old one.
        tried: set[tuple[str, str]] = set()

        def new(secret: DatabaseSecret) -> bool:
            key = (secret.username, secret.password)
            if key in tried:
                return False
            tried.add(key)
            return True

        cached = self._current = self._secret("AWSCURRENT", refresh=False)
        unchanged = self._working_since is not None and _same(self._working_since, cached)
        if self._working is not None and unchanged and new(self._working):
            yield "the last working credentials", self._working
        if new(cached):
            yield "AWSCURRENT (cached)", cached
        if self._working is not None and new(self._working):
            yield "the last working credentials", self._working
        self.refreshes += 1
        fresh = self._secret("AWSCURRENT", refresh=True)
        if new(fresh):
            yield "AWSCURRENT", fresh
        try:
            pending = self._secret("AWSPENDING", refresh=True)
        except StagingError:
            # finishSecret may have moved AWSCURRENT and cleared AWSPENDING between the
            # two reads: read AWSCURRENT once more.
            again = self._secret("AWSCURRENT", refresh=True)
            if new(again):
                yield "AWSCURRENT", again
            return
        if new(pending):
            yield "AWSPENDING", pending

    def _secret(self, stage: str, *, refresh: bool) -> DatabaseSecret:
        value = self.cache.get(self.secret_id, stage, refresh=refresh)
        if value is None:
            raise StagingError(f"no version of {self.secret_id} is labelled {stage}")
        return self.managed.secret(self.secret_id, value, f"{stage} of {self.secret_id}")


def _same(one: DatabaseSecret, other: DatabaseSecret) -> bool:
    return (one.host, one.port, one.username, one.password) == (
        other.host,
        other.port,
        other.username,
        other.password,
    )
