"""Fixtures for RDS topologies: moto's RDS names pointed at a real PostgreSQL primary and
its streaming standby (and the session's MariaDB), certificates that carry those names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from devtools.postgres import PostgresServer, PostgresStandby
from devtools.rds_endpoints import (
    CERTIFICATE_NAMES,
    Database,
    EndpointMap,
    managed_cluster,
    managed_instance,
)
from devtools.service import LambdaContext
from rotators.postgresql.engine import PostgresEngine
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
    server.certificate_hosts += CERTIFICATE_NAMES
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


@dataclass
class World:
    """moto's RDS and Secrets Manager, with RDS names leading to ``writer`` and ``replica``
    (throwaway servers of one engine), and the function under test."""

    writer: PostgresServer | MariaDBServer
    replica: PostgresServer | MariaDBServer
    engine: Engine[Any]
    sm: SecretsManagerClient
    service: RotationService
    rds: RDSClient
    endpoints: EndpointMap

    def instance(self, engine: str = "postgres") -> Database:
        return managed_instance(
            self.rds, self.sm, self.endpoints, (self.writer.port, self.replica.port), engine
        )

    def cluster(self, engine: str = "aurora-postgresql") -> Database:
        return managed_cluster(
            self.rds, self.sm, self.endpoints, (self.writer.port, self.replica.port), engine
        )

    def master_user(self, database: Database) -> None:
        """The RDS-managed master user, on the writer."""
        self.writer.create_master(database.master_user, database.master_password)

    def user_on(self, host: str, *, masterarn: str | None = None, **extra: Any) -> User:
        """A user owning a database of its own on the writer, and its secret naming
        ``host`` (the engine's default port, as RDS gives it), rotation enabled."""
        name, password, dbname = unique("app"), new_password(), unique("db")
        self.writer.create_database(dbname)
        self.writer.create_user(name, password, dbname)
        body: dict[str, Any] = {
            "engine": self.writer.engine_key,
            "host": host,
            "port": self.engine.default_port,
            "username": name,
            "password": password,
            "dbname": dbname,
            **extra,
        }
        if masterarn:
            body["masterarn"] = masterarn
        return User(name, password, dbname, store_secret(self.sm, self.service, name, body))

    def handler(self, **environ: str) -> RotationFunction[Any]:
        """A new container of the function, with this world's clients."""
        return handler_for(
            self.engine, self.sm, rds_client=self.rds, DB_CA_BUNDLE=self.writer.ca_file, **environ
        )

    def refused_at_create(self, handler: RotationFunction[Any], arn: str) -> None:
        """Run createSecret, which must fail leaving no pending value; re-raises its error."""
        request = self.service.start(arn)
        try:
            handler(request.event("createSecret"), LambdaContext())
        finally:
            with pytest.raises(self.sm.exceptions.ResourceNotFoundException):
                self.sm.get_secret_value(SecretId=arn, VersionId=request.token)


@pytest.fixture
def world(
    primary: PostgresServer,
    standby: PostgresStandby,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> World:
    """PostgreSQL: the primary as the writer, its streaming standby as every replica."""
    return World(primary, standby, PostgresEngine(), sm_client, service, rds, endpoints)
