"""Shared fixtures: one throwaway PostgreSQL per session, moto per test, the service emulation."""

from __future__ import annotations

import gc
import os
import secrets
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from devtools.mariadb import MariaDBServer
from devtools.mongo_peer import MongoPeer, MongoServer
from devtools.mongod import MongodServer, find_mongod
from devtools.postgres import PostgresServer
from devtools.redis_server import RedisServer
from devtools.redshift import RedshiftStandIn
from devtools.service import RotationService, behave_like_aws

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real AWS account, whatever the developer's shell holds."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name in ("SECRETS_MANAGER_ENDPOINT", "DB_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SecretsRotationTests")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    server = MariaDBServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo() -> Iterator[MongoServer]:
    """A real mongod when one is on PATH (or named by MONGOD), else the wire-protocol peer."""
    server: MongoServer = MongodServer().start() if find_mongod() else MongoPeer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redshift() -> Iterator[RedshiftStandIn]:
    server = RedshiftStandIn().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """Redis with TLS only and ACL users kept in an ACL file."""
    server = RedisServer("aclfile").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sm_client() -> Iterator[SecretsManagerClient]:
    behave_like_aws()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def service(sm_client: SecretsManagerClient) -> RotationService:
    return RotationService(region=REGION)


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def new_password() -> str:
    return "Pw-" + secrets.token_urlsafe(18)


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    """A database of this test's own."""
    name = unique("db")
    postgres.execute(f'CREATE DATABASE "{name}"')
    yield name


def pg_secret(
    postgres: PostgresServer, username: str, password: str, dbname: str, **extra: Any
) -> dict[str, Any]:
    secret: dict[str, Any] = {
        "engine": "postgres",
        "host": postgres.host,
        "port": postgres.port,
        "username": username,
        "password": password,
        "dbname": dbname,
    }
    secret.update(extra)
    return secret


@pytest.fixture(autouse=True, scope="module")
def _thaw_frozen_containers() -> Iterator[None]:
    """Each handler a test builds freezes what exists (``common.coldstart.long_lived``,
    as a Lambda container does once), so reference cycles that die later (a dropped
    handler's boto3 client) are never collected: a process that builds thousands of
    handlers keeps them all. After each test file, thaw and collect them."""
    yield
    gc.unfreeze()
    gc.collect()


def _tally() -> dict[tuple[str, str], Counter[str]]:
    from tests.scenarios.test_fault_matrix import TALLY

    return TALLY


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands its fault-matrix counts to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fault_matrix"] = [
            [engine, family, dict(tally)] for (engine, family), tally in _tally().items()
        ]


def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller adds up the workers' fault-matrix counts (xdist's hook)."""
    for engine, family, counts in getattr(node, "workeroutput", {}).get("fault_matrix", []):
        _tally().setdefault((engine, family), Counter()).update(counts)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault matrix's counts, when it ran: sequences tried and invariant held."""
    TALLY = _tally()  # noqa: N806 - the module's name for it

    if not TALLY:
        return
    terminalreporter.section("fault matrix")
    for (engine, family), tally in sorted(TALLY.items()):
        terminalreporter.write_line(
            f"{engine:<11} {family:<55} {tally['held']:>4} of {tally['tried']:>4} held"
        )
    tried = sum(t["tried"] for t in TALLY.values())
    held = sum(t["held"] for t in TALLY.values())
    terminalreporter.write_line(f"{'all':<11} {'':<55} {held:>4} of {tried:>4} held")
