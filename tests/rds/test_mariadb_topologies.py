"""The MySQL function with an RDS-managed master secret and secrets naming a read replica:
moto's RDS names pointed at a real MariaDB primary (GTID binary log) and its replica
(``CHANGE MASTER TO ... MASTER_USE_GTID``, over verified TLS, ``read_only``), both with
certificates that carry the names. The RDS side says "mysql": moto has no parameter
group for RDS for MariaDB. The database is the judge: logins on the replica itself, and
the refused logins its own log counts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from common.engine import Login
from common.errors import DatabaseLoginError, SecretMismatchError
from common.tls import TlsPolicy
from devtools.mariadb import PRIMARY_OPTIONS, MariaDBReplica, MariaDBServer
from devtools.rds_endpoints import CERTIFICATE_NAMES
from devtools.service import LambdaContext
from rotators.mysql.engine import GTID_WAIT_SLICE, MySQLEngine
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
    """REPLICA_WAIT_SECONDS=1 against a replica 10 s behind: setSecret's wait gives
    up in time (the change is made on the writer), testSecret's bounded login wait fails
    the step, and nothing is labelled that the replica refuses; once it catches up, the
    same rotation finishes."""
    world = maria_world
    user = world.user_on(world.instance("mysql").reader)
    handler = world.handler(REPLICA_WAIT_SECONDS="1")
    lagging.set_delay(10)  # far longer than both bounded waits together
    lagging.catch_up(timeout=40)
    request = world.service.start(user.arn)
    for step in ("createSecret", "setSecret"):
        handler(request.event(step), LambdaContext())
    with pytest.raises(DatabaseLoginError, match="after waiting 1 s for the replica"):
        handler(request.event("testSecret"), LambdaContext())
    assert value(world.sm, user.arn, "AWSCURRENT")["password"] == user.password  # still current
    assert lagging.can_login(user.name, user.password, user.dbname)  # and still accepted there
    position, login = handler.rotator.replica_wait.waits
    assert position[0] == "position" and 1 <= position[1] < 2.5
    assert login[0] == "login" and 1 <= login[1] < 2.5
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


def test_the_gtid_wait_asks_only_a_replica(maria: MariaDBServer, replica: MariaDBReplica) -> None:
    """On a primary MASTER_GTID_WAIT waits out its time-out and answers -1, as a replica
    behind would: a secret naming the writer under another spelling would wait all of
    REPLICA_WAIT_SECONDS. The engine asks a replica only; a primary cannot tell (None)."""
    engine = MySQLEngine()

    def login(server: MariaDBServer) -> Login:
        tls = TlsPolicy(enabled=True, ca_file=server.ca_file)
        return Login(server.host, server.port, None, server.admin_user, server.admin_password, tls, 5, 5, "x")

    with engine.connect(login(maria)) as primary:
        position = engine.write_position(primary)
        assert position
        domain, server, sequence = position.split(",")[0].split("-")
        ahead = f"{domain}-{server}-{int(sequence) + 1000}"  # never written
        started = time.monotonic()
        assert engine.has_replayed(primary, ahead) is None
        assert time.monotonic() - started < GTID_WAIT_SLICE  # not even one slice waited
    replica.catch_up()
    with engine.connect(login(replica)) as session:
        assert engine.has_replayed(session, position) is True
        assert engine.has_replayed(session, ahead) is False


@pytest.mark.parametrize("privileged", [True, False], ids=["slave-monitor", "plain-user"])
def test_a_replica_is_known_by_its_replication_not_only_read_only(
    maria: MariaDBServer, replica: MariaDBReplica, privileged: bool
) -> None:
    """A replica with read_only off is still a replica (its password changes on the
    writer): through its replication status where the account may read it, else through
    the status variables every account may read, also while its applier is stopped. The
    primary is not one either way."""
    engine = MySQLEngine()
    name, password = f"probe_{'priv' if privileged else 'plain'}", "probe-password-1"
    maria.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (name, password))
    if privileged:
        maria.execute("GRANT SLAVE MONITOR ON *.* TO %s@'%%'", (name,))
    replica.catch_up()

    def answer(server: MariaDBServer) -> bool:
        tls = TlsPolicy(enabled=True, ca_file=server.ca_file)
        with engine.connect(Login(server.host, server.port, None, name, password, tls, 5, 5, "x")) as session:
            return engine.is_replica(session)

    assert answer(maria) is False
    assert answer(replica) is True  # read_only
    replica.bootstrap("SET GLOBAL read_only = 0;")
    try:
        assert answer(replica) is True
        replica.bootstrap("STOP SLAVE;")
        assert answer(replica) is True  # a source is still configured
    finally:
        replica.bootstrap("START SLAVE; SET GLOBAL read_only = 1;")
        replica.catch_up()
    assert answer(maria) is False
