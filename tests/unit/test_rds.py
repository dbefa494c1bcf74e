"""RDS look-ups against moto's RDS: which database a secret names, the hosts that serve it,
what is kept per container, and the bounded replica wait."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from common.errors import DatabaseLoginError, RdsError
from common.rds import RdsDirectory, database_of_secret, database_of_tags
from common.replicas import ReplicaWait
from common.rotation import STEPS
from common.secret import DatabaseSecret
from devtools.rds_endpoints import (
    EndpointMap,
    instance_address,
    managed_cluster,
    managed_instance,
    promote_read_replica,
)
from tests.conftest import REGION
from tests.fake_engine import FakeDatabase, FakeEngine, FakeSession

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.rds_endpoints import Database


def secret(host: str, **extra: Any) -> DatabaseSecret:
    body = {"engine": "postgres", "host": host, "username": "u", "password": "p", **extra}
    return DatabaseSecret.from_dict(body, "test")


@pytest.mark.parametrize(
    ("host", "extra", "expected"),
    [
        ("db1.abc123xyz.us-east-1.rds.amazonaws.com", {}, ("instance", "db1")),
        ("Cl1.Cluster-abc123xyz.us-east-1.rds.amazonaws.com.", {}, ("cluster", "cl1")),
        ("cl1.cluster-ro-abc123xyz.eu-west-1.rds.amazonaws.com", {}, ("cluster", "cl1")),
        ("mine.cluster-custom-abc123xyz.eu-west-1.rds.amazonaws.com", {}, None),
        ("db.example.internal", {}, None),
        ("db.example.internal", {"dbInstanceIdentifier": "db1"}, ("instance", "db1")),
        (
            "db.example.internal",
            {"dbClusterIdentifier": "cl1", "dbInstanceIdentifier": "x"},
            ("cluster", "cl1"),
        ),
    ],
)
def test_the_database_a_secret_names(host: str, extra: dict[str, str], expected: Any) -> None:
    assert database_of_secret(secret(host, **extra)) == expected


def test_the_database_an_rds_managed_secret_names() -> None:
    arn = "arn:aws:rds:us-east-1:123456789012:cluster:cl1"
    assert database_of_tags({"aws:rds:primaryDBClusterArn": arn}) == ("cluster", arn)
    assert database_of_tags({"aws:secretsmanager:owningService": "rds"}) is None


@pytest.fixture
def rds(sm_client: SecretsManagerClient) -> RDSClient:
    return boto3.client("rds", region_name=REGION)


def test_replica_found_from_rds_naming_without_a_call_and_kept(
    rds: RDSClient, sm_client: SecretsManagerClient
) -> None:
    database = managed_instance(rds, sm_client, EndpointMap(), (1, 2))
    directory = RdsDirectory(rds)
    topology = directory.topology("instance", database.identifier)
    assert topology.writer.host == database.writer and topology.engine == "postgres"
    assert directory.serves(topology, database.reader.upper())
    assert directory.topology("instance", f"{database.identifier}-replica") == topology  # its primary's
    assert directory.writer_for(secret(database.reader)) == topology.writer
    assert directory.is_reader(secret(database.reader)) and not directory.is_reader(secret(database.writer))
    # The primary; then the replica's record and its primary's, once: the rest is kept.
    assert directory.calls == {"DescribeDBInstances": 3}


def test_cluster_members_and_a_replica_added_later(rds: RDSClient, sm_client: SecretsManagerClient) -> None:
    database = managed_cluster(rds, sm_client, EndpointMap(), (1, 2))
    clock = [0.0]
    directory = RdsDirectory(rds, cache_seconds=60, clock=lambda: clock[0])
    topology = directory.topology("cluster", database.identifier)
    assert directory.serves(topology, database.reader)  # an endpoint: no member look-up
    assert directory.calls.total() == 1
    assert directory.serves(topology, instance_address(f"{database.identifier}-b"))
    assert directory.calls == {"DescribeDBClusters": 1, "DescribeDBInstances": 1}
    rds.create_db_instance(
        DBInstanceIdentifier=f"{database.identifier}-c",
        DBClusterIdentifier=database.identifier,
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )
    # An answer fetched in a rotation is final for it; the next rotation looks again.
    assert not directory.serves(topology, instance_address(f"{database.identifier}-c"))
    directory.begin("a-later-rotation")
    assert directory.serves(topology, instance_address(f"{database.identifier}-c"))  # looked up again
    assert not directory.serves(topology, instance_address("elsewhere"))
    clock[0] = 61.0
    calls = directory.calls.total()
    directory.topology("cluster", database.identifier)
    assert directory.calls.total() == calls + 1  # the kept answer expired


def test_unknown_database_and_denied_look_ups_are_named(rds: RDSClient) -> None:
    directory = RdsDirectory(rds)
    with pytest.raises(RdsError, match="RDS has no DB cluster 'nope' in this account and region"):
        directory.topology("cluster", "nope")
    with pytest.raises(RdsError, match="read-only replica and its writer cannot be found"):
        directory.writer_for(secret("10.0.0.5"))
    assert not directory.is_reader(secret("nope.abc.us-east-1.rds.amazonaws.com"))


def test_the_client_is_built_on_the_first_look_up_only() -> None:
    built: list[int] = []

    def factory() -> Any:
        built.append(1)
        raise AssertionError("not expected")

    directory = RdsDirectory(factory=factory)
    assert directory.is_reader(secret("db.example.internal")) is False
    assert built == []


class Clock:
    """Time that passes only when slept; the sleeps are kept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_login_wait_is_bounded_and_backs_off() -> None:
    clock = Clock()
    wait = ReplicaWait(FakeEngine(FakeDatabase()), 5, clock=clock, sleep=clock.sleep)
    sleeps = clock.sleeps

    def refused() -> None:
        raise DatabaseLoginError("db:5432 refused the AWSPENDING credentials for user 'u'")

    with pytest.raises(DatabaseLoginError, match="after waiting 5 s for the replica"):
        wait.for_login(refused)
    assert sleeps[:3] == [0.02, 0.04, 0.08] and max(sleeps) == 1.0
    assert wait.waits == [("login", 5.0)]

    attempts = iter([False, False, True])

    def third_time() -> None:
        if not next(attempts):
            raise DatabaseLoginError("refused")

    wait.for_login(third_time)
    how, seconds = wait.waits[-1]
    assert how == "login" and seconds == pytest.approx(0.06)


