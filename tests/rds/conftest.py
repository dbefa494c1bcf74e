"""Fixtures for RDS topologies: moto's RDS names pointed at a real PostgreSQL primary and
its streaming standby (and the session's MariaDB), certificates that carry those names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from devtools.postgres import PostgresServer, PostgresStandby
from devtools.rds_endpoints import CERTIFICATE_NAMES, EndpointMap
from tests.conftest import REGION, new_password, unique
from tests.helpers import handler_for, store_secret

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.engine import Engine
    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


@pytest.fixture(scope="session")
def primary() -> Iterator[PostgresServer]:
    """A PostgreSQL primary whose certificate carries moto's RDS endpoint names; commits
    are synchronous (as on RDS), so the WAL position read after a change covers it."""
    server = PostgresServer()
    server.server_names = list(CERTIFICATE_NAMES)
    server.start()
    try:
        server.execute("ALTER SYSTEM SET synchronous_commit = on")
        server.execute("SELECT pg_reload_conf()")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def standby(primary: PostgresServer) -> Iterator[PostgresStandby]:
    server = PostgresStandby(primary).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rds(sm_client: SecretsManagerClient) -> RDSClient:
    """moto's RDS, in the same mock as the test's Secrets Manager."""
    return boto3.client("rds", region_name=REGION)


@pytest.fixture
def endpoints() -> Iterator[EndpointMap]:
    with EndpointMap().installed() as mapping:
        yield mapping


@dataclass
class User:
    name: str
    password: str
    dbname: str
    arn: str


def user_on(
    primary: PostgresServer | MariaDBServer,
    sm: SecretsManagerClient,
    service: RotationService,
    host: str,
    *,
    masterarn: str | None = None,
    **extra: Any,
) -> User:
    """A user owning a database of its own on the primary, and its secret naming ``host``
    (the engine's default port, as RDS gives it), rotation enabled."""
    name, password, dbname = unique("app"), new_password(), unique("db")
    primary.create_database(dbname)
    primary.create_user(name, password, dbname)
    body: dict[str, Any] = {
        "engine": primary.engine_key,
        "host": host,
        "port": 5432 if primary.engine_key == "postgres" else 3306,
        "username": name,
        "password": password,
        "dbname": dbname,
        **extra,
    }
    if masterarn:
        body["masterarn"] = masterarn
    return User(name, password, dbname, store_secret(sm, service, name, body))


def rds_handler(
    engine: Engine[Any], sm: SecretsManagerClient, rds: RDSClient, ca_file: str, **environ: str
) -> RotationFunction[Any]:
    return handler_for(engine, sm, rds_client=rds, DB_CA_BUNDLE=ca_file, **environ)
