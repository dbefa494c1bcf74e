"""The step's deadline: the replica waits and logins stop before Lambda's time-out would
kill the step, and time limits that cannot fit in the time-out are refused at start-up."""

from __future__ import annotations

from typing import Any

import pytest

from common.deadline import Deadline
from common.errors import ConfigurationError, DatabaseLoginError, StepTimeLimitError
from common.replicas import ReplicaWait
from common.settings import Settings
from tests.fake_engine import FakeDatabase, FakeEngine, FakeSession
from tests.unit.test_rds import BehindReplica, Clock


class FakeContext:
    """A Lambda context whose time runs out ``seconds`` after ``clock``'s now."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock, self.end = clock, clock.now + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.end - self.clock.now) * 1000))


def refused() -> None:
    raise DatabaseLoginError("db:5432 refused the AWSPENDING credentials for user 'u'")


def test_the_login_wait_stops_before_the_time_out_with_a_named_error() -> None:
    clock = Clock()
    wait = ReplicaWait(FakeEngine(FakeDatabase()), 30, login_seconds=5, clock=clock, sleep=clock.sleep)
    wait.deadline = Deadline.of(FakeContext(clock, 12))  # 12 s - 3 s margin - 5 s for a login
    with pytest.raises(StepTimeLimitError, match=r"after 4\.0 s.*REPLICA_WAIT_SECONDS \(30 s"):
        wait.for_login(refused)
    assert wait.waits == [("login", 4.0)]
    # The runtime's time-out (12 s) was never reached: a login could still run in time.
    assert clock.now + 5 <= 12 - 3

    attempts: list[int] = []
    wait.deadline = Deadline.of(FakeContext(clock, 7))  # not even one login fits
    with pytest.raises(StepTimeLimitError, match="stopped before logging in on the replica"):
        wait.for_login(lambda: attempts.append(1))
    assert attempts == []


def test_the_position_wait_is_cut_to_the_time_left_without_failing_the_step() -> None:
    clock = Clock()
    wait = ReplicaWait(BehindReplica(FakeDatabase()), 30, clock=clock, sleep=clock.sleep)
    wait.deadline = Deadline.of(FakeContext(clock, 10))
    wait.for_position(FakeSession("u"), "0/3000060")  # logged: the change is made
    assert wait.waits == [("position", 7.0)]


def test_a_context_with_plenty_of_time_leaves_replica_wait_seconds_in_charge() -> None:
    clock = Clock()
    wait = ReplicaWait(FakeEngine(FakeDatabase()), 5, login_seconds=5, clock=clock, sleep=clock.sleep)
    wait.deadline = Deadline.of(FakeContext(clock, 60))
    with pytest.raises(DatabaseLoginError, match="after waiting 5 s for the replica") as raised:
        wait.for_login(refused)
    assert not isinstance(raised.value, StepTimeLimitError)


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"REPLICA_WAIT_SECONDS": "30", "DB_STATEMENT_TIMEOUT": "10"}, "REPLICA_WAIT_SECONDS"),
        ({"REPLICA_WAIT_SECONDS": "5", "DB_STATEMENT_TIMEOUT": "30"}, "DB_STATEMENT_TIMEOUT"),
    ],
)
def test_limits_that_cannot_fit_the_time_out_are_refused_at_start_up(
    environ: dict[str, str], name: str
) -> None:
    clock = Clock()
    deadline = Deadline.of(FakeContext(clock, 20))
    with pytest.raises(
        ConfigurationError, match=f"{name} .* does not fit in the function's time-out \\(20 s"
    ):
        deadline.check_settings(Settings.from_environ(environ).time_limits())
    Deadline.of(FakeContext(clock, 60)).check_settings(Settings.from_environ({}).time_limits())  # defaults
    Deadline.of(object()).check_settings(Settings.from_environ(environ).time_limits())  # no time known


def test_the_handler_refuses_before_any_call(sm_client: Any) -> None:
    from devtools.service import LambdaContext
    from tests.helpers import handler_for

    handler = handler_for(
        FakeEngine(FakeDatabase()), sm_client, REPLICA_WAIT_SECONDS="30", DB_STATEMENT_TIMEOUT="10"
    )
    event = {"Step": "createSecret", "SecretId": "s", "ClientRequestToken": "t"}
    with pytest.raises(ConfigurationError, match="REPLICA_WAIT_SECONDS"):
        handler(event, LambdaContext(timeout_s=20))
    assert handler.secrets_manager_calls.total() == 0
