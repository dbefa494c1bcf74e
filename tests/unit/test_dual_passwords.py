"""The dual-password strategy in the rotation core, through a fake engine whose users hold
two passwords: a crash after any step, with or without a master, never leaves AWSCURRENT
refused, no login is refused on the way, and the previous password lasts one rotation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from devtools.service import STEPS
from tests.fake_engine import FakeDatabase, FakeEngine, FakeSession
from tests.helpers import handler_for, labels, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.engine import Login
    from devtools.service import RotationService

HOST = "cache.example.internal"


class DualEngine(FakeEngine):
    """Users hold a set of passwords; the master adds them for the same user."""

    master_adds_password = True

    def __init__(self, database: FakeDatabase) -> None:
        super().__init__(database)
        self.held: dict[str, set[str]] = {user: {p} for user, p in database.passwords.items()}

    def open(self, login: Login) -> FakeSession:
        if login.password not in self.held.get(login.username, set()):
            self.database.failed_logins += 1
            raise login.refused()
        return FakeSession(login.username)

    def add_password(self, connection: FakeSession, *, user: str, keep: str, new: str) -> bool:
        self.held[user] = {keep, new}
        return True


def secret(user: str, password: str, **extra: Any) -> dict[str, Any]:
    return {"engine": "postgres", "host": HOST, "port": 5432, "username": user, "password": password, **extra}


@pytest.fixture
def engine() -> DualEngine:
    return DualEngine(FakeDatabase(host=HOST, passwords={"app": "initial-Pass-1", "admin": "master-Pass-1"}))


@pytest.fixture(params=["own", "master"])
def arn(request: pytest.FixtureRequest, sm_client: SecretsManagerClient, service: RotationService) -> str:
    extra = {}
    if request.param == "master":
        extra["masterarn"] = store_secret(
            sm_client, service, "admin", secret("admin", "master-Pass-1"), rotation=False
        )
    return store_secret(sm_client, service, "app", secret("app", "initial-Pass-1", **extra))


@pytest.mark.parametrize("completed", range(len(STEPS) + 1))
def test_a_crash_after_any_step_never_refuses_awscurrent(
    sm_client: SecretsManagerClient, service: RotationService, engine: DualEngine, arn: str, completed: int
) -> None:
    handler = handler_for(engine, sm_client)
    request = service.start(arn)
    for step in STEPS[:completed]:
        handler(request.event(step), None)
        current = value(sm_client, arn, "AWSCURRENT")
        assert current["password"] in engine.held["app"]
    retry = handler_for(engine, sm_client)
    for step in STEPS:
        retry(request.event(step), None)
    assert labels(sm_client, arn)["AWSCURRENT"] == request.token
    assert engine.held["app"] == {value(sm_client, arn, "AWSCURRENT")["password"], "initial-Pass-1"}
    assert engine.database.failed_logins == 0
    assert value(sm_client, arn, "AWSCURRENT")["username"] == "app"  # the same user, no clone


def test_the_previous_password_lasts_one_rotation(
    sm_client: SecretsManagerClient, service: RotationService, engine: DualEngine, arn: str
) -> None:
    handler = handler_for(engine, sm_client)
    service.rotate(handler, arn)
    first = value(sm_client, arn, "AWSCURRENT")["password"]
    service.rotate(handler, arn)
    second = value(sm_client, arn, "AWSCURRENT")["password"]
    assert engine.held["app"] == {first, second}
    assert engine.database.failed_logins == 0


@pytest.mark.parametrize(
    ("masterarn", "adds_password", "expected"),
    [
        (None, False, "single-user"),
        (None, True, "single-user"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:master", False, "alternating-users"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:master", True, "dual-passwords"),
    ],
)
def test_the_strategy_is_decided_in_one_place(
    masterarn: str | None, adds_password: bool, expected: str
) -> None:
    """``Strategy.of`` alone maps a secret and an engine to a strategy (the rotation core
    and the preflight both ask it)."""
    from common.rotation import Strategy
    from common.secret import DatabaseSecret

    raw = {"engine": "postgres", "host": HOST, "username": "app", "password": "Current-Pass-1"}
    secret = DatabaseSecret.from_dict({**raw, "masterarn": masterarn} if masterarn else raw, "AWSCURRENT")
    engine = DualEngine(FakeDatabase()) if adds_password else FakeEngine(FakeDatabase())
    assert Strategy.of(secret, engine).value == expected
