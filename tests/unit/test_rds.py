"""RDS look-ups against moto's RDS: which database a secret names, the hosts that serve it,
what is kept per container, and the bounded replica wait."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from common.errors import DatabaseLoginError, RdsError
from common.rds import RdsDirectory, database_of_secret, database_of_tags
from common.replicas import ReplicaWait
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


def test_a_promoted_replica_is_looked_up_again_once_per_rotation(
    rds: RDSClient, sm_client: SecretsManagerClient
) -> None:
    database = managed_instance(rds, sm_client, EndpointMap(), (1, 2))
    directory = RdsDirectory(rds)  # kept answers live 15 minutes: far longer than this test
    on_replica = secret(database.reader)
    directory.begin("rotation-1")
    assert directory.writer_for(on_replica).host == database.writer
    calls = directory.calls.total()
    for _ in range(3):  # the later steps of the same rotation: nothing asked again
        assert directory.is_reader(on_replica) and directory.writer_for(on_replica).host == database.writer
    assert directory.calls.total() == calls
    directory.begin("rotation-2")  # unchanged: one look-up, accepted again
    assert directory.is_reader(on_replica)
    assert directory.calls.total() == calls + 1

    promote_read_replica(rds, f"{database.identifier}-replica")
    assert directory.is_reader(on_replica)  # still rotation 2: its answer stands
    directory.begin("rotation-3")
    with pytest.raises(RdsError, match=f"host '{database.reader}' is not one of the hosts"):
        directory.writer_for(on_replica)
    assert not directory.is_reader(on_replica)
    # The database's own name needs no fresh answer: it never leads to another database.
    calls = directory.calls.total()
    directory.begin("rotation-4")
    assert directory.serves(directory.topology("instance", database.identifier), database.writer)
    assert directory.calls.total() == calls
