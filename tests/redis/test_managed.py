"""ElastiCache and MemoryDB users rotated through the service's API, on moto extended with
a model of the users' passwords and status (``devtools/managed_users.py``) whose clusters'
data plane is the suite's real Redis: AWS's ElastiCache secret format, two passwords kept,
waiting for ``active``, retries, and real logins over TLS that prove the current password
before the API changes anything and the pending one before it becomes current."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from common.deadline import UNBOUNDED
from common.errors import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseLoginError,
    DatabaseOperationError,
    PermissionDeniedError,
    SecretMismatchError,
    StepTimeLimitError,
    TlsConfigurationError,
)
from common.observability import logger
from devtools.certs import CertificateAuthority
from devtools.managed_users import DataPlane, add_cluster, behave_like_aws_users, reset, user_of
from devtools.ports import free_port
from devtools.redis_server import RedisServer, password_rule
from devtools.service import STEPS, LambdaContext
from rotators.redis.engine import RedisEngine
from tests.conftest import REGION, new_password, unique
from tests.helpers import handler_for, labels, store_secret, value

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationRequest, RotationService


def clients(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


@pytest.fixture(autouse=True)
def aws_users(sm_client: SecretsManagerClient) -> Iterator[None]:
    """moto with the model of users; its user groups, ACLs and clusters forgotten after."""
    behave_like_aws_users()
    yield
    reset()


@pytest.fixture
def engine() -> RedisEngine:
    return RedisEngine(clients, user_wait_seconds=5, poll_seconds=0.01)


@pytest.fixture
def handler(
    engine: RedisEngine, sm_client: SecretsManagerClient, redis_server: RedisServer
) -> RotationFunction[Any]:
    return handler_for(engine, sm_client, DB_CA_BUNDLE=redis_server.ca_file)


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


def serve_on(server: RedisServer, kind: str, key: str, name: str, password: str) -> None:
    """``name`` (model key ``key``) becomes a user of a cluster whose node is ``server``:
    the service applies each password change to it."""
    server.create_user(name, password, None, "~app:*", "+@read", "+ping")

    def apply(user: str, passwords: list[str]) -> None:
        server.command("ACL", "SETUSER", user, "resetpass", *(password_rule(p) for p in passwords))

    add_cluster(kind, key, DataPlane(server.host, server.port, apply))


def new_user(kind: str, name: str, password: str) -> tuple[str, str]:
    """(model key, ARN) of a new ElastiCache or MemoryDB user."""
    if kind == "elasticache":
        return elasticache_user(name, password)
    return name, memorydb_user(name, password)


@dataclass
class Managed:
    """A test's managed user, the secret that names it, and its first password."""

    kind: str
    key: str
    name: str
    arn: str
    password: str


