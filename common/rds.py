"""Amazon RDS look-ups: where an RDS-managed master secret's database is, and which hosts
serve that database (writer, reader endpoint, reader instances, read replicas).

RDS keeps the master credentials of a database created with ``ManageMasterUserPassword``
in a secret it owns: its JSON holds only ``username`` and ``password``, and its system tag
``aws:rds:primaryDBInstanceArn`` or ``aws:rds:primaryDBClusterArn`` names the database.
The same ``DescribeDBInstances`` / ``DescribeDBClusters`` calls serve RDS instances and
their read replicas, Aurora clusters, Multi-AZ DB clusters and DocumentDB clusters.

Answers are kept for the container's life, up to ``cache_seconds``: a master's tags never
change, and a database's endpoints rarely do. A host that an answer from an earlier
rotation does not list is looked up once more before it is refused, so a replica added
since is found. The client
is built on the first look-up only: a rotation that never meets RDS never pays for it.

Both layers ship this module: the rotation functions complete master secrets with it, and
the application kit (``appkit.connections``) an application's own RDS-managed secret. It
imports nothing of the rotation core, and reads nothing from Secrets Manager: a secret's
tags are the caller's to read.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from common.awserrors import AwsFailure
from common.clients import CALL_SECONDS, build_rds_client
from common.errors import RdsError
from common.secret import DatabaseSecret

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import FilterTypeDef

INSTANCE_TAG = "aws:rds:primaryDBInstanceArn"
CLUSTER_TAG = "aws:rds:primaryDBClusterArn"
#: What the function's role needs for RDS-managed masters, readers and replicas.
DESCRIBE_PERMISSIONS = "rds:DescribeDBInstances and rds:DescribeDBClusters"
DEFAULT_CACHE_SECONDS = 900.0
# Host names RDS gives endpoints (commercial, China, DocumentDB).
RDS_DOMAINS = (".rds.amazonaws.com", ".rds.amazonaws.com.cn", ".docdb.amazonaws.com")
# RDS engine names whose secret ``engine`` key differs.
_SECRET_ENGINES = {"aurora": "aurora-mysql", "docdb": "mongo"}
#: Rotations an answer remembers being fetched in (interleaved rotations in one container).
_ROTATIONS_KEPT = 8
_NOT_FOUND = frozenset({"DBInstanceNotFound", "DBInstanceNotFoundFault", "DBClusterNotFoundFault"})

Kind = Literal["instance", "cluster"]
_Response = TypeVar("_Response")


def _no_limit(seconds: float, what: str) -> None:
    """Without a deadline every call may start."""


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
    addresses also serve it (read replicas, cluster members), and ``writer_ids`` the
    lower-case identifiers of those that write (a cluster's writer instance).
    """

    kind: Kind
    identifier: str
    engine: str
    writer: Endpoint
    endpoints: frozenset[str]
    member_ids: tuple[str, ...]
    writer_ids: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return f"DB {self.kind} {self.identifier!r}"


def system_tags(description: Mapping[str, Any]) -> dict[str, str]:
    """The ``aws:`` tags of a ``DescribeSecret`` answer: the ones only the service that
    owns the secret can set (an ``aws:rds:`` tag a user added is refused by AWS)."""
    tags = ((str(tag.get("Key")), str(tag.get("Value", ""))) for tag in description.get("Tags", []))
    return {key: tag_value for key, tag_value in tags if key.startswith("aws:")}


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
    host = normal_host(secret.host)
    if not host.endswith(RDS_DOMAINS):
        return None
    first, _, rest = host.partition(".")
    zone = rest.partition(".")[0]
    if zone.startswith("cluster-custom-"):
        return None
    return ("cluster" if zone.startswith("cluster-") else "instance"), first


@dataclass
class _Kept:
    """An answer RDS gave, when, and the rotations it was fetched in (token -> when)."""

    topology: Topology
    fetched_at: float
    rotations: dict[object, float]