class BehindReplica(FakeEngine):
    """A replica that never reaches the writer's position."""

    def has_replayed(self, connection: Any, position: str) -> bool | None:
        return False


def test_position_wait_gives_up_in_time_without_failing_the_step() -> None:
    clock = Clock()
    wait = ReplicaWait(BehindReplica(FakeDatabase()), 2, clock=clock, sleep=clock.sleep)
    wait.for_position(FakeSession("u"), "0/3000060")  # logged, not raised: testSecret's login decides
    assert wait.waits == [("position", 2.0)]
    wait.for_position(FakeSession("u"), None)  # an engine that cannot tell: no wait at all
    assert len(wait.waits) == 1


def test_a_clusters_writer_instance_is_not_a_reader(rds: RDSClient, sm_client: SecretsManagerClient) -> None:
    database = managed_cluster(rds, sm_client, EndpointMap(), (1, 2))
    directory = RdsDirectory(rds)
    named = {"dbClusterIdentifier": database.identifier}
    assert not directory.is_reader(secret(instance_address(f"{database.identifier}-a"), **named))
    assert directory.is_reader(secret(instance_address(f"{database.identifier}-b"), **named))
    assert directory.is_reader(secret(database.reader)) and not directory.is_reader(secret(database.writer))


def promoted_outcome(directory: RdsDirectory, database: Database, rotation: str) -> tuple[str, bool, int]:
    """What one single-user rotation after the promotion sees for a secret on the former
    replica (every step): its writer, whether it is a reader; and the RDS calls made."""
    on_replica = secret(database.reader)
    calls = directory.calls.total()
    directory.begin(rotation)
    outcome = (directory.writer_for(on_replica).host, directory.is_reader(on_replica))
    for _ in range(3):  # the later steps of the same rotation: nothing asked again
        assert (directory.writer_for(on_replica).host, directory.is_reader(on_replica)) == outcome
    return (*outcome, directory.calls.total() - calls)


def test_a_promoted_replica_is_looked_up_again_once_per_rotation(
    rds: RDSClient, sm_client: SecretsManagerClient
) -> None:
    """A warm container answers as a cold one, before and after the replica's promotion."""
    database = managed_instance(rds, sm_client, EndpointMap(), (1, 2))
    directory = RdsDirectory(rds)  # kept answers live 15 minutes: far longer than this test
    on_replica = secret(database.reader)
    directory.begin("rotation-1")
    assert directory.writer_for(on_replica).host == database.writer
    calls = directory.calls.total()
    for _ in range(3):  # the later steps of the same rotation: nothing asked again
        assert directory.is_reader(on_replica) and directory.writer_for(on_replica).host == database.writer
    assert directory.calls.total() == calls
    directory.begin("rotation-2")  # unchanged: the replica's record and its primary's, as cold
    assert directory.is_reader(on_replica)
    assert directory.calls.total() == calls + 2

    promote_read_replica(rds, f"{database.identifier}-replica")
    assert directory.is_reader(on_replica)  # still rotation 2: its answer stands
    # The promoted instance is its own writer (its password changes in place); its former
    # primary no longer lists it. Warm (this directory) and cold (a new one) alike.
    warm = promoted_outcome(directory, database, "rotation-3")
    cold = promoted_outcome(RdsDirectory(rds), database, "rotation-3")
    assert warm == cold == (database.reader, False, 1)
    assert promoted_outcome(directory, database, "rotation-4") == (database.reader, False, 0)
    for fresh in (directory, RdsDirectory(rds)):  # an alternating pair's master: refused alike
        fresh.begin("rotation-5")
        primary = fresh.topology("instance", database.identifier)
        assert not fresh.serves(primary, database.reader)
    # The database's own name needs no fresh answer: it never leads to another database.
    calls = directory.calls.total()
    directory.begin("rotation-6")
    assert directory.serves(directory.topology("instance", database.identifier), database.writer)
    assert directory.calls.total() == calls


