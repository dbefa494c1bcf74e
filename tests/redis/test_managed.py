"""ElastiCache and MemoryDB users rotated through the service's API, on moto extended with
a model of the users' passwords and status (``devtools/managed_users.py``): AWS's
ElastiCache secret format, two passwords kept, waiting for ``active``, retries."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from common.errors import DatabaseOperationError
from common.observability import logger
from devtools.managed_users import MIRRORS, behave_like_aws_users, user_of
from devtools.redis_server import password_rule
from devtools.service import STEPS, LambdaContext
from rotators.redis.engine import RedisEngine
from tests.conftest import REGION, new_password, unique
from tests.helpers import handler_for, labels, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.redis_server import RedisServer
    from devtools.service import RotationService


def clients(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


@pytest.fixture
def engine(sm_client: SecretsManagerClient) -> RedisEngine:
    behave_like_aws_users()
    return RedisEngine(clients, user_wait_seconds=5, poll_seconds=0.01)


@pytest.fixture
def handler(engine: RedisEngine, sm_client: SecretsManagerClient) -> RotationFunction[Any]:
    return handler_for(engine, sm_client)


def elasticache_user(name: str, password: str) -> tuple[str, str]:
    """(user id, ARN) of a new ElastiCache user."""
    user_id = unique("user").replace("_", "-")
    response = clients("elasticache", REGION).create_user(
        UserId=user_id,
        UserName=name,
        Engine="redis",
        Passwords=[password],
        AccessString="on ~app:* +@read",
        NoPasswordRequired=False,
    )
    return user_id, str(response["ARN"])


def memorydb_user(name: str, password: str) -> str:
    """The ARN of a new MemoryDB user (the model keeps its password)."""
    response = clients("memorydb", REGION).create_user(
        UserName=name,
        AuthenticationMode={"Type": "password", "Passwords": [password]},
        AccessString="on ~app:* +@read",
    )
    user_of("memorydb", name).passwords = [password]
    return str(response["User"]["ARN"])


@pytest.fixture(params=["elasticache", "memorydb"])
def managed(
    request: pytest.FixtureRequest,
    engine: RedisEngine,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> tuple[str, str, str, str]:
    """(service, model key, the secret's ARN, the first password), AWS's secret format."""
    name, password = unique("app"), new_password()
    if request.param == "elasticache":
        key, user_arn = elasticache_user(name, password)
    else:
        key, user_arn = name, memorydb_user(name, password)
    body = {"user_arn": user_arn, "username": name, "password": password}
    return request.param, key, store_secret(sm_client, service, unique("cache"), json.dumps(body)), password


def test_two_passwords_newest_first_and_the_secret_format_kept(
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    managed: tuple[str, str, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = io.StringIO()  # the lines as Lambda would ship them
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    kind, key, arn, first = managed
    original = value(sm_client, arn, "AWSCURRENT")
    service.rotate(handler, arn)
    second = value(sm_client, arn, "AWSCURRENT")["password"]
    user = user_of(kind, key)
    assert user.passwords == [second, first]
    assert user.status == "active"  # setSecret waited until the change was done
    service.rotate(handler, arn)
    third = value(sm_client, arn, "AWSCURRENT")
    assert user.passwords == [third["password"], second]  # the first one is gone
    assert user.modifications == 2
    assert set(third) == set(original) == {"user_arn", "username", "password"}
    printed = lines.getvalue()
    assert "password not proven by a login" in printed
    assert not any(password in printed for password in (first, second, third["password"]))


def test_each_step_twice_changes_the_user_once_per_step(
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    managed: tuple[str, str, str, str],
) -> None:
    kind, key, arn, first = managed
    request = service.start(arn)
    for step in STEPS:
        handler(request.event(step), LambdaContext())
        handler(request.event(step), LambdaContext())
    assert labels(sm_client, arn)["AWSCURRENT"] == request.token
    assert user_of(kind, key).passwords == [value(sm_client, arn, "AWSCURRENT")["password"], first]


def test_a_user_stuck_modifying_fails_set_secret_within_the_bound(
    sm_client: SecretsManagerClient,
    service: RotationService,
    engine: RedisEngine,
) -> None:
    name, password = unique("app"), new_password()
    user_id, user_arn = elasticache_user(name, password)
    arn = store_secret(
        sm_client, service, unique("cache"), {"user_arn": user_arn, "username": name, "password": password}
    )
    handler = handler_for(RedisEngine(clients, user_wait_seconds=0.2, poll_seconds=0.05), sm_client)
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext())
    stuck = user_of("elasticache", user_id)  # e.g. an operator's change still in progress
    stuck.status, stuck.modifying_describes = "modifying", 10**6
    with pytest.raises(DatabaseOperationError, match="still 'modifying'"):
        handler(request.event("setSecret"), LambdaContext())
    assert stuck.passwords == [password]
    assert value(sm_client, arn, "AWSCURRENT")["password"] == password


def test_a_user_arn_for_another_user_name_is_refused_at_create(
    sm_client: SecretsManagerClient, service: RotationService, handler: RotationFunction[Any]
) -> None:
    name, password = unique("app"), new_password()
    _, user_arn = elasticache_user(name, password)
    arn = store_secret(
        sm_client,
        service,
        unique("cache"),
        {"user_arn": user_arn, "username": "someone", "password": password},
    )
    request = service.start(arn)
    with pytest.raises(DatabaseOperationError, match="is named"):
        handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)


def test_the_model_refuses_what_aws_refuses(engine: RedisEngine) -> None:
    """The model is part of the judge: it must refuse a third password, a short one, and a
    change while the user is modifying."""
    name, password = unique("app"), new_password()
    user_id, _ = elasticache_user(name, password)
    client = clients("elasticache", REGION)
    for bad in ([password, password + "a", password + "b"], ["short"], ["x" * 20 + "@"]):
        with pytest.raises(client.exceptions.InvalidParameterValueException):
            client.modify_user(UserId=user_id, Passwords=bad)
    client.modify_user(UserId=user_id, Passwords=[password + "new", password])
    with pytest.raises(client.exceptions.InvalidUserStateFault):
        client.modify_user(UserId=user_id, Passwords=[password])


def test_with_an_endpoint_test_secret_logs_in_over_tls(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    engine: RedisEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user of a cluster the function can reach (the secret names ``host``): the API
    changes the passwords, the service applies them to the cluster (played by the throwaway
    Redis), and testSecret proves the pending one with a real login over verified TLS."""
    name, password = unique("app"), new_password()
    user_id, user_arn = elasticache_user(name, password)
    redis_server.create_user(name, password, None, "~app:*", "+@read", "+ping")

    def apply(passwords: list[str]) -> None:
        redis_server.command("ACL", "SETUSER", name, "resetpass", *(password_rule(p) for p in passwords))

    monkeypatch.setitem(MIRRORS, user_arn, apply)
    body = {
        "user_arn": user_arn,
        "username": name,
        "password": password,
        "host": redis_server.host,
        "port": redis_server.port,
    }
    arn = store_secret(sm_client, service, unique("cache"), body)
    handler = handler_for(engine, sm_client, DB_CA_BUNDLE=redis_server.ca_file)
    refused_before = redis_server.failed_logins()
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    assert user_of("elasticache", user_id).passwords == [current, password]
    assert redis_server.can_login(name, current) and redis_server.can_login(name, password)
    assert redis_server.failed_logins() == refused_before


def test_a_managed_user_with_a_master_secret_is_refused_before_anything_changes(
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """A master session of a managed user would be the master's own: its passwords, not
    the user's, would change. Such a secret is refused at createSecret."""
    from common.errors import SecretFormatError

    admin, admin_password = unique("admin"), new_password()
    admin_id, admin_arn = elasticache_user(admin, admin_password)
    master = store_secret(
        sm_client,
        service,
        unique("master"),
        {"user_arn": admin_arn, "username": admin, "password": admin_password},
        rotation=False,
    )
    name, password = unique("app"), new_password()
    user_id, user_arn = elasticache_user(name, password)
    body = {"user_arn": user_arn, "username": name, "password": password, "masterarn": master}
    arn = store_secret(sm_client, service, unique("cache"), body)
    request = service.start(arn)
    with pytest.raises(SecretFormatError, match="both 'user_arn' and 'masterarn'"):
        handler(request.event("createSecret"), LambdaContext())
    assert user_of("elasticache", admin_id).passwords == [admin_password]
    assert user_of("elasticache", user_id).passwords == [password]
    assert labels(sm_client, arn)["AWSPENDING"] == request.token
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)
