"""Attack round 6 (issue 11): the MySQL function against a real MariaDB primary and its
GTID replica, with moto's RDS naming them."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import DatabaseLoginError, RdsError
from devtools.mariadb import MariaDBReplica
from devtools.rds_endpoints import instance_address
from devtools.service import LambdaContext
from tests.helpers import value

if TYPE_CHECKING:
    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationRequest
    from tests.rds.conftest import User, World


def created_on_the_replica(
    world: World, replica: MariaDBReplica, host: str, **extra: Any
) -> tuple[User, RotationFunction[Any], RotationRequest]:
    """A single-user secret naming ``host`` (a replica's name), the replica caught up, and
    createSecret done by a function that waits for replicas at most 1 s."""
    user = world.user_on(host, **extra)
    replica.catch_up()
    handler = world.handler(REPLICA_WAIT_SECONDS="1")
    request = world.service.start(user.arn)
    handler(request.event("createSecret"), LambdaContext())
    return user, handler, request


def test_alternating_pair_on_a_cluster_writer_instance_does_not_wait_for_a_replica(
    maria_world: World,
) -> None:
    """A secret whose host is the cluster's writer instance (RDS: IsClusterWriter) is on
    the writer: the password change is there at once. setSecret must not wait on the
    writer's own GTID position as if it were a replica.

    Expected: no replica wait, setSecret returns at once. Actual (if broken): setSecret
    compares host strings (instance address != cluster endpoint), reads gtid_binlog_pos
    and runs MASTER_GTID_WAIT on the writer, which is no replica: it waits the whole of
    REPLICA_WAIT_SECONDS and logs that the replica is behind, on every rotation."""
    world = maria_world
    database = world.cluster("mysql")
    world.master_user(database)
    writer_instance = instance_address(f"{database.identifier}-a")
    members = world.rds.describe_db_clusters(DBClusterIdentifier=database.identifier)["DBClusters"][0]
    assert {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in members["DBClusterMembers"]}[
        f"{database.identifier}-a"
    ]
    pair = world.user_on(writer_instance, masterarn=database.master_arn)
    handler = world.handler(REPLICA_WAIT_SECONDS="4")
    request = world.service.start(pair.arn)
    handler(request.event("createSecret"), LambdaContext())
    started = time.monotonic()
    handler(request.event("setSecret"), LambdaContext())
    took = time.monotonic() - started
    assert handler.rotator.replica_wait.waits == [], handler.rotator.replica_wait.waits
    assert took < 3, f"setSecret took {took:.1f} s on the writer"


def test_replica_with_stopped_sql_thread_labels_nothing_refused(
    maria_world: World, replica: MariaDBReplica, capsys: pytest.CaptureFixture[str]
) -> None:
    """The replica's SQL thread stops mid-rotation (single user on the replica's name):
    setSecret's wait is bounded, testSecret fails, and AWSCURRENT still logs in on the
    replica; after START SLAVE SQL_THREAD the same rotation finishes."""
    world = maria_world
    user, handler, request = created_on_the_replica(world, replica, world.instance("mysql").reader)
    replica.bootstrap("STOP SLAVE SQL_THREAD;")
    try:
        handler(request.event("setSecret"), LambdaContext())
        failed = None
        try:
            handler(request.event("testSecret"), LambdaContext())
        except Exception as error:  # noqa: BLE001 - any failure is what is expected
            failed = error
        assert failed is not None, "testSecret passed on a replica that never applied the change"
        current = value(world.sm, user.arn, "AWSCURRENT")
        assert current["password"] == user.password
        assert replica.can_login(user.name, current["password"], user.dbname)
    finally:
        replica.bootstrap("START SLAVE SQL_THREAD;")
        replica.catch_up(timeout=40)
    pending = value(world.sm, user.arn, "AWSPENDING")["password"]
    for step in ("testSecret", "finishSecret"):
        handler(request.event(step), LambdaContext())
    current = value(world.sm, user.arn, "AWSCURRENT")
    assert replica.can_login(user.name, current["password"], user.dbname)
    assert not replica.can_login(user.name, user.password, user.dbname)
    output = capsys.readouterr()
    for secret in (user.password, pending, request.token):
        assert secret not in output.out + output.err
        assert secret not in repr(failed) and secret not in str(failed.__cause__)


def test_secret_naming_another_database_than_its_replica_host_changes_nothing(
    maria_world: World, replica: MariaDBReplica
) -> None:
    """A single-user secret on database A's replica whose dbInstanceIdentifier names
    database B (spoofed): setSecret must refuse, naming the host and B, before any
    password changes; AWSCURRENT still logs in on the replica and the writer."""
    world = maria_world
    ours, theirs = world.instance("mysql"), world.instance("mysql")
    user, handler, request = created_on_the_replica(
        world, replica, ours.reader, dbInstanceIdentifier=theirs.identifier
    )
    with pytest.raises(RdsError, match=f"{ours.reader}.*{theirs.identifier}"):
        handler(request.event("setSecret"), LambdaContext())
    replica.catch_up()
    for server in (replica, world.writer):
        assert server.can_login(user.name, user.password, user.dbname)


def test_replica_with_a_gtid_position_ahead_of_its_writer_labels_nothing_refused(
    maria_world: World, replica: MariaDBReplica
) -> None:
    """Broken GTID: the replica's gtid_slave_pos is set past the writer's (its IO thread
    then fails: the writer has no such GTID), so MASTER_GTID_WAIT says "caught up" at
    once though the replica applies nothing. testSecret must still fail on the replica's
    refusal, leaving AWSCURRENT the only current version and still accepted there."""
    world = maria_world
    user, handler, request = created_on_the_replica(world, replica, world.instance("mysql").reader)
    replica.bootstrap("STOP SLAVE;")
    (kept,) = replica.bootstrap("SELECT @@global.gtid_slave_pos;").split()[-1:]
    replica.bootstrap("SET GLOBAL gtid_slave_pos = '0-1-999999999'; START SLAVE;")
    try:
        handler(request.event("setSecret"), LambdaContext())
        (how, waited), *_ = handler.rotator.replica_wait.waits
        assert how == "position" and waited < 0.5  # the GTID wait was fooled
        with pytest.raises(DatabaseLoginError):
            handler(request.event("testSecret"), LambdaContext())
        assert value(world.sm, user.arn, "AWSCURRENT")["password"] == user.password
        assert replica.can_login(user.name, user.password, user.dbname)
    finally:
        replica.bootstrap(f"STOP SLAVE; SET GLOBAL gtid_slave_pos = '{kept}'; START SLAVE;")
        replica.catch_up(timeout=40)
    for step in ("testSecret", "finishSecret"):
        handler(request.event(step), LambdaContext())
    assert replica.can_login(user.name, value(world.sm, user.arn, "AWSCURRENT")["password"], user.dbname)


class SecondReplica(MariaDBReplica):
    """A replica beside the module's (its own replication user and server id)."""

    REPLICATION_USER = "replicator_attack6"


