"""Waiting, bounded, for a read replica to receive a password changed on its writer.

Two ways, the better first: on the replica session, wait until it has applied the
writer's change stream up to the position read after the change (engines that can tell:
no refused login at all); otherwise retry the login on the replica with back-off. Both
stop after ``Settings.replica_wait`` seconds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Generic

from common.engine import ConnectionT, Engine
from common.errors import DatabaseLoginError
from common.observability import logger, metrics

if TYPE_CHECKING:
    from collections.abc import Callable

FIRST_DELAY = 0.02
LONGEST_DELAY = 1.0


class ReplicaWait(Generic[ConnectionT]):
    """The waits of one container; ``waits`` records each one's kind (``position`` or
    ``login``) and seconds, for tests and benchmarks."""

    def __init__(
        self,
        engine: Engine[ConnectionT],
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self.waits: list[tuple[str, float]] = []

    def for_position(self, replica: ConnectionT, position: str | None) -> None:
        """Wait until the replica of session ``replica`` has applied ``position``; returns
        at once when the engine cannot tell. A replica still behind when the time is up is
        logged, not raised: the change is made, and testSecret's login says the rest."""
        if position is None:
            return
        started = self._clock()
        caught_up = self._poll(lambda: self.engine.has_replayed(replica, position) is not False)
        self._record(started, "position")
        if not caught_up:
            logger.warning(
                "the replica has not applied the password change yet", extra={"waited_s": self.seconds}
            )

    def for_login(self, attempt: Callable[[], None]) -> None:
        """Run ``attempt`` (a login on the replica) until it is not refused or the time is
        up; then the last refusal is raised."""
        started = self._clock()
        refused: list[DatabaseLoginError] = []

        def logged_in() -> bool:
            try:
                attempt()
            except DatabaseLoginError as error:
                refused.append(error)
                return False
            return True

        done = self._poll(logged_in)
        self._record(started, "login")
        if not done:
            raise DatabaseLoginError(
                f"{refused[-1]} after waiting {self.seconds:g} s for the replica (REPLICA_WAIT_SECONDS)"
            ) from refused[-1]

    def _poll(self, ready: Callable[[], bool]) -> bool:
        deadline = self._clock() + self.seconds
        delay = FIRST_DELAY
        while not ready():
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, LONGEST_DELAY)
        return True

    def _record(self, started: float, how: str) -> None:
        waited = self._clock() - started
        self.waits.append((how, waited))
        metrics.add_metric(name="ReplicaWait", unit="Milliseconds", value=waited * 1000)
        logger.info("waited for the replica", extra={"waited_ms": round(waited * 1000), "by": how})