def test_interleaved_rotations_in_one_container_look_up_once_each(
    rds: RDSClient, sm_client: SecretsManagerClient
) -> None:
    """Two secrets on the replica rotate at once in one warm container, their steps
    interleaved: each rotation asks RDS once (the replica's record and its primary's), not
    once per step."""
    database = managed_instance(rds, sm_client, EndpointMap(), (1, 2))
    directory = RdsDirectory(rds)
    on_replica = secret(database.reader)
    directory.begin("warm-up")
    directory.writer_for(on_replica)
    calls = directory.calls.total()
    for _ in STEPS:
        for rotation in ("rotation-a", "rotation-b"):
            directory.begin(rotation)
            assert directory.writer_for(on_replica).host == database.writer
            assert directory.is_reader(on_replica)
    assert directory.calls.total() - calls == 2 * 2


def test_a_member_in_another_zone_is_found_by_its_identifier() -> None:
    """A member whose address is not ``<id>.<the writer's zone>`` (another region, say)
    is found by one DescribeDBInstances call filtered on the members' identifiers."""
    from botocore.stub import Stubber

    client = boto3.client("rds", region_name=REGION)
    zone, elsewhere = "abc.us-east-1.rds.amazonaws.com", "def.eu-west-1.rds.amazonaws.com"
    cluster = {
        "DBClusterIdentifier": "cl1",
        "Engine": "aurora-postgresql",
        "Endpoint": f"cl1.cluster-{zone}",
        "ReaderEndpoint": f"cl1.cluster-ro-{zone}",
        "Port": 5432,
        "DBClusterMembers": [
            {"DBInstanceIdentifier": "cl1-a", "IsClusterWriter": True},
            {"DBInstanceIdentifier": "cl1-far", "IsClusterWriter": False},
        ],
    }
    instances = [
        {"DBInstanceIdentifier": "cl1-a", "Endpoint": {"Address": f"cl1-a.{zone}", "Port": 5432}},
        {"DBInstanceIdentifier": "cl1-far", "Endpoint": {"Address": f"CL1-FAR.{elsewhere}", "Port": 5432}},
    ]
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_db_clusters", {"DBClusters": [cluster]}, {"DBClusterIdentifier": "cl1"}
        )
        stubber.add_response(
            "describe_db_instances",
            {"DBInstances": instances},
            {"Filters": [{"Name": "db-instance-id", "Values": ["cl1-a", "cl1-far"]}]},
        )
        directory = RdsDirectory(client)
        directory.begin("rotation")
        far = secret(f"cl1-far.{elsewhere}", dbClusterIdentifier="cl1")
        assert directory.is_reader(far)
        assert directory.writer_for(far).host == f"cl1.cluster-{zone}"
        assert not directory.is_reader(secret(f"cl1-a.{zone}", dbClusterIdentifier="cl1"))  # no call
        stubber.assert_no_pending_responses()
    assert directory.calls == {"DescribeDBClusters": 1, "DescribeDBInstances": 1}


def test_a_fresh_answer_keeps_the_databases_own_names(
    rds: RDSClient, sm_client: SecretsManagerClient
) -> None:
    """A later rotation of a pair on the replica whose RDS-managed master names the primary
    by ARN: the membership look-up refreshes the answer, and the ARN still leads to it
    (one call per rotation, not one more at the next step)."""
    database = managed_instance(rds, sm_client, EndpointMap(), (1, 2))
    arn = f"arn:aws:rds:{REGION}:123456789012:db:{database.identifier}"
    directory = RdsDirectory(rds)
    directory.begin("rotation-1")
    topology = directory.topology("instance", arn)
    assert directory.serves(topology, database.reader)
    for rotation in ("rotation-2", "rotation-3"):
        calls = directory.calls.total()
        directory.begin(rotation)
        for _ in STEPS:
            assert directory.serves(directory.topology("instance", arn), database.reader)
        assert directory.calls.total() - calls == 1
