"""The MySQL function with an RDS-managed master secret and secrets naming a read replica:
moto's RDS names pointed at a real MariaDB primary (GTID binary log) and its replica
(``CHANGE MASTER TO ... MASTER_USE_GTID``, over verified TLS, ``read_only``), both with
certificates that carry the names. The RDS side says "mysql": moto has no parameter
group for RDS for MariaDB. The database is the judge: logins on the replica itself, and
the refused logins its own log counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.errors import DatabaseLoginError, SecretMismatchError
from devtools.mariadb import PRIMARY_OPTIONS, MariaDBReplica, MariaDBServer
from devtools.rds_endpoints import CERTIFICATE_NAMES
from devtools.service import LambdaContext
from rotators.mysql.engine import MySQLEngine
from tests.helpers import value
from tests.rds.conftest import World

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.rds_endpoints import EndpointMap
    from devtools.service import RotationService

LAG_SECONDS = 2


@pytest.fixture(scope="module")
def maria() -> Iterator[MariaDBServer]:
    server = MariaDBServer()
    server.certificate_hosts += CERTIFICATE_NAMES
    server.options += PRIMARY_OPTIONS
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def replica(maria: MariaDBServer) -> Iterator[MariaDBReplica]:
    server = MariaDBReplica(maria).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def maria_world(
    maria: MariaDBServer,
    replica: MariaDBReplica,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> World:
    return World(maria, replica, MySQLEngine(), sm_client, service, rds, endpoints)


@pytest.fixture
def lagging(replica: MariaDBReplica) -> Iterator[MariaDBReplica]:
    """The replica applies every event LAG_SECONDS late (MASTER_DELAY)."""
    replica.catch_up()
    replica.set_delay(LAG_SECONDS)
    try:
        yield replica
    finally:
        replica.set_delay(0)
        replica.catch_up()


def rotate_without_refusals(
    world: World, replica: MariaDBReplica, handler: RotationFunction[Any], arn: str
) -> None:
    """A whole rotation (raises if any step fails) during which the replica refuses no login."""
    replica.catch_up(timeout=LAG_SECONDS + 30)  # the test's own set-up (users, databases) first
    refused = replica.failed_logins()
    world.service.rotate(handler, arn)
    assert replica.failed_logins() == refused, "the replica refused a login during the rotation"


@pytest.mark.parametrize("lag", [False, True], ids=["in-step", "lagging"])
def test_single_user_and_alternating_pair_on_the_replica(
    maria_world: World, replica: MariaDBReplica, request: pytest.FixtureRequest, lag: bool
) -> None:
    """Both strategies, twice, on the replica's name with an RDS-managed master: no failed
    step and no refused login on the replica (the rotation waits on the replica's GTID
    position, even LAG_SECONDS behind); the replica accepts the new passwords and refuses
    the old."""
    world, maria = maria_world, maria_world.writer
    if lag:
        request.getfixturevalue("lagging")
    database = world.instance("mysql")
    world.master_user(database)
    pair = world.user_on(database.reader, masterarn=database.master_arn)
    single = world.user_on(database.reader)
    handler = world.handler()

    for arn in (pair.arn, single.arn, pair.arn, single.arn):
        rotate_without_refusals(world, replica, handler, arn)
    pair_current = value(world.sm, pair.arn, "AWSCURRENT")
    assert pair_current["username"] == pair.name and pair_current["host"] == database.reader
    assert replica.can_login(pair.name, pair_current["password"], pair.dbname)
    assert not replica.can_login(pair.name, pair.password, pair.dbname)
    single_current, single_previous = (
        value(world.sm, single.arn, label) for label in ("AWSCURRENT", "AWSPREVIOUS")
    )
    for server in (replica, maria):
        assert server.can_login(single.name, single_current["password"], single.dbname)
        assert not server.can_login(single.name, single_previous["password"], single.dbname)
        assert not server.can_login(single.name, single.password, single.dbname)
    waits = handler.rotator.replica_wait.waits
    assert [how for how, _ in waits] == ["position"] * 4  # testSecret never had to retry a login
    if lag:
        assert all(LAG_SECONDS - 0.5 < seconds < 30 for _, seconds in waits), waits


def test_a_replica_lagging_past_the_bound_fails_test_secret_then_recovers(
    maria_world: World, lagging: MariaDBReplica
) -> None:
    """REPLICA_WAIT_SECONDS=1 against a replica 5 s behind: setSecret's wait gives
    up in time (the change is made on the writer), testSecret's bounded login wait fails
    the step, and nothing is labelled that the replica refuses; once it catches up, the
    same rotation finishes."""
    world = maria_world
    user = world.user_on(world.instance("mysql").reader)
    handler = world.handler(REPLICA_WAIT_SECONDS="1")
    lagging.set_delay(5)  # longer than both bounded waits together
    lagging.catch_up(timeout=40)
    request = world.service.start(user.arn)
    for step in ("createSecret", "setSecret"):
        handler(request.event(step), LambdaContext())
    with pytest.raises(DatabaseLoginError, match="after waiting 1 s for the replica"):
        handler(request.event("testSecret"), LambdaContext())
    assert value(world.sm, user.arn, "AWSCURRENT")["password"] == user.password  # still current
    assert lagging.can_login(user.name, user.password, user.dbname)  # and still accepted there
    position, login = handler.rotator.replica_wait.waits
    assert position[0] == "position" and 1 <= position[1] < 1.5
    assert login[0] == "login" and 1 <= login[1] < 1.5
    lagging.catch_up(timeout=40)
    for step in ("testSecret", "finishSecret"):
        handler(request.event(step), LambdaContext())
    current = value(world.sm, user.arn, "AWSCURRENT")
    assert lagging.can_login(user.name, current["password"], user.dbname)
    assert not lagging.can_login(user.name, user.password, user.dbname)


def test_managed_master_of_another_instance_is_refused(maria_world: World) -> None:
    ours, theirs = maria_world.instance("mysql"), maria_world.instance("mysql")
    user = maria_world.user_on(ours.reader, masterarn=theirs.master_arn)
    with pytest.raises(SecretMismatchError, match=f"RDS does not list {ours.reader}"):
        maria_world.refused_at_create(maria_world.handler(), user.arn)
