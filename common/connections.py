"""Rotation-aware database sessions for application functions.

``RotationAwareConnection`` opens a session from a secret through an engine of this
suite and keeps it across warm invocations. When the server refuses the cached
credentials it refreshes the secret and retries, once per candidate: ``AWSCURRENT``
read again, then ``AWSPENDING`` (during a single-user rotation the database already
has the pending password while ``AWSCURRENT`` still holds the old one); then it raises
DatabaseLoginError. A reused session that the server dropped is replaced, and the work
retried once, never in a loop.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Generic, TypeVar

from common.engine import ConnectionT, Engine, Login
from common.errors import DatabaseLoginError, StagingError
from common.secret import DatabaseSecret
from common.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from common.retrieval import SecretCache

ResultT = TypeVar("ResultT")


class RotationAwareConnection(Generic[ConnectionT]):
    """One database session for one secret, reused across invocations (``reuse=False``
    opens a new one for each unit of work). Not shared between threads: use one per
    worker."""

    def __init__(
        self,
        engine: Engine[ConnectionT],
        secret_id: str,
        cache: SecretCache,
        *,
        settings: Settings | None = None,
        reuse: bool = True,
    ) -> None:
        self.engine = engine
        self.secret_id = secret_id
        self.cache = cache
        self.settings = settings or Settings.from_environ()
        self.reuse = reuse
        self.refreshes = 0
        self._session: ConnectionT | None = None
        # The credentials that last opened a session: tried first, so that during a
        # single-user rotation new sessions do not each meet a refused password.
        self._working: DatabaseSecret | None = None
        self._lock = threading.Lock()

    def prime(self) -> None:
        """Read the secret now (at initialisation), so the first request does not."""
        self.cache.get(self.secret_id)

    def run(self, work: Callable[[ConnectionT], ResultT]) -> ResultT:
        """Run ``work`` with a session; a dropped reused session is replaced once."""
        with self._lock:
            reused = self._session is not None
            session = self._session if self._session is not None else self._open()
            try:
                result = work(session)
            except Exception:
                if not (reused and self.engine.is_broken(session)):
                    self._finish(session, keep=False)
                    raise
                self._finish(session, keep=False)
                session = self._open()
                try:
                    result = work(session)
                except Exception:
                    self._finish(session, keep=False)
                    raise
            self._finish(session, keep=self.reuse)
            return result

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._finish(self._session, keep=False)

    def _finish(self, session: ConnectionT, *, keep: bool) -> None:
        if keep:
            self._session = session
            return
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
            self._working = secret
            return session
        raise DatabaseLoginError(
            f"the database refused the credentials of {self.secret_id} ({', '.join(refused)}), "
            "also after reading the secret again"
        ) from last

    def _candidates(self) -> Iterator[tuple[str, DatabaseSecret]]:
        """Each distinct credential once: the last that worked, the cached AWSCURRENT,
        then (read again) AWSCURRENT and AWSPENDING; each read only when needed."""
        # Between setSecret and finishSecret of a single-user rotation the database has
        # the AWSPENDING password while AWSCURRENT still holds the old one.
        tried: set[tuple[str, str]] = set()

        def new(secret: DatabaseSecret) -> bool:
            key = (secret.username, secret.password)
            if key in tried:
                return False
            tried.add(key)
            return True

        if self._working is not None and new(self._working):
            yield "the last working credentials", self._working
        cached = self._secret("AWSCURRENT", refresh=False)
        if new(cached):
            yield "AWSCURRENT (cached)", cached
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
        return DatabaseSecret.from_dict(value, f"{stage} of {self.secret_id}")
