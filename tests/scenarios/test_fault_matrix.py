"""The fault matrix: every order of the four steps, repeated and concurrent steps, an
operator's repair, passwords restored behind the rotation's back, and (on PostgreSQL,
MariaDB and Redis) the server stopped or killed before each step, against every engine's
server (Redis included).

After every sequence the invariant is checked with the engine's real client:

* a step that failed moved no label;
* ``AWSCURRENT`` logs in, or, in a single user's window between setSecret and
  finishSecret, ``AWSPENDING`` does; on a server whose users hold two passwords
  (``Harness.current_always_logs_in``: Redis) there is no such window, and ``AWSCURRENT``
  itself must log in;
* Secrets Manager's retry of the whole rotation (the four steps, same token, a new
  container) then succeeds, and its ``AWSCURRENT`` logs in.

The counts (sequences tried, invariant held) are printed at the end of the test run.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import RotationError
from devtools.faults import DurableMariaDB, DurablePostgres, Halt
from devtools.redis_server import RedisServer
from devtools.service import STEPS, LambdaContext
from tests.engines import ENGINES, Harness, MariaDBHarness, PostgresHarness, RedisHarness, harness_named
from tests.helpers import handler_for, labels, store_secret, value

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationRequest, RotationService
    from tests.scenarios.conftest import Account

#: Every order of the four steps, each step at most once, skipped steps included (65).
ORDERS: list[tuple[str, ...]] = [order for k in range(5) for order in itertools.permutations(STEPS, k)]
#: The normal order with one step run twice in a row (4).
REPEATS: list[tuple[str, ...]] = [(*STEPS[: i + 1], STEPS[i], *STEPS[i + 1 :]) for i in range(4)]

#: (engine, fault family) -> [sequences tried, invariant held]; printed by tests/conftest.py.
TALLY: dict[tuple[str, str], Counter[str]] = {}


@dataclass
class Matrix:
    """One secret under test and the checks run after each sequence."""

    harness: Harness
    client: SecretsManagerClient
    service: RotationService
    arn: str
    family: str
    problems: list[str] = field(default_factory=list)

    def handler(self) -> RotationFunction[Any]:
        """A new container."""
        return handler_for(self.harness.engine, self.client, DB_CA_BUNDLE=self.harness.server.ca_file)

    def logs_in(self, secret: dict[str, Any]) -> bool:
        return self.harness.can_login(secret["username"], secret["password"], secret["dbname"])

    def step(
        self, handler: RotationFunction[Any], request: RotationRequest, step: str, *, alone: bool = True
    ) -> bool:
        """Run one step; a failure must move no label (checked when the step runs ``alone``:
        beside a concurrent invocation, the other may have moved them). True when the step
        succeeded."""
        before = labels(self.client, self.arn) if alone else {}
        try:
            handler(request.event(step), LambdaContext())
        except RotationError:
            after = labels(self.client, self.arn) if alone else {}
            if after != before:
                self.problems.append(f"{step} failed after moving labels: {before} -> {after}")
            return False
        return True

    def sequence(self, name: str, run: Callable[[RotationRequest], None]) -> None:
        """Start a rotation, let ``run`` drive it, then check the invariant and complete it."""
        tally = TALLY.setdefault((self.harness.name, self.family), Counter())
        tally["tried"] += 1
        problems_before = len(self.problems)
        request = self.service.start(self.arn)
        try:
            run(request)
        except RotationError as error:  # a fault the sequence did not expect to surface
            self.problems.append(f"{name}: {type(error).__name__}")
        self.check_logins(name)
        self.complete(name, request)
        if len(self.problems) == problems_before:
            tally["held"] += 1

    def check_logins(self, name: str) -> None:
        now = labels(self.client, self.arn)
        current = value(self.client, self.arn, "AWSCURRENT")
        if self.logs_in(current):
            return
        if self.harness.current_always_logs_in:
            self.problems.append(f"{name}: AWSCURRENT is refused although the user holds two passwords")
            return
        pending = now.get("AWSPENDING")
        if pending is not None and pending != now["AWSCURRENT"] and "masterarn" not in current:
            try:
                text = self.client.get_secret_value(SecretId=self.arn, VersionId=pending)["SecretString"]
            except self.client.exceptions.ResourceNotFoundException:
                text = None
            if text is not None and self.logs_in(_json(text)):
                return  # the single user's window: AWSPENDING is in effect until finishSecret
        self.problems.append(f"{name}: no labelled version logs in ({sorted(now)})")

    def complete(self, name: str, request: RotationRequest) -> None:
        """Secrets Manager's retry of the whole rotation, in a new container."""
        retry = self.handler()
        for step in STEPS:
            try:
                retry(request.event(step), LambdaContext())
            except RotationError as error:
                self.problems.append(f"{name}: the retried {step} failed ({type(error).__name__}: {error})")
                return
        now = labels(self.client, self.arn)
        if now.get("AWSCURRENT") != request.token or "AWSPENDING" in now:
            self.problems.append(f"{name}: the retried rotation left labels {sorted(now)}")
        if not self.logs_in(value(self.client, self.arn, "AWSCURRENT")):
            self.problems.append(f"{name}: AWSCURRENT does not log in after the retried rotation")

    def verdict(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def _json(text: str) -> dict[str, Any]:
    import json

    result: dict[str, Any] = json.loads(text)
    return result


@pytest.fixture(params=ENGINES)
def harness(request: pytest.FixtureRequest) -> Harness:
    """Every engine's, Redis's included (the other shared scenarios leave it out)."""
    return harness_named(request.param, request)


@pytest.fixture
def matrix(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
    strategy_arn: str,
    request: pytest.FixtureRequest,
) -> Iterator[Matrix]:
    family = request.node.originalname.removeprefix("test_")
    strategy = "single"
    if "masterarn" in value(sm_client, strategy_arn, "AWSCURRENT"):
        strategy = "dual" if harness.engine.master_adds_password else "alternating"
    matrix = Matrix(harness, sm_client, service, strategy_arn, f"{family} ({strategy})")
    yield matrix
    matrix.verdict()


def test_every_order_and_repeated_steps(matrix: Matrix) -> None:
    for index, order in enumerate([*ORDERS, *REPEATS]):
        # Half the sequences run in one warm container, half with a new container per step.
        warm = matrix.handler()

        def run(
            request: RotationRequest,
            order: Sequence[str] = order,
            warm: RotationFunction[Any] | None = warm if index % 2 else None,
        ) -> None:
            for step in order:
                matrix.step(warm or matrix.handler(), request, step)

        matrix.sequence(" -> ".join(order) or "(no step)", run)


def test_same_step_twice_at_once(matrix: Matrix) -> None:
    for position, step in enumerate(STEPS):

        def run(request: RotationRequest, position: int = position, step: str = step) -> None:
            handler = matrix.handler()
            for earlier in STEPS[:position]:
                matrix.step(handler, request, earlier)
            barrier = threading.Barrier(2)

            def invoke() -> bool:
                container = matrix.handler()
                barrier.wait(timeout=30)
                return matrix.step(container, request, step, alone=False)

            # Any exception but a step's own failure (a crash, a hang) fails the test here.
            with ThreadPoolExecutor(max_workers=2) as pool:
                invocations = [pool.submit(invoke) for _ in range(2)]
                outcomes = [invocation.result(timeout=120) for invocation in invocations]
            assert len(outcomes) == 2

        matrix.sequence(f"{step} twice at once", run)


def test_password_restored_behind_the_rotations_back(matrix: Matrix) -> None:
    for done in range(1, 4):

        def run(request: RotationRequest, done: int = done) -> None:
            handler = matrix.handler()
            before = value(matrix.client, matrix.arn, "AWSCURRENT")
            for step in STEPS[:done]:
                matrix.step(handler, request, step)
            pending = _json(
                matrix.client.get_secret_value(SecretId=matrix.arn, VersionId=request.token)["SecretString"]
            )
            # An administrator puts back the password the pending user had before (for
            # alternating users, once setSecret has made the other user exist).
            old = before["password"]
            if pending["username"] != before["username"]:
                if done == 1:
                    return
                previous = labels(matrix.client, matrix.arn).get("AWSPREVIOUS")
                old = (
                    value(matrix.client, matrix.arn, "AWSPREVIOUS")["password"] if previous else "Restored-1a"
                )
            matrix.harness.set_password(pending["username"], old, pending["dbname"])
            for step in STEPS[done:]:
                matrix.step(handler, request, step)

        matrix.sequence(f"password restored after {STEPS[done - 1]}", run)


def test_operator_removes_a_stuck_pending_label(matrix: Matrix) -> None:
    """AWS's advice for a rotation that cannot complete: remove AWSPENDING from its version.
    The database may hold that version's password; the next rotation must still work."""
    for done in range(1, 4):

        def run(request: RotationRequest, done: int = done) -> None:
            handler = matrix.handler()
            for step in STEPS[:done]:
                matrix.step(handler, request, step)
            matrix.client.update_secret_version_stage(
                SecretId=matrix.arn, VersionStage="AWSPENDING", RemoveFromVersionId=request.token
            )
            # The operator's next rotation, in a new container, runs start to finish.
            fresh = matrix.service.start(matrix.arn)
            container = matrix.handler()
            for step in STEPS:
                if not matrix.step(container, fresh, step):
                    matrix.problems.append(f"the rotation after the repair failed at {step}")
                    return

        # The abandoned token carries no label any more: the check runs on the new rotation.
        tally = TALLY.setdefault((matrix.harness.name, matrix.family), Counter())
        tally["tried"] += 1
        problems = len(matrix.problems)
        run(matrix.service.start(matrix.arn))
        matrix.check_logins(f"repair after {STEPS[done - 1]}")
        if len(matrix.problems) == problems:
            tally["held"] += 1


# -- the server stopped or killed before each step (durable servers) --------------------


@pytest.fixture(scope="module")
def durable_postgres() -> Iterator[DurablePostgres]:
    server = DurablePostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def durable_mariadb() -> Iterator[DurableMariaDB]:
    server = DurableMariaDB().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def durable_redis() -> Iterator[RedisServer]:
    """Its own Redis (ACL file, saved at every change): the test stops and kills it."""
    server = RedisServer("aclfile").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("engine", ["postgresql", "mariadb", "redis"])
@pytest.mark.parametrize("strategy", ["single", "alternating"])
def test_server_down_before_each_step(
    engine: str,
    strategy: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    request: pytest.FixtureRequest,
) -> None:
    harness: PostgresHarness | MariaDBHarness | RedisHarness
    server: DurablePostgres | DurableMariaDB | RedisServer = request.getfixturevalue(
        {"postgresql": "durable_postgres", "mariadb": "durable_mariadb", "redis": "durable_redis"}[engine]
    )
    if engine == "postgresql":
        harness = PostgresHarness(server)  # type: ignore[arg-type]
    elif engine == "mariadb":
        harness = MariaDBHarness(server)  # type: ignore[arg-type]
    else:
        harness = RedisHarness(server)  # type: ignore[arg-type]
    user, password, dbname = harness.new_user()
    extra: dict[str, Any] = {}
    if strategy == "alternating":
        admin, admin_password = f"{user}_admin", password + "M"
        harness.create_master(admin, admin_password)
        master_body = harness.secret(admin, admin_password, harness.server.admin_database)
        extra["masterarn"] = store_secret(sm_client, service, f"{user}-master", master_body, rotation=False)
    arn = store_secret(sm_client, service, user, harness.secret(user, password, dbname, **extra))
    if strategy == "alternating" and harness.engine.master_adds_password:
        strategy = "dual"
    matrix = Matrix(harness, sm_client, service, arn, f"server down ({strategy})")
    for position, step in enumerate(STEPS):
        how: Halt
        for how in ("stop", "kill"):

            def run(
                rotation: RotationRequest, position: int = position, step: str = step, how: Halt = how
            ) -> None:
                handler = matrix.handler()
                for earlier in STEPS[:position]:
                    matrix.step(handler, rotation, earlier)
                server.halt(how)
                try:
                    if matrix.step(handler, rotation, step):
                        matrix.problems.append(f"{rotation.token}: a step succeeded with the server down")
                finally:
                    server.resume()

            matrix.sequence(f"server {how} before {step}", run)
    matrix.verdict()


@pytest.mark.parametrize("how", ["stop", "kill"])
@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_durable_servers_keep_a_password_change_through_a_kill(
    engine: str, how: Halt, request: pytest.FixtureRequest
) -> None:
    """The harness itself: a committed password change survives the halt, so the tests
    above measure the rotator, not a server that forgot what it was told."""
    server: DurablePostgres | DurableMariaDB = request.getfixturevalue(
        "durable_postgres" if engine == "postgresql" else "durable_mariadb"
    )
    harness = PostgresHarness(server) if engine == "postgresql" else MariaDBHarness(server)  # type: ignore[arg-type]
    user, password, dbname = harness.new_user()
    harness.set_password(user, password + "-changed", dbname)
    server.halt(how)
    server.resume()
    assert harness.can_login(user, password + "-changed", dbname)
    assert not harness.can_login(user, password, dbname)
