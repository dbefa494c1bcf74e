"""The step's deadline: the replica waits and logins stop before Lambda's time-out would
kill the step, and time limits that cannot fit in the time-out are refused at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.deadline import Deadline
from common.errors import ConfigurationError, DatabaseLoginError, SecretsManagerError, StepTimeLimitError
from common.replicas import ReplicaWait
from common.settings import Settings
from tests.fake_engine import FakeDatabase, FakeEngine, FakeSession
from tests.unit.test_rds import BehindReplica, Clock

if TYPE_CHECKING:
    from collections.abc import Mapping


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
        # An exact fit: a login needs all of it left once the step has begun, so never starts.
        ({"DB_CONNECT_TIMEOUT": "17", "DB_STATEMENT_TIMEOUT": "10"}, "DB_CONNECT_TIMEOUT"),
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


def test_every_login_of_a_step_starts_only_with_the_connect_time_out_left(sm_client: Any) -> None:
    """``Engine.connect`` is every session's way in: testSecret's and finishSecret's proof,
    the master's sessions (alternating and dual passwords), the labelled logins and an
    engine's own logins."""
    from common.rotation import Strategy
    from common.secret import DatabaseSecret
    from tests.fake_engine import secret
    from tests.helpers import handler_for

    database = FakeDatabase(passwords={"app": "initial-Pass-1", "master": "master-Pass-1"})
    rotator = handler_for(FakeEngine(database), sm_client).rotator
    pending = DatabaseSecret.from_dict(secret(), "AWSPENDING")
    master = DatabaseSecret.from_dict(secret("master", "master-Pass-1"), "master")
    clock = Clock()
    rotator._begin(Deadline.of(FakeContext(clock, 7.9)))  # 4.9 s after the margin: < 5 s
    with pytest.raises(StepTimeLimitError, match="stopped before logging in with the AWSPENDING"):
        rotator._prove(pending, Strategy.SINGLE_USER)
    with pytest.raises(StepTimeLimitError, match="stopped before logging in with the master"):
        with rotator._connect(rotator._master_login(pending, master)):
            pass
    with pytest.raises(StepTimeLimitError, match="stopped before logging in with the AWSCURRENT"):
        rotator._log_in_with_first([("AWSCURRENT", pending)], pending, rotator._verify)
    with pytest.raises(StepTimeLimitError, match="stopped before logging in with the AWSPENDING"):
        with rotator.engine.connect(rotator._login(pending, "AWSPENDING")):
            pass  # an engine's own login (MySQL's proof of host parts) is bounded too
    assert database.logins == []  # nothing was even tried
    rotator._begin(Deadline.of(FakeContext(clock, 8.1)))
    rotator._prove(pending, Strategy.SINGLE_USER)
    assert database.logins == ["AWSPENDING"]


def test_an_rds_call_starts_only_with_one_attempts_time_left() -> None:
    from common.clients import CALL_SECONDS
    from common.rds import RdsDirectory

    def no_client() -> Any:
        raise AssertionError("no RDS client may be built")

    clock = Clock()
    directory = RdsDirectory(factory=no_client)
    directory.begin("token", Deadline.of(FakeContext(clock, CALL_SECONDS + 2.9)).require)
    with pytest.raises(
        StepTimeLimitError, match=r"stopped before calling rds:DescribeDBInstances: it may take 15 s"
    ):
        directory.topology("instance", "db")
    with pytest.raises(StepTimeLimitError, match="stopped before calling rds:DescribeDBClusters"):
        directory.topology("cluster", "db")
    assert directory.calls.total() == 0


def test_the_start_up_check_reads_the_time_out_before_building_the_rotator(
    sm_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REPLICA_WAIT_SECONDS=17 fits a 20 s function exactly; building the rotator (here 1.5 s
    of it) must not make it look like a 19 s one."""
    from common.settings import log_level
    from devtools.service import LambdaContext
    from tests.helpers import handler_for

    clock = Clock()

    class Context(LambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return int((20 - clock.now) * 1000)

    def slow_start(environ: Mapping[str, str]) -> None:  # the rotator's first build step
        clock.sleep(1.5)
        log_level(environ)

    context = Context(timeout_s=20)
    monkeypatch.setattr("common.handler.log_level", slow_start)
    handler = handler_for(
        FakeEngine(FakeDatabase()), sm_client, REPLICA_WAIT_SECONDS="17", DB_STATEMENT_TIMEOUT="10"
    )
    event = {"Step": "createSecret", "SecretId": "absent", "ClientRequestToken": "t"}
    with pytest.raises(SecretsManagerError):  # the step ran: the secret is not there
        handler(event, context)
    assert clock.sleeps == [1.5]
