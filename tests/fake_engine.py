"""An in-memory engine that drives the state machine in unit tests (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.engine import Engine, Login
from common.errors import VerificationError

HOST = "db.example.internal"


def secret(user: str = "app", password: str = "initial-Pass-1", **extra: Any) -> dict[str, Any]:
    """A PostgreSQL-shaped secret for the fake database."""
    return {"engine": "postgres", "host": HOST, "port": 5432, "username": user, "password": password, **extra}


@dataclass
class FakeDatabase:
    """Users, their passwords and whose privileges they act with."""

    host: str = "db.example.internal"
    passwords: dict[str, str] = field(default_factory=dict)
    acts_as: dict[str, str] = field(default_factory=dict)
    failed_logins: int = 0
    logins: list[str] = field(default_factory=list)
    reachable: bool = True


@dataclass
class FakeSession:
    user: str


class FakeEngine(Engine[FakeSession]):
    name = "fake"
    engines = frozenset({"postgres"})
    default_port = 5432
    default_dbname = "postgres"
    max_username_length = 16

    def __init__(self, database: FakeDatabase) -> None:
        self.database = database

    def open(self, login: Login) -> FakeSession:
        if not self.database.reachable or login.host != self.database.host:
            raise login.unreachable("no route")
        if self.database.passwords.get(login.username) != login.password:
            self.database.failed_logins += 1
            raise login.refused()
        self.database.logins.append(login.label)
        return FakeSession(login.username)

    def close(self, connection: FakeSession) -> None:
        return None

    def change_own_password(self, connection: FakeSession, login: Login, new_password: str) -> None:
        self.database.passwords[connection.user] = new_password

    def set_alternate_user(
        self,
        connection: FakeSession,
        *,
        original: str,
        clone: str,
        user: str,
        password: str,
        database: str | None,
        current: Login,
    ) -> None:
        self.database.passwords[user] = password
        self.database.acts_as[clone] = original

    def verify_session(self, connection: FakeSession) -> None:
        return None

    def verify_privileges(
        self, connection: FakeSession, *, original: str, user: str, database: str | None
    ) -> None:
        if self.database.acts_as.get(user, user) != original:
            raise VerificationError(f"user {user!r} does not act as {original!r}")