@pytest.fixture(params=["elasticache", "memorydb"])
def managed(
    request: pytest.FixtureRequest,
    engine: RedisEngine,
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> Managed:
    """A user of a cluster the function reaches (found through the API, not the secret),
    with a secret in AWS's format."""
    name, password = unique("app"), new_password()
    key, user_arn = new_user(request.param, name, password)
    serve_on(redis_server, request.param, key, name, password)
    body = {"user_arn": user_arn, "username": name, "password": password}
    arn = store_secret(sm_client, service, unique("cache"), json.dumps(body))
    return Managed(request.param, key, name, arn, password)


def test_two_passwords_newest_first_proven_by_real_logins(
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    managed: Managed,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = io.StringIO()  # the lines as Lambda would ship them
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    first, original = managed.password, value(sm_client, managed.arn, "AWSCURRENT")
    refused_before = redis_server.failed_logins()
    request = service.start(managed.arn)
    handler(request.event("createSecret"), LambdaContext())
    handler(request.event("setSecret"), LambdaContext())
    user = user_of(managed.kind, managed.key)
    # setSecret waited: the model applies the change to the data plane only when active.
    assert user.status == "active"
    second = pending_password(sm_client, managed.arn, request.token)
    assert redis_server.can_login(managed.name, second) and redis_server.can_login(managed.name, first)
    handler(request.event("testSecret"), LambdaContext())
    handler(request.event("finishSecret"), LambdaContext())
    assert value(sm_client, managed.arn, "AWSCURRENT")["password"] == second
    assert user.passwords == [second, first]
    service.rotate(handler, managed.arn)
    third = value(sm_client, managed.arn, "AWSCURRENT")
    assert user.passwords == [third["password"], second]  # the first one is gone
    assert not redis_server.can_login(managed.name, first)
    assert user.modifications == 2
    assert set(third) == set(original) == {"user_arn", "username", "password"}
    assert redis_server.failed_logins() == refused_before + 1  # only the check above
    printed = lines.getvalue()
    assert "not proven by a login" not in printed and "status only" not in printed
    assert not any(password in printed for password in (first, second, third["password"]))


def test_each_step_twice_changes_the_user_once_per_step(
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    managed: Managed,
) -> None:
    request = service.start(managed.arn)
    for step in STEPS:
        handler(request.event(step), LambdaContext())
        handler(request.event(step), LambdaContext())
    assert labels(sm_client, managed.arn)["AWSCURRENT"] == request.token
    current = value(sm_client, managed.arn, "AWSCURRENT")["password"]
    assert user_of(managed.kind, managed.key).passwords == [current, managed.password]


def pending_password(client: SecretsManagerClient, arn: str, token: str) -> str:
    return str(json.loads(client.get_secret_value(SecretId=arn, VersionId=token)["SecretString"])["password"])


def plant_pending(client: SecretsManagerClient, arn: str, token: str, body: dict[str, Any]) -> None:
    """A pending version under ``token`` (as a createSecret would have left it), so that the
    later steps meet their own checks, not a missing value."""
    pending = {**body, "password": new_password()}
    client.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=["AWSPENDING"]
    )


@pytest.fixture(params=["login", "status-only"])
def either_mode(
    request: pytest.FixtureRequest, sm_client: SecretsManagerClient, redis_server: RedisServer
) -> RotationFunction[Any]:
    """The default deployment, and one that opted in to status-only checks."""
    environ = {"MANAGED_USER_STATUS_ONLY": "true" if request.param == "status-only" else "false"}
    engine = RedisEngine(clients, user_wait_seconds=5, poll_seconds=0.01, environ=environ)
    return handler_for(engine, sm_client, DB_CA_BUNDLE=redis_server.ca_file)


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
def test_a_secret_with_a_guessed_password_cannot_take_the_user_over(
    kind: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    either_mode: RotationFunction[Any],
    redis_server: RedisServer,
) -> None:
    """Whoever may write a secret naming a user in CacheUserArns must not get that user's
    passwords set: the current password is proven by a login before the API is called, in
    the status-only mode too (a refused password is an answer, never skipped)."""
    name, real = unique("victim"), new_password()
    key, user_arn = new_user(kind, name, real)
    serve_on(redis_server, kind, key, name, real)
    guessed = {"user_arn": user_arn, "username": name, "password": new_password()}
    arn = store_secret(sm_client, service, unique("cache"), guessed)
    request = service.start(arn)
    with pytest.raises(DatabaseLoginError, match=f"endpoint of {user_arn}"):
        either_mode(request.event("createSecret"), LambdaContext())
    plant_pending(sm_client, arn, request.token, guessed)  # a caller that goes on regardless
    with pytest.raises(DatabaseLoginError, match=f"endpoint of {user_arn}"):
        either_mode(request.event("setSecret"), LambdaContext())
    for step in STEPS[2:]:
        with pytest.raises(DatabaseLoginError):
            either_mode(request.event(step), LambdaContext())
    user = user_of(kind, key)
    assert user.passwords == [real] and getattr(user, "modifications", 0) == 0
    assert redis_server.can_login(name, real)
    assert labels(sm_client, arn)["AWSCURRENT"] != request.token


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
def test_a_host_that_is_not_the_users_endpoint_cannot_take_the_user_over(
    kind: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """A secret naming the victim's user ARN and a Redis its writer controls (a user of
    the same name, a password they know, a certificate the function trusts) must not
    prove anything: the host is refused unless the service lists it for the user."""
    name, real = unique("victim"), new_password()
    key, user_arn = new_user(kind, name, real)
    serve_on(redis_server, kind, key, name, real)
    decoy = RedisServer().start()
    try:
        known = new_password()
        decoy.create_user(name, known, None, "~*", "+@all")
        bundle = tmp_path / "bundle.pem"
        bundle.write_text(Path(redis_server.ca_file).read_text() + Path(decoy.ca_file).read_text())
        engine = RedisEngine(clients, user_wait_seconds=5, poll_seconds=0.01)
        handler = handler_for(engine, sm_client, DB_CA_BUNDLE=str(bundle))
        body: dict[str, Any] = {"user_arn": user_arn, "username": name, "password": known}
        body |= {"host": decoy.host, "port": decoy.port}
        arn = store_secret(sm_client, service, unique("cache"), body)
        request = service.start(arn)
        refused = f"{decoy.host}:{decoy.port} is not an endpoint of {user_arn}"
        with pytest.raises(SecretMismatchError, match=refused):
            handler(request.event("createSecret"), LambdaContext())
        plant_pending(sm_client, arn, request.token, body)
        for step in ("setSecret", "finishSecret"):
            with pytest.raises(SecretMismatchError, match=refused):
                handler(request.event(step), LambdaContext())
        user = user_of(kind, key)
        assert user.passwords == [real] and getattr(user, "modifications", 0) == 0
        assert redis_server.can_login(name, real)
        assert labels(sm_client, arn)["AWSCURRENT"] != request.token
    finally:
        decoy.stop()


def test_finish_before_set_is_refused_by_a_login(
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    managed: Managed,
) -> None:
    request = service.start(managed.arn)
    handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(DatabaseLoginError, match="AWSPENDING"):
        handler(request.event("finishSecret"), LambdaContext())
    assert value(sm_client, managed.arn, "AWSCURRENT")["password"] == managed.password
    assert user_of(managed.kind, managed.key).passwords == [managed.password]


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
@pytest.mark.parametrize("where", ["no cluster", "unreachable", "host unreachable"])
def test_without_a_reachable_endpoint_create_secret_names_the_opt_in(
    kind: str,
    where: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    name, password = unique("app"), new_password()
    key, user_arn = new_user(kind, name, password)
    body: dict[str, Any] = {"user_arn": user_arn, "username": name, "password": password}
    if where != "no cluster":
        port = free_port()  # nothing listens there
        add_cluster(kind, key, DataPlane("127.0.0.1", port))
        if where == "host unreachable":
            body |= {"host": "127.0.0.1", "port": port}
    arn = store_secret(sm_client, service, unique("cache"), body)
    request = service.start(arn)
    with pytest.raises(DatabaseConnectionError, match="MANAGED_USER_STATUS_ONLY=true"):
        handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)
    assert user_of(kind, key).passwords == [password]


@pytest.fixture
def status_only(sm_client: SecretsManagerClient) -> RotationFunction[Any]:
    """A deployment that opted in to rotation checked by the user's status only."""
    behave_like_aws_users()
    engine = RedisEngine(clients, poll_seconds=0.01, environ={"MANAGED_USER_STATUS_ONLY": "true"})
    return handler_for(engine, sm_client)


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
def test_status_only_finish_before_set_makes_current_a_password_the_user_holds(
    kind: str, sm_client: SecretsManagerClient, service: RotationService, status_only: RotationFunction[Any]
) -> None:
    name, password = unique("app"), new_password()
    key, user_arn = new_user(kind, name, password)
    arn = store_secret(
        sm_client, service, unique("cache"), {"user_arn": user_arn, "username": name, "password": password}
    )
    request = service.start(arn)
    status_only(request.event("createSecret"), LambdaContext())
    status_only(request.event("finishSecret"), LambdaContext())  # setSecret never ran
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    user = user_of(kind, key)
    assert labels(sm_client, arn)["AWSCURRENT"] == request.token
    assert user.passwords == [current, password] and user.status == "active"


def test_status_only_full_rotation_says_no_login_proved_it(
    sm_client: SecretsManagerClient,
    service: RotationService,
    status_only: RotationFunction[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    name, password = unique("app"), new_password()
    key, user_arn = elasticache_user(name, password)
    arn = store_secret(
        sm_client, service, unique("cache"), {"user_arn": user_arn, "username": name, "password": password}
    )
    service.rotate(status_only, arn)
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    user = user_of("elasticache", key)
    assert user.passwords == [current, password]
    assert user.modifications == 2  # setSecret, then finishSecret's idempotent re-apply
    assert "password not proven by a login" in lines.getvalue()
    assert not any(p in lines.getvalue() for p in (password, current))


@pytest.mark.parametrize(("raw", "expected"), [(None, 240), ("", 240), ("90", 90)])
def test_the_wait_for_active_is_a_setting(raw: str | None, expected: int) -> None:
    environ = {} if raw is None else {"MANAGED_USER_WAIT_SECONDS": raw}
    assert RedisEngine(environ=environ).user_wait_seconds == expected


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("MANAGED_USER_WAIT_SECONDS", "4 min"),
        ("MANAGED_USER_WAIT_SECONDS", "0"),
        ("MANAGED_USER_WAIT_SECONDS", "481"),
        ("MANAGED_USER_STATUS_ONLY", "y"),
    ],
)
def test_a_bad_managed_user_setting_is_named(name: str, raw: str) -> None:
    engine = RedisEngine(environ={name: raw})
    with pytest.raises(ConfigurationError, match=name):
        _ = engine.user_wait_seconds, engine.status_only


def busy_after_create(
    sm_client: SecretsManagerClient,
    service: RotationService,
    managed: Managed,
    redis_server: RedisServer,
    wait: float,
    poll: float,
    describes: int,
) -> tuple[RotationFunction[Any], RotationRequest, Any]:
    """A handler waiting ``wait`` s (polling every ``poll`` s), a rotation past
    createSecret, and the model's user then ``modifying`` for ``describes`` DescribeUsers."""
    engine = RedisEngine(clients, user_wait_seconds=wait, poll_seconds=poll)
    handler = handler_for(engine, sm_client, DB_CA_BUNDLE=redis_server.ca_file)
    request = service.start(managed.arn)
    handler(request.event("createSecret"), LambdaContext())
    user = user_of(managed.kind, managed.key)
    user.status, user.modifying_describes = "modifying", describes
    return handler, request, user


def test_a_user_stuck_modifying_fails_set_secret_within_the_bound(
    sm_client: SecretsManagerClient,
    service: RotationService,
    engine: RedisEngine,
    managed: Managed,
    redis_server: RedisServer,
) -> None:
    # e.g. an operator's change still in progress
    handler, request, stuck = busy_after_create(sm_client, service, managed, redis_server, 0.2, 0.05, 10**6)
    with pytest.raises(DatabaseOperationError, match="still 'modifying'"):
        handler(request.event("setSecret"), LambdaContext())
    assert stuck.passwords == [managed.password]
    assert value(sm_client, managed.arn, "AWSCURRENT")["password"] == managed.password


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
    serve_on(redis_server, "elasticache", user_id, name, password)
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


def status_only_handler(sm_client: SecretsManagerClient, ca_bundle: str) -> RotationFunction[Any]:
    engine = RedisEngine(clients, poll_seconds=0.01, environ={"MANAGED_USER_STATUS_ONLY": "true"})
    return handler_for(engine, sm_client, DB_CA_BUNDLE=ca_bundle)


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
def test_status_only_with_an_unreachable_endpoint_rotates_and_says_why_once(
    kind: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    status_only: RotationFunction[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A genuine network failure (nothing listens at the listed endpoint) is what the
    opt-in accepts: the rotation completes on the user's status, and each session says
    once, with that reason, that no login proved the password."""
    lines = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    name, password = unique("app"), new_password()
    key, user_arn = new_user(kind, name, password)
    port = free_port()
    add_cluster(kind, key, DataPlane("127.0.0.1", port))
    body = {"user_arn": user_arn, "username": name, "password": password}
    arn = store_secret(sm_client, service, unique("cache"), body)
    request = service.start(arn)
    status_only(request.event("createSecret"), LambdaContext())
    warnings = [line for line in lines.getvalue().splitlines() if "not proven by a login" in line]
    assert len(warnings) == 1 and f"127.0.0.1:{port}" in warnings[0]
    for step in STEPS[1:]:
        status_only(request.event(step), LambdaContext())
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    assert user_of(kind, key).passwords == [current, password]
    assert not any(p in lines.getvalue() for p in (password, current))


def test_status_only_stops_at_a_tls_failure(
    sm_client: SecretsManagerClient,
    service: RotationService,
    managed: Managed,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """A certificate the function does not trust is not an unreachable endpoint: the step
    stops at once and the proof is never dropped for a status-only check."""
    other = CertificateAuthority.create(tmp_path, "other-ca")
    handler = status_only_handler(sm_client, str(other.cert_path))
    request = service.start(managed.arn)
    with pytest.raises(TlsConfigurationError, match="certificate verify failed"):
        handler(request.event("createSecret"), LambdaContext())
    plant_pending(sm_client, managed.arn, request.token, value(sm_client, managed.arn, "AWSCURRENT"))
    with pytest.raises(TlsConfigurationError):
        handler(request.event("setSecret"), LambdaContext())
    assert getattr(user_of(managed.kind, managed.key), "modifications", 0) == 0


class DeniedDescribes:
    """A service client whose role lacks the describe calls of CacheClusterArns."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        if name in ("describe_user_groups", "describe_acls"):
            operation = "DescribeUserGroups" if name == "describe_user_groups" else "DescribeACLs"

            def denied(**_: Any) -> Any:
                from botocore.exceptions import ClientError

                error = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}
                raise ClientError(error, operation)  # type: ignore[arg-type]

            return denied
        return getattr(self.client, name)


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
@pytest.mark.parametrize("mode", ["login", "status-only"])
def test_a_denied_endpoint_lookup(
    kind: str,
    mode: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    redis_server: RedisServer,
) -> None:
    """Without CacheClusterArns: the default mode names the template parameter; the
    status-only mode treats it as no endpoint found (and says so)."""
    name, password = unique("app"), new_password()
    key, user_arn = new_user(kind, name, password)
    serve_on(redis_server, kind, key, name, password)
    engine = RedisEngine(
        lambda service, region: DeniedDescribes(clients(service, region)),
        poll_seconds=0.01,
        environ={"MANAGED_USER_STATUS_ONLY": "true" if mode == "status-only" else "false"},
    )
    handler = handler_for(engine, sm_client, DB_CA_BUNDLE=redis_server.ca_file)
    body = {"user_arn": user_arn, "username": name, "password": password}
    arn = store_secret(sm_client, service, unique("cache"), body)
    if mode == "login":
        request = service.start(arn)
        with pytest.raises(PermissionDeniedError, match="CacheClusterArns"):
            handler(request.event("createSecret"), LambdaContext())
        assert getattr(user_of(kind, key), "modifications", 0) == 0
        return
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    assert user_of(kind, key).passwords == [current, password]


def test_the_model_applies_a_change_only_when_the_user_is_active(
    engine: RedisEngine, redis_server: RedisServer
) -> None:
    """The model is part of the judge: a step that did not wait for ``active`` must not
    find the new password on the data plane."""
    name, password = unique("app"), new_password()
    user_id, _ = elasticache_user(name, password)
    serve_on(redis_server, "elasticache", user_id, name, password)
    client = clients("elasticache", REGION)
    client.modify_user(UserId=user_id, Passwords=[password + "new", password])
    assert not redis_server.can_login(name, password + "new")
    while client.describe_users(UserId=user_id)["Users"][0]["Status"] != "active":
        pass
    assert redis_server.can_login(name, password + "new")


class Clock:
    """Time that passes only while the code sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_set_secret_waits_at_most_one_budget_in_all(
    sm_client: SecretsManagerClient,
    service: RotationService,
    managed: Managed,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wait before the change and the wait after it share one budget: a step never
    waits twice MANAGED_USER_WAIT_SECONDS (the function's time-out would cut it short)."""
    clock = Clock()
    monkeypatch.setattr("rotators.redis.managed.time", clock)
    monkeypatch.setattr("devtools.managed_users.MODIFYING_DESCRIBES", 7)  # about 7 s after the change
    # an operator's change, several seconds from done
    handler, request, _ = busy_after_create(sm_client, service, managed, redis_server, 10, 1, 12)
    start = clock.now
    with pytest.raises(DatabaseOperationError, match="are spent"):
        handler(request.event("setSecret"), LambdaContext())
    assert clock.now - start <= 10 + 1  # one poll past the budget at most
    assert value(sm_client, managed.arn, "AWSCURRENT")["password"] == managed.password


class ClockContext(LambdaContext):
    """A Lambda context whose time runs out ``seconds`` after ``clock``'s now."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.end = clock, clock.now + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.end - self.clock.now) * 1000))


def test_a_wait_stops_before_the_step_s_deadline_with_a_named_error(
    sm_client: SecretsManagerClient,
    service: RotationService,
    managed: Managed,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The budget (50 s) fits the function's time-out (60 s) with the margin, but not with
    one more DescribeUsers call (15 s) at its end: the wait stops while that call and the
    margin (3 s) are left, with StepTimeLimitError. Was: it waited its own 50 s, by its own
    clock, past the step's deadline (on Lambda: killed without a word)."""
    clock = Clock()
    monkeypatch.setattr("rotators.redis.managed.time", clock)
    handler, request, _ = busy_after_create(sm_client, service, managed, redis_server, 50, 1, 10**6)
    context = ClockContext(clock, 60)
    with pytest.raises(StepTimeLimitError, match="DescribeUsers|active"):
        handler(request.event("setSecret"), context)
    assert context.get_remaining_time_in_millis() >= 3 * 1000, "the margin was spent"
    assert user_of(managed.kind, managed.key).passwords == [managed.password]
    assert value(sm_client, managed.arn, "AWSCURRENT")["password"] == managed.password


def test_the_sessions_of_one_step_share_one_budget(
    sm_client: SecretsManagerClient, managed: Managed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every session of a step makes a ManagedUser; they share the step's budget, which
    the next step renews. Was: each got a budget of its own."""
    clock = Clock()
    monkeypatch.setattr("rotators.redis.managed.time", clock)
    user_arn = value(sm_client, managed.arn, "AWSCURRENT")["user_arn"]
    user_of(managed.kind, managed.key).status = "modifying"
    user_of(managed.kind, managed.key).modifying_describes = 10**6
    engine = RedisEngine(clients, user_wait_seconds=5, poll_seconds=1)
    engine.start_step(UNBOUNDED)
    first, second = engine._managed(user_arn), engine._managed(user_arn)  # one per session
    with pytest.raises(DatabaseOperationError, match="are spent"):
        first.wait_until_active()
    spent = clock.now
    with pytest.raises(DatabaseOperationError, match="are spent"):
        second.wait_until_active()
    assert clock.now == spent, "the second session waited a budget of its own"
    engine.start_step(UNBOUNDED)
    with pytest.raises(DatabaseOperationError, match="are spent"):
        engine._managed(user_arn).wait_until_active()
    assert clock.now > spent, "the next step had no budget of its own"


def test_a_pending_version_for_another_user_arn_names_both(
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    managed: Managed,
) -> None:
    """Versions without a host differ only by their user ARN: the refusal names both."""
    other = f"{new_user(managed.kind, unique('other'), new_password())[1]}"
    request = service.start(managed.arn)
    body = {**value(sm_client, managed.arn, "AWSCURRENT"), "user_arn": other}
    plant_pending(sm_client, managed.arn, request.token, body)
    user_arn = value(sm_client, managed.arn, "AWSCURRENT")["user_arn"]
    with pytest.raises(SecretMismatchError) as refused:
        handler(request.event("setSecret"), LambdaContext())
    assert f"user_arn {other}" in str(refused.value) and f"user_arn {user_arn}" in str(refused.value)
    assert getattr(user_of(managed.kind, managed.key), "modifications", 0) == 0
