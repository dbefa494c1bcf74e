"""appkit's RotationAwareConnection against the fake database: it must not keep "the
credentials that last worked" once AWSCURRENT has changed, and prime() must refuse a
secret of another engine by name."""

from __future__ import annotations

import json

import pytest

from appkit.connections import RotationAwareConnection
from appkit.retrieval import SecretCache
from common.errors import RotationError
from common.settings import Settings
from tests.fake_engine import FakeDatabase, FakeEngine, FakeSession, secret
from tests.helpers import Clock


class StageFetcher:
    """A fetcher whose value per staging label the test sets (one secret)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def fetch(self, secret_id: str, stage: str) -> str | None:
        return self.values.get(stage)


class FakeSessions:
    """The application side of fake sessions: never broken, nothing to close."""

    def is_broken(self, session: FakeSession, idle: float) -> bool:
        return False

    def end(self, session: FakeSession) -> None:
        return None


def connection_to(database: FakeDatabase, cache: SecretCache) -> RotationAwareConnection[FakeSession]:
    """A connection that opens a new session for every unit of work (no reuse)."""
    return RotationAwareConnection(
        FakeEngine(database),
        "app",
        cache,
        settings=Settings.from_environ({}),
        reuse=False,
        sessions=FakeSessions(),
    )


def test_an_updated_secret_takes_effect_after_secrets_max_age() -> None:
    """The operator moves the application to another user (the old one being retired, or
    compromised) by storing a new AWSCURRENT while the old user still logs in: past
    SECRETS_MAX_AGE every new session logs in as the new user, not with the credentials
    that last worked."""
    database = FakeDatabase(passwords={"old": "old-password-123", "new": "new-password-456"})
    fetcher, clock = StageFetcher(), Clock()
    fetcher.values["AWSCURRENT"] = json.dumps(secret("old", "old-password-123"))
    connection = connection_to(database, SecretCache(fetcher, max_age=60, clock=clock))
    assert connection.run(lambda session: session.user) == "old"
    fetcher.values["AWSCURRENT"] = json.dumps(secret("new", "new-password-456"))
    clock.now += 3600  # an hour later: far past SECRETS_MAX_AGE
    users = {connection.run(lambda session: session.user) for _ in range(3)}
    assert users == {"new"}, f"an hour after AWSCURRENT changed, new sessions still log in as {users}"


def test_prime_refuses_a_secret_of_another_engine() -> None:
    """A MySQL secret given to a PostgreSQL connection: prime() names the engine mismatch
    (as the rotation does), rather than passing and leaving the first request to fail with
    a connection error."""
    database = FakeDatabase(passwords={"app": "app-password-123"})
    fetcher = StageFetcher()
    fetcher.values["AWSCURRENT"] = json.dumps(secret("app", "app-password-123") | {"engine": "mysql"})
    connection = connection_to(database, SecretCache(fetcher, max_age=60))
    with pytest.raises(RotationError, match="engine") as raised:
        connection.prime()
    assert "app-password-123" not in str(raised.value)
