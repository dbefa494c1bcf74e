"""Amazon RDS look-ups: where an RDS-managed master secret's database is, and which hosts
serve that database (writer, reader endpoint, reader instances, read replicas).

RDS keeps the master credentials of a database created with ``ManageMasterUserPassword``
in a secret it owns: its JSON holds only ``username`` and ``password``, and its system tag
``aws:rds:primaryDBInstanceArn`` or ``aws:rds:primaryDBClusterArn`` names the database.
The same ``DescribeDBInstances`` / ``DescribeDBClusters`` calls serve RDS instances and
their read replicas, Aurora clusters, Multi-AZ DB clusters and DocumentDB clusters.

Answers are kept for the container's life, up to ``cache_seconds``: a master's tags never
change, and a database's endpoints rarely do. A host that a kept answer does not list is
looked up once more before it is refused, so a replica added since is found. The client
is built on the first look-up only: a rotation that never meets RDS never pays for it.

Both layers ship this module: the rotation functions complete master secrets with it, and
the application kit (``appkit.connections``) an application's own RDS-managed secret. It
imports nothing of the rotation core.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from common.awserrors import DENIED, AwsFailure
from common.clients import build_rds_client
from common.errors import RdsError, SecretsManagerError
from common.secret import DatabaseSecret

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_rds import RDSClient

    from common.secretsmanager import SecretStore

INSTANCE_TAG = "aws:rds:primaryDBInstanceArn"
CLUSTER_TAG = "aws:rds:primaryDBClusterArn"
#: What the function's role needs for RDS-managed masters, readers and replicas.
DESCRIBE_PERMISSIONS = "rds:DescribeDBInstances and rds:DescribeDBClusters"
DEFAULT_CACHE_SECONDS = 900.0
MASTER_WHAT = "the master secret (key 'masterarn')"
# Host names RDS gives endpoints (commercial, China, DocumentDB).
_RDS_DOMAINS = (".rds.amazonaws.com", ".rds.amazonaws.com.cn", ".docdb.amazonaws.com")
# RDS engine names whose secret ``engine`` key differs.
_SECRET_ENGINES = {"aurora": "aurora-mysql", "docdb": "mongo"}
_NOT_FOUND = frozenset({"DBInstanceNotFound", "DBInstanceNotFoundFault", "DBClusterNotFoundFault"})

Kind = Literal["instance", "cluster"]


@dataclass(frozen=True)
class Endpoint:
    """A host name and port RDS gives a database."""

    host: str
    port: int


@dataclass(frozen=True)
class Topology:
    """One RDS database: an instance with its read replicas, or a cluster.

    ``engine`` is the secret's spelling (``aurora-mysql``, ``mongo``...); ``endpoints`` are
    the lower-case host names RDS gives the database itself (the instance's address, or the
    cluster, reader and custom endpoints); ``member_ids`` are the instances whose own
    addresses also serve it (read replicas, cluster members).
    """

    kind: Kind
    identifier: str
    engine: str
    writer: Endpoint
    endpoints: frozenset[str]
    member_ids: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"DB {self.kind} {self.identifier!r}"


def database_of_tags(tags: Mapping[str, str]) -> tuple[Kind, str] | None:
    """The database an RDS-managed secret's system tag names (its ARN), or None."""
    if tags.get(CLUSTER_TAG):
        return "cluster", tags[CLUSTER_TAG]
    if tags.get(INSTANCE_TAG):
        return "instance", tags[INSTANCE_TAG]
    return None


