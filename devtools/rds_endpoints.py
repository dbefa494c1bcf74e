"""RDS endpoint names pointed at throwaway servers, inside this process only.

moto answers RDS calls with endpoint names such as
``<id>.aaaaaaaaaa.us-east-1.rds.amazonaws.com``. A test maps each name to a throwaway
server's port on 127.0.0.1 and starts the servers with :data:`CERTIFICATE_NAMES` in their
certificates, so TLS is still verified by name: libpq connects to ``hostaddr`` while it
verifies ``host``; PyMySQL opens its socket through ``socket.create_connection`` and
verifies the host name it was given.
"""

from __future__ import annotations

import json
import secrets
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

REGION = "us-east-1"
ACCOUNT = "123456789012"
#: The zone of moto's DB instance endpoints.
INSTANCE_ZONE = f"aaaaaaaaaa.{REGION}.rds.amazonaws.com"
#: The random part of cluster endpoints, pinned by :func:`pin_cluster_endpoints`.
CLUSTER_URL_ID = "rotationtest"
#: Wildcard names covering every instance and (pinned) cluster endpoint moto makes.
CERTIFICATE_NAMES = [
    f"*.{INSTANCE_ZONE}",
    f"*.cluster-{CLUSTER_URL_ID}.{REGION}.rds.amazonaws.com",
    f"*.cluster-ro-{CLUSTER_URL_ID}.{REGION}.rds.amazonaws.com",
]


def instance_address(identifier: str) -> str:
    return f"{identifier}.{INSTANCE_ZONE}"


def pin_cluster_endpoints(cluster_id: str) -> None:
    """Give a moto cluster's endpoints :data:`CLUSTER_URL_ID` instead of moto's random
    part, so that certificates made before the cluster carry its names."""
    from moto.rds.models import rds_backends

    rds_backends[ACCOUNT][REGION].clusters[cluster_id].url_identifier = CLUSTER_URL_ID


def promote_read_replica(rds: RDSClient, identifier: str) -> None:
    """Promote a read replica to a standalone instance, as RDS reports it afterwards: no
    ``ReadReplicaSourceDBInstanceIdentifier``, and gone from its former primary's
    ``ReadReplicaDBInstanceIdentifiers``. moto's ``PromoteReadReplica`` keeps both (a gap,
    DESIGN.md section 5): they are cleared here, after the real call."""
    from moto.rds.models import rds_backends

    rds.promote_read_replica(DBInstanceIdentifier=identifier)
    backend = rds_backends[ACCOUNT][REGION]
    promoted = backend.databases[identifier]
    source = promoted.source_db_instance_identifier
    if source is not None:
        primary = backend.find_db_from_id(source)
        if identifier in primary.replicas:
            primary.remove_replica(promoted)
        promoted.source_db_instance_identifier = None


class EndpointMap:
    """Host name -> port on 127.0.0.1, applied to database connections while installed."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}

    def point(self, host: str, port: int) -> None:
        self.ports[host.lower()] = port

    def _target(self, host: object) -> int | None:
        return self.ports.get(host.lower()) if isinstance(host, str) else None

    @contextmanager
    def installed(self) -> Iterator[EndpointMap]:
        """Route psycopg2 and PyMySQL connections to mapped names; restored on exit."""
        import psycopg2

        connect, create_connection = psycopg2.connect, socket.create_connection

        def routed_connect(dsn: str | None = None, *args: Any, **kwargs: Any) -> Any:
            port = self._target(kwargs.get("host"))
            if port is not None:
                kwargs = {**kwargs, "hostaddr": "127.0.0.1", "port": port}
            return connect(dsn, *args, **kwargs)

        def routed_create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            port = self._target(address[0])
            return create_connection(("127.0.0.1", port) if port is not None else address, *args, **kwargs)

        psycopg2.connect = routed_connect
        socket.create_connection = routed_create_connection  # type: ignore[assignment]
        try:
            yield self
        finally:
            psycopg2.connect = connect
            socket.create_connection = create_connection


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
    ports: tuple[int, int],
    engine: str = "postgres",
) -> Database:
    """A DB instance with an RDS-managed master secret and one read replica, whose names
    reach ``ports`` (the writer's, the replica's) on 127.0.0.1."""
    writer_port, replica_port = ports
    identifier = _name("db")
    instance = rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine=engine,
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="admin",
        ManageMasterUserPassword=True,
    )["DBInstance"]
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier=f"{identifier}-replica", SourceDBInstanceIdentifier=identifier
    )
    endpoints.point(instance_address(identifier), writer_port)
    endpoints.point(instance_address(f"{identifier}-replica"), replica_port)
    hosts = instance_address(identifier), instance_address(f"{identifier}-replica")
    return _database(sm, "instance", identifier, hosts, instance)


def managed_cluster(
    rds: RDSClient,
    sm: SecretsManagerClient,
    endpoints: EndpointMap,
    ports: tuple[int, int],
    engine: str = "aurora-postgresql",
) -> Database:
    """A cluster (Aurora, or a Multi-AZ DB cluster when ``engine`` is ``postgres`` or
    ``mysql``) with an RDS-managed master secret and a writer and a reader instance, whose
    names reach ``ports`` (the writer's, the readers') on 127.0.0.1."""
    writer_port, reader_port = ports
    identifier = _name("cl")
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
        MasterUsername="admin",
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
    return _database(sm, "cluster", identifier, (cluster["Endpoint"], cluster["ReaderEndpoint"]), cluster)


def _database(
    sm: SecretsManagerClient, kind: str, identifier: str, hosts: tuple[str, str], described: Any
) -> Database:
    writer, reader = hosts
    arn = described["MasterUserSecret"]["SecretArn"]
    assert set(json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])) == {"username", "password"}
    # moto gives every database the same master user and password: give each its own, in
    # the form RDS stores (no host, no engine).
    master = {"username": _name("admin").replace("-", "_"), "password": secrets.token_urlsafe(24)}
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps(master))
    return Database(kind, identifier, writer, reader, arn, master["username"], master["password"])


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"
