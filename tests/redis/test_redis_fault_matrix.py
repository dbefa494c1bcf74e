"""The fault matrix of tests/scenarios on Redis, with the stricter invariant two passwords
allow: after every sequence AWSCURRENT itself logs in (no single-user window at all)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pytest

from devtools.redis_server import RedisServer
from devtools.service import STEPS
from tests.engines import RedisHarness
from tests.helpers import store_secret, value
from tests.scenarios.test_fault_matrix import (
    Matrix,
    test_every_order_and_repeated_steps,
    test_operator_removes_a_stuck_pending_label,
    test_password_restored_behind_the_rotations_back,
    test_same_step_twice_at_once,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.service import RotationRequest, RotationService

__all__ = [
    "test_every_order_and_repeated_steps",
    "test_operator_removes_a_stuck_pending_label",
    "test_password_restored_behind_the_rotations_back",
    "test_same_step_twice_at_once",
]


class DualPasswordMatrix(Matrix):
    def check_logins(self, name: str) -> None:
        if not self.logs_in(value(self.client, self.arn, "AWSCURRENT")):
            self.problems.append(f"{name}: AWSCURRENT is refused although the user holds two passwords")


@pytest.fixture(params=["single", "master"])
def matrix(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> Iterator[Matrix]:
    harness = RedisHarness(redis_server)
    user, password, dbname = harness.new_user()
    extra = {}
    if request.param == "master":
        admin, admin_password = f"{user}_admin", password + "M"
        harness.create_master(admin, admin_password)
        master = harness.secret(admin, admin_password, harness.server.admin_database)
        extra["masterarn"] = store_secret(sm_client, service, f"{user}-master", master, rotation=False)
    arn = store_secret(sm_client, service, user, harness.secret(user, password, dbname, **extra))
    family = request.node.originalname.removeprefix("test_")
    matrix = DualPasswordMatrix(harness, sm_client, service, arn, f"{family} ({request.param}, dual)")
    yield matrix
    matrix.verdict()


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer("aclfile").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("strategy", ["single", "master"])
def test_server_down_before_each_step(
    strategy: str, own_redis: RedisServer, sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """Stopped or killed before each step and started again: only what the engine
    persisted survives, and that is enough for AWSCURRENT and the retried rotation."""
    harness = RedisHarness(own_redis)
    user, password, dbname = harness.new_user()
    extra = {}
    if strategy == "master":
        admin, admin_password = f"{user}_admin", password + "M"
        harness.create_master(admin, admin_password)
        master = harness.secret(admin, admin_password, own_redis.admin_database)
        extra["masterarn"] = store_secret(sm_client, service, f"{user}-master", master, rotation=False)
    arn = store_secret(sm_client, service, user, harness.secret(user, password, dbname, **extra))
    matrix = DualPasswordMatrix(harness, sm_client, service, arn, f"server down ({strategy}, dual)")
    for position, step in enumerate(STEPS):
        how: Literal["stop", "kill"]
        for how in ("stop", "kill"):

            def run(
                rotation: RotationRequest,
                position: int = position,
                step: str = step,
                how: Literal["stop", "kill"] = how,
            ) -> None:
                handler = matrix.handler()
                for earlier in STEPS[:position]:
                    matrix.step(handler, rotation, earlier)
                own_redis.halt(how)
                try:
                    if matrix.step(handler, rotation, step):
                        matrix.problems.append(f"{step} succeeded with the server down")
                finally:
                    own_redis.resume()

            matrix.sequence(f"server {how} before {step}", run)
    matrix.verdict()