def database_of_secret(secret: DatabaseSecret) -> tuple[Kind, str] | None:
    """The RDS database a secret names: its ``dbClusterIdentifier`` or
    ``dbInstanceIdentifier`` key, else its host when that is an RDS endpoint name
    (``<id>.cluster-...`` and ``<id>.cluster-ro-...`` for clusters, ``<id>....`` for
    instances; a custom endpoint's name is not its cluster's, so it needs the key)."""
    for key, kind in (("dbClusterIdentifier", "cluster"), ("dbInstanceIdentifier", "instance")):
        value = secret.raw.get(key)
        if isinstance(value, str) and value.strip():
            return ("cluster" if kind == "cluster" else "instance"), value.strip()
    host = _normal(secret.host)
    if not host.endswith(_RDS_DOMAINS):
        return None
    first, _, rest = host.partition(".")
    zone = rest.partition(".")[0]
    if zone.startswith("cluster-custom-"):
        return None
    return ("cluster" if zone.startswith("cluster-") else "instance"), first


class RdsDirectory:
    """RDS look-ups for the rotation; counts calls per operation in ``calls``.

    ``client`` is a ready client; without one, ``factory`` builds it on the first call.
    """

    def __init__(
        self,
        client: RDSClient | None = None,
        *,
        factory: Callable[[], RDSClient] = build_rds_client,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._factory = factory
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._topologies: dict[tuple[Kind, str], tuple[float, Topology]] = {}
        self._member_hosts: dict[tuple[Kind, str], tuple[float, frozenset[str]]] = {}
        self._managed_databases: dict[str, tuple[Kind, str] | None] = {}
        self.calls: Counter[str] = Counter()

    # -- master secrets -------------------------------------------------------------

    def master_secret(
        self, store: SecretStore, masterarn: str, user: DatabaseSecret
    ) -> tuple[DatabaseSecret, Topology | None]:
        """The master secret's current value, completed from RDS when RDS manages it
        (``completed``); ``dbname`` is the user secret's, as AWS's functions take it."""
        raw = store.current_object(masterarn, MASTER_WHAT)
        return self.completed(
            masterarn,
            raw,
            f"{MASTER_WHAT} AWSCURRENT",
            lambda: self._master_tags(store, masterarn),
            dbname=user.dbname,
        )

    def completed(
        self,
        secret_id: str,
        raw: dict[str, Any],
        where: str,
        tags: Callable[[], Mapping[str, str]],
        *,
        dbname: str | None = None,
    ) -> tuple[DatabaseSecret, Topology | None]:
        """The secret ``secret_id``'s value ``raw``, completed from RDS when RDS manages it.

        Shared by the rotation (master secrets) and the application kit (an application's
        own secret). A value with ``host`` and ``engine`` is taken as it is (no call).
        Otherwise the secret's ``tags`` (called once per container per secret) name its
        RDS database and host, port and engine come from RDS (the writer); ``dbname`` is
        the one given; the value's own ``dbname``, ``ssl`` and ``ca_bundle`` are dropped, so
        TLS stays the caller's default. Returns the topology, if read. A value that RDS does not
        manage and lacks a key fails naming the key.
        """
        if "host" in raw and "engine" in raw:
            return DatabaseSecret.from_dict(raw, where), None
        if secret_id not in self._managed_databases:
            self._managed_databases[secret_id] = database_of_tags(tags())
        database = self._managed_databases[secret_id]
        if database is None:
            return DatabaseSecret.from_dict(raw, where), None  # names the missing key
        topology = self.topology(*database)
        completed = {key: value for key, value in raw.items() if key not in ("dbname", "ssl", "ca_bundle")}
        completed.update(engine=topology.engine, host=topology.writer.host, port=topology.writer.port)
        if dbname:
            completed["dbname"] = dbname
        return DatabaseSecret.from_dict(completed, f"{where} ({topology.name} from RDS)"), topology

    @staticmethod
    def _master_tags(store: SecretStore, masterarn: str) -> dict[str, str]:
        try:
            return store.tags(masterarn)
        except SecretsManagerError as error:
            if error.code in DENIED:
                raise SecretsManagerError(
                    f"secretsmanager:DescribeSecret on the master secret was refused ({error.code}): "
                    "the function reads its tags to find an RDS-managed master's database",
                    error.code,
                ) from error
            raise

    # -- topologies -------------------------------------------------------------------

    def topology(self, kind: Kind, identifier: str, *, refresh: bool = False) -> Topology:
        """The database an instance or cluster (identifier or ARN) belongs to: a read
        replica's is its primary's, a cluster member's its cluster's."""
        key = (kind, identifier.lower())
        kept = self._topologies.get(key)
        if kept is not None and not refresh and self._fresh(kept[0]):
            return kept[1]
        topology = (
            self._describe_cluster(identifier) if kind == "cluster" else self._describe_instance(identifier)
        )
        now = self._clock()
        self._topologies[key] = self._topologies[(topology.kind, topology.identifier.lower())] = (
            now,
            topology,
        )
        if refresh:
            self._member_hosts.pop((topology.kind, topology.identifier.lower()), None)
        return topology

    def serves(self, topology: Topology, host: str) -> bool:
        """Whether ``host`` is one of the database's hosts (writer, reader endpoint, a
        reader instance or read replica); looks again once before saying no."""
        if self._lists(topology, host):
            return True
        return self._lists(self.topology(topology.kind, topology.identifier, refresh=True), host)

    def writer_for(self, secret: DatabaseSecret) -> Endpoint:
        """Where the password of a secret on a read-only replica changes: the writer of
        the database its ``dbClusterIdentifier``, ``dbInstanceIdentifier`` or host names."""
        database = database_of_secret(secret)
        if database is None:
            raise RdsError(
                f"{secret.host} is a read-only replica and its writer cannot be found: the secret has "
                "no 'dbClusterIdentifier' or 'dbInstanceIdentifier' key and its host is not an RDS endpoint"
            )
        topology = self.topology(*database)
        if not self.serves(topology, secret.host):
            raise RdsError(f"host {secret.host!r} is not one of the hosts of RDS {topology.name}")
        return topology.writer

    def is_reader(self, secret: DatabaseSecret) -> bool:
        """Whether RDS lists the secret's host as a reader of its database; False when
        the secret names no RDS database or RDS cannot say."""
        database = database_of_secret(secret)
        if database is None:
            return False
        try:
            topology = self.topology(*database)
            return _normal(secret.host) != _normal(topology.writer.host) and self.serves(
                topology, secret.host
            )
        except RdsError:
            return False

    def shared_database(self, master: DatabaseSecret, other: DatabaseSecret) -> Topology | None:
        """For a master secret that keeps its own ``host``: the RDS database both secrets'
        hosts belong to, or None (no RDS database named, or not both members)."""
        database = database_of_secret(master)
        if database is None:
            return None
        topology = self.topology(*database)
        if self.serves(topology, master.host) and self.serves(topology, other.host):
            return topology
        return None

    # -- RDS calls ------------------------------------------------------------------

    def _describe_instance(self, identifier: str) -> Topology:
        instance = self._one(
            "DescribeDBInstances", "DBInstances", "DB instance", DBInstanceIdentifier=identifier
        )
        if instance.get("DBClusterIdentifier"):  # Aurora or Multi-AZ DB cluster member
            return self._describe_cluster(str(instance["DBClusterIdentifier"]))
        source = instance.get("ReadReplicaSourceDBInstanceIdentifier")
        if source:  # a read replica: the database is its primary's
            return self._describe_instance(str(source))
        endpoint = instance.get("Endpoint") or {}
        if not endpoint.get("Address"):
            status = instance.get("DBInstanceStatus")
            raise RdsError(f"RDS DB instance {identifier!r} has no endpoint yet (status {status!r})")
        return Topology(
            kind="instance",
            identifier=str(instance["DBInstanceIdentifier"]),
            engine=_secret_engine(str(instance.get("Engine", ""))),
            writer=Endpoint(str(endpoint["Address"]), int(endpoint["Port"])),
            endpoints=frozenset({_normal(str(endpoint["Address"]))}),
            member_ids=tuple(str(i) for i in instance.get("ReadReplicaDBInstanceIdentifiers", [])),
        )

    def _describe_cluster(self, identifier: str) -> Topology:
        cluster = self._one("DescribeDBClusters", "DBClusters", "DB cluster", DBClusterIdentifier=identifier)
        if not cluster.get("Endpoint") or not cluster.get("Port"):
            raise RdsError(
                f"RDS DB cluster {identifier!r} has no endpoint yet (status {cluster.get('Status')!r})"
            )
        hosts = [cluster["Endpoint"], cluster.get("ReaderEndpoint"), *cluster.get("CustomEndpoints", [])]
        return Topology(
            kind="cluster",
            identifier=str(cluster["DBClusterIdentifier"]),
            engine=_secret_engine(str(cluster.get("Engine", ""))),
            writer=Endpoint(str(cluster["Endpoint"]), int(cluster["Port"])),
            endpoints=frozenset(_normal(str(host)) for host in hosts if host),
            member_ids=tuple(str(m["DBInstanceIdentifier"]) for m in cluster.get("DBClusterMembers", [])),
        )

    def _lists(self, topology: Topology, host: str) -> bool:
        host = _normal(host)
        if host in topology.endpoints:
            return True
        if not topology.member_ids:
            return False
        if host in _member_addresses(topology):
            return True
        key = (topology.kind, topology.identifier.lower())
        kept = self._member_hosts.get(key)
        if kept is None or not self._fresh(kept[0]):
            response = self._call(
                "DescribeDBInstances",
                Filters=[{"Name": "db-instance-id", "Values": list(topology.member_ids)}],
            )
            addresses = frozenset(
                _normal(str(instance["Endpoint"]["Address"]))
                for instance in response.get("DBInstances", [])
                if (instance.get("Endpoint") or {}).get("Address")
            )
            kept = self._member_hosts[key] = (self._clock(), addresses)
        return host in kept[1]

    def _one(self, operation: str, field: str, what: str, **arguments: Any) -> dict[str, Any]:
        identifier = next(iter(arguments.values()))
        try:
            items = self._call(operation, **arguments).get(field, [])
        except RdsError as error:
            if error.code in _NOT_FOUND:
                raise RdsError(
                    f"RDS has no {what} {identifier!r} in this account and region", error.code
                ) from error
            raise
        if not items:
            raise RdsError(f"RDS has no {what} {identifier!r} in this account and region")
        item: dict[str, Any] = items[0]
        return item

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        self.calls[operation] += 1
        client = self._rds()
        method = (
            client.describe_db_clusters if operation == "DescribeDBClusters" else client.describe_db_instances
        )
        try:
            response: dict[str, Any] = method(**arguments)  # type: ignore[assignment]
        except Exception as error:
            failure = AwsFailure.of(error)
            if failure is None:
                raise
            if failure.denied:
                raise RdsError(
                    f"rds:{operation} was refused ({failure.code}): the function's role needs "
                    f"{DESCRIBE_PERMISSIONS} to find the database of an RDS-managed master secret or of a "
                    "read replica",
                    failure.code,
                ) from error
            raise RdsError(failure.summary(f"rds:{operation}"), failure.code) from error
        return response

    def _rds(self) -> RDSClient:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def _fresh(self, fetched_at: float) -> bool:
        return self._clock() - fetched_at < self._cache_seconds


def _member_addresses(topology: Topology) -> frozenset[str]:
    """The members' addresses as RDS spells them, without a call: ``<instance id>.`` and the
    zone of the writer's endpoint (``<id>.cluster-<zone>`` for a cluster), which is the
    account's and region's. A member elsewhere (another region) is found by the call."""
    first_label_removed = _normal(topology.writer.host).partition(".")[2]
    zone = first_label_removed.removeprefix("cluster-") if topology.kind == "cluster" else first_label_removed
    return frozenset(f"{member.lower()}.{zone}" for member in topology.member_ids)


def _secret_engine(rds_engine: str) -> str:
    return _SECRET_ENGINES.get(rds_engine, rds_engine)


def _normal(host: str) -> str:
    return host.strip().lower().rstrip(".")