def test_a_replica_stopped_mid_wait_is_not_taken_for_caught_up(
    maria_world: World, maria: MariaDBServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A replica of its own (MASTER_DELAY 5 s, so setSecret waits on its GTID position)
    is stopped 1 s into the wait. The wait's session is gone: the function cannot tell
    whether the replica has the change.

    Expected: the step says so (a warning that the replica has not, or could not be
    seen to have, applied the change), as it does for a replica that is merely behind.
    Actual (if broken): MASTER_GTID_WAIT's lost connection is read as "cannot tell"
    (None), which the wait takes for caught up: it ends at once, logged as a normal wait,
    no warning."""
    world = maria_world
    second = SecondReplica(maria)
    second.options = [o if o != "--server-id=2" else "--server-id=3" for o in second.options]
    second.start()
    try:
        world.replica = second
        user = world.user_on(world.instance("mysql").reader)
        second.catch_up()
        second.set_delay(5)
        handler = world.handler(REPLICA_WAIT_SECONDS="20")
        request = world.service.start(user.arn)
        handler(request.event("createSecret"), LambdaContext())
        stopper = threading.Timer(1.0, second.stop)
        stopper.start()
        caplog.clear()
        try:
            handler(request.event("setSecret"), LambdaContext())
        except Exception:  # noqa: BLE001 - a named failure is an acceptable answer too
            return
        finally:
            stopper.join()
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings, (
            f"setSecret ended quietly after the replica stopped: {handler.rotator.replica_wait.waits}"
        )
    finally:
        if second._process is not None:
            second.stop()