class RdsDirectory:
    """RDS look-ups for the rotation; counts calls per operation in ``calls``.

    ``client`` is a ready client; without one, ``factory`` builds it on the first call.

    A host accepted because it is a reader instance or read replica is accepted on an
    answer fetched during the current rotation (:meth:`begin`): a replica promoted since
    the last rotation is a database of its own, and a kept answer must not outlive that.
    The later steps of the same rotation reuse the answer (no extra call), also when other
    rotations interleave with it in the container; a host that is one of the database's own
    endpoints (writer, reader, custom) needs no fresh answer, since those names never lead
    to another database. A warm container answers as a cold one would: an answer fetched
    again replaces every name that led to it, and a host is judged on a fresh answer for the
    identifier its secret names (a promoted replica's own, not its former primary's).
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
        # (kind, identifier or ARN, lower-case) -> the answer; several names share one.
        self._topologies: dict[tuple[Kind, str], _Kept] = {}
        self._member_hosts: dict[tuple[Kind, str], tuple[float, dict[str, str]]] = {}
        self._managed_databases: dict[str, tuple[Kind, str] | None] = {}
        self._rotation: object = object()
        self._require: Callable[[float, str], None] = _no_limit
        self.calls: Counter[str] = Counter()

    def begin(self, rotation: str | None, require: Callable[[float, str], None] = _no_limit) -> None:
        """Start answering for a rotation (its token); None: a scope of its own (a
        preflight). Membership answers from other rotations are looked up again. Each RDS
        call first asks ``require(seconds, what)`` (a step's deadline) whether
        :data:`CALL_SECONDS` are left; it raises when they are not."""
        self._rotation = rotation if rotation is not None else object()
        self._require = require

    # -- RDS-managed secrets ----------------------------------------------------------

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

    # -- topologies -------------------------------------------------------------------

    def topology(self, kind: Kind, identifier: str, *, refresh: bool = False) -> Topology:
        """The database an instance or cluster (identifier or ARN) belongs to: a read
        replica's is its primary's, a cluster member's its cluster's."""
        key = (kind, identifier.lower())
        kept = self._topologies.get(key)
        if kept is not None and not refresh and self._fresh(kept.fetched_at):
            return kept.topology
        topology = (
            self._describe_cluster(identifier) if kind == "cluster" else self._describe_instance(identifier)
        )
        now = self._clock()
        rotations = {} if kept is None else dict(kept.rotations)
        rotations[self._rotation] = now
        newest = sorted(rotations.items(), key=lambda item: item[1])[-_ROTATIONS_KEPT:]
        fresh = _Kept(topology, now, dict(newest))
        if kept is not None:  # every other name that led to the old answer asks again
            for name in [name for name, other in self._topologies.items() if other is kept]:
                if _names(name, topology):
                    self._topologies[name] = fresh
                else:
                    del self._topologies[name]
            self._member_hosts.pop(_key(kept.topology), None)
        self._topologies[key] = self._topologies[_key(topology)] = fresh
        if refresh:
            self._member_hosts.pop(_key(topology), None)
        return topology

    def serves(self, topology: Topology, host: str) -> bool:
        """Whether ``host`` is one of the database's hosts (writer, reader endpoint, a
        reader instance or read replica); looks again once before saying no, and before
        saying yes to a member on an answer from before this rotation."""
        return self._serving(topology, host, _key(topology)) is not None

    def writer_for(self, secret: DatabaseSecret) -> Endpoint:
        """Where the password of a secret on a read-only replica changes: the writer of
        the database its ``dbClusterIdentifier``, ``dbInstanceIdentifier`` or host names."""
        database = database_of_secret(secret)
        if database is None:
            raise RdsError(
                f"{secret.host} is a read-only replica and its writer cannot be found: the secret has "
                "no 'dbClusterIdentifier' or 'dbInstanceIdentifier' key and its host is not an RDS endpoint"
            )
        named = self.topology(*database)
        serving = self._serving(named, secret.host, database)
        if serving is None:
            name = self._topologies[(database[0], database[1].lower())].topology.name
            raise RdsError(f"host {secret.host!r} is not one of the hosts of RDS {name}")
        return serving.writer

    def is_reader(self, secret: DatabaseSecret) -> bool:
        """Whether RDS lists the secret's host as a reader of its database (a reader
        endpoint, a reader instance, a read replica; a cluster's writer instance is not
        one); False when the secret names no RDS database or RDS cannot say."""
        database = database_of_secret(secret)
        if database is None:
            return False
        try:
            topology = self._serving(self.topology(*database), secret.host, database)
        except RdsError:
            return False
        if topology is None:
            return False
        host = normal_host(secret.host)
        if host == normal_host(topology.writer.host):
            return False
        member = self._member_of(topology, host)
        return member is None or member.lower() not in topology.writer_ids

    def shared_database(self, master: DatabaseSecret, other: DatabaseSecret) -> Topology | None:
        """For a master secret that keeps its own ``host``: the RDS database both secrets'
        hosts belong to, or None (no RDS database named, or not both members)."""
        database = database_of_secret(master)
        if database is None:
            return None
        topology = self._serving(self.topology(*database), master.host, database)
        if topology is not None and self._serving(topology, other.host, database) is not None:
            return topology
        return None

    def _serving(self, topology: Topology, host: str, named: tuple[Kind, str]) -> Topology | None:
        """The answer in effect for the database ``named`` (kind, identifier or ARN), whose
        answer ``topology`` is, when it lists ``host``; else None. A member on an answer
        from before this rotation is judged on a fresh one for ``named``, so a promoted
        replica is its own database; an answer fetched in this rotation is final for it."""
        if normal_host(host) in topology.endpoints:
            return topology
        kept = self._topologies.get((named[0], named[1].lower()))
        if kept is not None and self._rotation in kept.rotations:
            return kept.topology if self._member_of(kept.topology, host) is not None else None
        topology = self.topology(*named, refresh=True)
        listed = normal_host(host) in topology.endpoints or self._member_of(topology, host) is not None
        return topology if listed else None

    def _member_of(self, topology: Topology, host: str) -> str | None:
        """The identifier of the member instance whose address ``host`` is, or None."""
        host = normal_host(host)
        if not topology.member_ids:
            return None
        named = _member_addresses(topology)
        if host in named:
            return named[host]
        key = _key(topology)
        kept = self._member_hosts.get(key)
        if kept is None or not self._fresh(kept[0]):
            kept = self._member_hosts[key] = (self._clock(), self._member_addresses(topology.member_ids))
        return kept[1].get(host)

    # -- RDS calls: one method per operation, each through _shaped ---------------------

    def _describe_instance(self, identifier: str) -> Topology:
        instance = self._one(
            "DB instance",
            identifier,
            lambda: self._shaped(
                "DescribeDBInstances", lambda rds: rds.describe_db_instances(DBInstanceIdentifier=identifier)
            ).get("DBInstances", []),
        )
        if instance.get("DBClusterIdentifier"):  # Aurora or Multi-AZ DB cluster member
            return self._describe_cluster(str(instance["DBClusterIdentifier"]))
        source = instance.get("ReadReplicaSourceDBInstanceIdentifier")
        if source:  # a read replica: the database is its primary's
            primary = self._describe_instance(str(source))
            own = str(instance["DBInstanceIdentifier"])
            if own.lower() in {member.lower() for member in primary.member_ids}:
                return primary
            # A cascaded replica (a replica of a replica) serves the primary too, though
            # the primary lists only its direct replicas.
            return dataclasses.replace(primary, member_ids=(*primary.member_ids, own))
        endpoint = instance.get("Endpoint") or {}
        if not endpoint.get("Address"):
            status = instance.get("DBInstanceStatus")
            raise RdsError(f"RDS DB instance {identifier!r} has no endpoint yet (status {status!r})")
        return Topology(
            kind="instance",
            identifier=str(instance["DBInstanceIdentifier"]),
            engine=_secret_engine(str(instance.get("Engine", ""))),
            writer=Endpoint(str(endpoint["Address"]), int(endpoint["Port"])),
            endpoints=frozenset({normal_host(str(endpoint["Address"]))}),
            member_ids=tuple(str(i) for i in instance.get("ReadReplicaDBInstanceIdentifiers", [])),
        )

    def _describe_cluster(self, identifier: str) -> Topology:
        cluster = self._one(
            "DB cluster",
            identifier,
            lambda: self._shaped(
                "DescribeDBClusters", lambda rds: rds.describe_db_clusters(DBClusterIdentifier=identifier)
            ).get("DBClusters", []),
        )
        if not cluster.get("Endpoint") or not cluster.get("Port"):
            raise RdsError(
                f"RDS DB cluster {identifier!r} has no endpoint yet (status {cluster.get('Status')!r})"
            )
        hosts = [cluster["Endpoint"], cluster.get("ReaderEndpoint"), *cluster.get("CustomEndpoints", [])]
        members = cluster.get("DBClusterMembers", [])
        return Topology(
            kind="cluster",
            identifier=str(cluster["DBClusterIdentifier"]),
            engine=_secret_engine(str(cluster.get("Engine", ""))),
            writer=Endpoint(str(cluster["Endpoint"]), int(cluster["Port"])),
            endpoints=frozenset(normal_host(str(host)) for host in hosts if host),
            member_ids=tuple(str(m["DBInstanceIdentifier"]) for m in members),
            writer_ids=frozenset(
                str(m["DBInstanceIdentifier"]).lower() for m in members if m.get("IsClusterWriter")
            ),
        )

    def _member_addresses(self, member_ids: tuple[str, ...]) -> dict[str, str]:
        """Address -> identifier of the instances ``member_ids``, as RDS lists them."""
        members: list[FilterTypeDef] = [{"Name": "db-instance-id", "Values": list(member_ids)}]
        response = self._shaped("DescribeDBInstances", lambda rds: rds.describe_db_instances(Filters=members))
        return {
            normal_host(str(instance["Endpoint"]["Address"])): str(instance["DBInstanceIdentifier"])
            for instance in response.get("DBInstances", [])
            if (instance.get("Endpoint") or {}).get("Address")
        }

    @staticmethod
    def _one(what: str, identifier: str, items: Callable[[], Sequence[Any]]) -> dict[str, Any]:
        try:
            found = items()
        except RdsError as error:
            if error.code in _NOT_FOUND:
                raise RdsError(
                    f"RDS has no {what} {identifier!r} in this account and region", error.code
                ) from error
            raise
        if not found:
            raise RdsError(f"RDS has no {what} {identifier!r} in this account and region")
        item: dict[str, Any] = dict(found[0])
        return item

    def _shaped(self, operation: str, call: Callable[[RDSClient], _Response]) -> _Response:
        """Run one RDS call (``operation`` names it for the count and the messages) and
        turn what it raises into RdsError (``common.awserrors`` reads the failure): every
        RDS call goes through here."""
        self._require(CALL_SECONDS, f"calling rds:{operation}")
        self.calls[operation] += 1
        client = self._rds()
        try:
            return call(client)
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

    def _rds(self) -> RDSClient:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def _fresh(self, fetched_at: float) -> bool:
        return self._clock() - fetched_at < self._cache_seconds


def _key(topology: Topology) -> tuple[Kind, str]:
    return topology.kind, topology.identifier.lower()


def _names(name: tuple[Kind, str], topology: Topology) -> bool:
    """Whether ``name`` (kind, lower-case identifier or ARN) is the database's own name."""
    kind, identifier = name
    own = topology.identifier.lower()
    arn_kind = "cluster" if topology.kind == "cluster" else "db"
    return kind == topology.kind and (identifier == own or identifier.endswith(f":{arn_kind}:{own}"))


def _member_addresses(topology: Topology) -> dict[str, str]:
    """The members' addresses as RDS spells them, without a call: ``<instance id>.`` and the
    zone of the writer's endpoint (``<id>.cluster-<zone>`` for a cluster), which is the
    account's and region's. A member elsewhere (another region) is found by the call."""
    first_label_removed = normal_host(topology.writer.host).partition(".")[2]
    zone = first_label_removed.removeprefix("cluster-") if topology.kind == "cluster" else first_label_removed
    return {f"{member.lower()}.{zone}": member for member in topology.member_ids}


def _secret_engine(rds_engine: str) -> str:
    return _SECRET_ENGINES.get(rds_engine, rds_engine)


def normal_host(host: str) -> str:
    """A host name as DNS compares it: no case, no surrounding blanks, no final dot."""
    return host.strip().lower().rstrip(".")


def same_host(one: str, other: str) -> bool:
    """Whether two spellings name one host (:func:`normal_host`)."""
    return normal_host(one) == normal_host(other)
