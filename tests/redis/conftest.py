"""Redis users and their secrets, on the session's throwaway Redis (``redis_server``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from rotators.redis.engine import RedisEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, store_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.redis_server import RedisServer
    from devtools.service import RotationService


@dataclass
class RedisAccount:
    """A test's Redis user and its secret (rotation enabled)."""

    user: str
    password: str
    arn: str
    master_arn: str | None


def redis_secret(server: RedisServer, user: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "engine": "redis",
        "host": server.host,
        "port": server.port,
        "username": user,
        "password": password,
        **extra,
    }


def make_account(
    server: RedisServer,
    client: SecretsManagerClient,
    service: RotationService,
    *,
    with_master: bool,
    user: str | None = None,
    rules: tuple[str, ...] = (),
) -> RedisAccount:
    """A user (its own keys and, by default, the right to set its own passwords) and its
    secret; with a master user and the master's secret when ``with_master``."""
    user, password = user or unique("app"), new_password()
    server.create_user(user, password, None, *rules)
    master_arn = None
    extra: dict[str, Any] = {}
    if with_master:
        master, master_password = unique("admin"), new_password()
        server.create_master(master, master_password)
        master_arn = store_secret(
            client, service, unique("master"), redis_secret(server, master, master_password), rotation=False
        )
        extra["masterarn"] = master_arn
    arn = store_secret(client, service, unique("secret"), redis_secret(server, user, password, **extra))
    return RedisAccount(user, password, arn, master_arn)


@pytest.fixture(params=["self", "master"])
def account(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> RedisAccount:
    """Once rotated by the user itself, once by a master user."""
    return make_account(redis_server, sm_client, service, with_master=request.param == "master")


@pytest.fixture
def handler(redis_server: RedisServer, sm_client: SecretsManagerClient) -> RotationFunction[Any]:
    return handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=redis_server.ca_file)
