"""Fixtures for RDS topologies: moto's RDS names pointed at a real PostgreSQL primary and
its streaming standby (and the session's MariaDB), certificates that carry those names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from devtools.postgres import PostgresServer, PostgresStandby
from devtools.rds_endpoints import CERTIFICATE_NAMES, EndpointMap, instance_address, pin_cluster_endpoints
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
class Database:
    """An RDS database in moto whose endpoints reach the throwaway servers."""

    kind: str
    identifier: str
    writer: str
    reader: str
    master_arn: str
    master_user: str
    master_password: str


def managed_instance(
    rds: RDSClient,
    sm: SecretsManagerClient,
    endpoints: EndpointMap,
    writer_port: int,
    replica_port: int,
    engine: str = "postgres",
) -> Database:
    """A DB instance with an RDS-managed master secret and one read replica."""
    identifier = unique("db").replace("_", "-")
    instance = rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine=engine,
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername=unique("admin"),
        ManageMasterUserPassword=True,
    )["DBInstance"]
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier=f"{identifier}-replica", SourceDBInstanceIdentifier=identifier
    )
    endpoints.point(instance_address(identifier), writer_port)
    endpoints.point(instance_address(f"{identifier}-replica"), replica_port)
    return _database(
        sm,
        "instance",
        identifier,
        instance_address(identifier),
        instance_address(f"{identifier}-replica"),
        instance,
    )


def managed_cluster(
    rds: RDSClient,
    sm: SecretsManagerClient,
    endpoints: EndpointMap,
    writer_port: int,
    reader_port: int,
    engine: str = "aurora-postgresql",
) -> Database:
    """A cluster (Aurora, or a Multi-AZ DB cluster when ``engine`` is ``postgres`` or
    ``mysql``) with an RDS-managed master secret and a writer and a reader instance."""
    identifier = unique("cl").replace("_", "-")
    multi_az: dict[str, Any] = {}
    if not engine.startswith("aurora"):
        multi_az = {
            "DBClusterInstanceClass": "db.m6gd.large",
            "AllocatedStorage": 100,
            "StorageType": "io1",
            "Iops": 1000,
        }
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine=engine,
        MasterUsername=unique("admin"),
        ManageMasterUserPassword=True,
        **multi_az,
    )
    pin_cluster_endpoints(identifier)
    for member in ("a", "b"):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{identifier}-{member}",
            DBClusterIdentifier=identifier,
            Engine=engine,
            DBInstanceClass="db.r6g.large",
        )
    cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    endpoints.point(cluster["Endpoint"], writer_port)
    endpoints.point(cluster["ReaderEndpoint"], reader_port)
    endpoints.point(instance_address(f"{identifier}-a"), writer_port)
    endpoints.point(instance_address(f"{identifier}-b"), reader_port)
    return _database(sm, "cluster", identifier, cluster["Endpoint"], cluster["ReaderEndpoint"], cluster)


def _database(
    sm: SecretsManagerClient, kind: str, identifier: str, writer: str, reader: str, described: Any
) -> Database:
    arn = described["MasterUserSecret"]["SecretArn"]
    assert set(json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])) == {"username", "password"}
    # moto gives every database the same master user and password: give each its own, in
    # the form RDS stores (no host, no engine).
    master = {"username": unique("admin"), "password": new_password()}
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps(master))
    return Database(kind, identifier, writer, reader, arn, master["username"], master["password"])


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
