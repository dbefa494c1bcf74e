"""Attack round 7: Redis secrets whose ``masterarn`` is odd (another engine's secret, an
RDS-managed-shaped secret, an engine string in another case, a master named like the
user without ``_clone``), against the suite's real Redis 7.0."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.errors import RotationError, SecretFormatError
from devtools.service import LambdaContext
from tests.conftest import new_password, unique
from tests.helpers import labels, store_secret, value
from tests.redis.conftest import handler, redis_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.redis_server import RedisServer
    from devtools.service import RotationService

__all__ = ["handler"]


def _user_with_master(
    server: RedisServer,
    sm: SecretsManagerClient,
    service: RotationService,
    master_body: dict[str, Any],
    user: str | None = None,
) -> tuple[str, str, str]:
    user, password = user or unique("app"), new_password()
    server.create_user(user, password, None, f"~{user}:*", "+@read", "+ping")
    master_arn = store_secret(sm, service, unique("master"), master_body, rotation=False)
    arn = store_secret(
        sm, service, unique("secret"), redis_secret(server, user, password, masterarn=master_arn)
    )
    return user, password, arn


@pytest.mark.parametrize("engine", ["postgres", "mysql", "redshift"])
def test_a_master_secret_of_another_engine_is_refused_before_anything_is_stored(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    engine: str,
) -> None:
    """Held: a master secret for another engine on the same host and port (its user
    even a Redis administrator) is refused at createSecret, named, nothing stored."""
    master, master_password = unique("admin"), new_password()
    redis_server.create_master(master, master_password)
    body = {**redis_secret(redis_server, master, master_password), "engine": engine}
    user, password, arn = _user_with_master(redis_server, sm_client, service, body)
    request = service.start(arn)
    with pytest.raises(SecretFormatError, match=f"engine '{engine}'") as failure:
        handler(request.event("createSecret"), LambdaContext())
    assert master_password not in str(failure.value) and password not in str(failure.value)
    assert redis_server.can_login(user, password)
    assert set(labels(sm_client, arn)) == {"AWSCURRENT", "AWSPENDING"}
    with pytest.raises(Exception):  # noqa: B017 - nothing stored under the token
        value(sm_client, arn, "AWSPENDING")


def test_an_rds_managed_shaped_master_without_tags_is_named(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """Held: a master secret of only ``username`` and ``password`` (the RDS-managed
    shape) that no RDS tag names is refused at createSecret with an error naming it."""
    master, master_password = unique("admin"), new_password()
    redis_server.create_master(master, master_password)
    user, password, arn = _user_with_master(
        redis_server, sm_client, service, {"username": master, "password": master_password}
    )
    request = service.start(arn)
    with pytest.raises(RotationError) as failure:
        handler(request.event("createSecret"), LambdaContext())
    text = str(failure.value)
    assert "master" in text, text
    assert master_password not in text and password not in text
    assert redis_server.can_login(user, password)


def test_a_master_engine_in_upper_case_with_blanks_is_the_same_engine(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """Held: ``" REDIS "`` names the redis engine; the user gets two passwords."""
    master, master_password = unique("admin"), new_password()
    redis_server.create_master(master, master_password)
    body = {**redis_secret(redis_server, master, master_password), "engine": " REDIS "}
    user, password, arn = _user_with_master(redis_server, sm_client, service, body)
    service.rotate(handler, arn)
    new = value(sm_client, arn, "AWSCURRENT")["password"]
    assert redis_server.can_login(user, new) and redis_server.can_login(user, password)


def test_a_redis_user_named_like_the_masters_clone_rotates(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """Severity: low (a clear refusal, but wrong: the dual-password strategy has no
    alternate user, the master's password is never at risk).

    Expected: the user ``<master>_clone`` rotates with two passwords.
    Actual: SecretMismatchError "... is the master secret's own user (or its alternate):
    alternating users need a master user apart from the pair"."""
    master, master_password = unique("cache"), new_password()
    redis_server.create_master(master, master_password)
    body = redis_secret(redis_server, master, master_password)
    user, password, arn = _user_with_master(redis_server, sm_client, service, body, user=master + "_clone")
    service.rotate(handler, arn)
    new = value(sm_client, arn, "AWSCURRENT")["password"]
    assert redis_server.can_login(user, new) and redis_server.can_login(user, password)
    assert redis_server.can_login(master, master_password)
