"""Waiting, bounded, for a read replica to receive a password changed on its writer.

Two ways, the better first: on the replica session, wait until it has applied the
writer's change stream up to the position read after the change (engines that can tell:
no refused login at all); otherwise retry the login on the replica with back-off. Both
stop after ``Settings.replica_wait`` seconds, or sooner when the step's
:class:`~common.deadline.Deadline` leaves less.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Generic

from common.deadline import UNBOUNDED, Deadline
from common.engine import ConnectionT, Engine
from common.errors import DatabaseLoginError, StepTimeLimitError
from common.observability import logger, metrics

if TYPE_CHECKING:
    from collections.abc import Callable

FIRST_DELAY = 0.02
LONGEST_DELAY = 1.0


class ReplicaWait(Generic[ConnectionT]):
    """The waits of one container; ``waits`` records each one's kind (``position`` or
    ``login``) and seconds, for tests and benchmarks. ``deadline`` is the running step's
    (the rotation sets it per invocation); ``login_seconds`` is what one login attempt
    may take (the connect time-out), kept free before each."""

    def __init__(
        self,
        engine: Engine[ConnectionT],
        seconds: float,
        *,
        login_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.seconds = seconds
        self.login_seconds = login_seconds
        self.deadline: Deadline = UNBOUNDED
        self._clock = clock
        self._sleep = sleep
        self.waits: list[tuple[str, float]] = []

    def for_position(self, replica: ConnectionT, position: str | None) -> None:
        """Wait until the replica of session ``replica`` has applied ``position``; returns
        at once when the engine cannot tell. A replica still behind when the time is up is
        logged, not raised: the change is made, and testSecret's login (an invocation with
        time of its own) says the rest; so is a wait the step's deadline cut short."""
        if position is None:
            return
        started = self._clock()
        bound, cut = self._bound(0.0)
        caught_up = self._poll(lambda: self.engine.has_replayed(replica, position) is not False, bound)
        self._record(started, "position")
        if not caught_up:
            logger.warning(
                "the replica has not applied the password change yet",
                extra={"waited_s": round(bound, 3), "cut_by_time_out": cut},
            )

    def for_login(self, attempt: Callable[[], None]) -> None:
        """Run ``attempt`` (a login on the replica) until it is not refused or the time is
        up; then the last refusal is raised, or StepTimeLimitError when the step's deadline
        (each attempt keeping ``login_seconds`` free) ended the wait first."""
        started = self._clock()
        bound, cut = self._bound(self.login_seconds)
        if bound <= 0:
            self.deadline.require(self.login_seconds, "logging in on the replica")
        refused: list[DatabaseLoginError] = []

        def logged_in() -> bool:
            try:
                attempt()
            except DatabaseLoginError as error:
                refused.append(error)
                return False
            return True

        done = self._poll(logged_in, bound)
        self._record(started, "login")
        if not done and cut:
            raise StepTimeLimitError(
                f"the replica still refused the pending credentials after {bound:.1f} s: the function's "
                f"time-out leaves no more of REPLICA_WAIT_SECONDS ({self.seconds:g} s) once a "
                f"{self.deadline.margin:g} s margin and one login ({self.login_seconds:g} s) are kept; "
                "Secrets Manager runs testSecret again"
            ) from refused[-1]
        if not done:
            raise DatabaseLoginError(
                f"{refused[-1]} after waiting {self.seconds:g} s for the replica (REPLICA_WAIT_SECONDS)"
            ) from refused[-1]

    def _bound(self, per_attempt: float) -> tuple[float, bool]:
        """How long to wait: ``seconds``, or less when the step's deadline (keeping
        ``per_attempt`` free for the last attempt) comes first; and whether it did."""
        left = self.deadline.left() - per_attempt
        return (max(left, 0.0), True) if left < self.seconds else (float(self.seconds), False)

    def _poll(self, ready: Callable[[], bool], seconds: float) -> bool:
        deadline = self._clock() + seconds
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
