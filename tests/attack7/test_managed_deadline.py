"""Attack round 7: the per-step deadline (common/deadline.py) against the ElastiCache and
MemoryDB user waits (rotators/redis/managed.py). moto extended with the model of users
(devtools/managed_users.py) and the suite's real Redis as their data plane."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from common.errors import RotationError
from tests.helpers import value
from tests.redis.conftest import *  # noqa: F403 - the Redis fixtures
from tests.redis.test_managed import (
    Clock,
    ClockContext,
    Managed,
    aws_users,
    busy_after_create,
    engine,
    managed,
)

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.redis_server import RedisServer
    from devtools.service import RotationService

__all__ = ["aws_users", "engine", "managed"]


def test_a_managed_user_wait_stops_before_the_functions_time_out(
    sm_client: SecretsManagerClient,
    service: RotationService,
    managed: Managed,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Held now (redisfix): every wait stops before the step's deadline with
    StepTimeLimitError (``ManagedUser.wait_until_active``).

    Was (severity low: the template gives the Redis function 600 s; a deployment with a
    lower Timeout, or the 60 s of the other functions, gets the silent kill the deadline
    exists to prevent; no label moves, Secrets Manager retries).

    Expected: a ConfigurationError at the start (as for REPLICA_WAIT_SECONDS) or a
    StepTimeLimitError before the function's time-out less the margin.
    Was: setSecret waited the whole 240 s budget past the 60 s time-out."""
    clock = Clock()
    monkeypatch.setattr("rotators.redis.managed.time", clock)
    handler, request, _ = busy_after_create(sm_client, service, managed, redis_server, 240, 1, 10**6)
    start = clock.now
    with pytest.raises(RotationError):
        handler(request.event("setSecret"), ClockContext(clock, 60))
    assert value(sm_client, managed.arn, "AWSCURRENT")["password"] == managed.password
    assert clock.now - start <= 60 - 3, f"the step waited {clock.now - start:g} s in a 60 s function"
