"""RDS-managed master secrets, readers and replicas, against a real PostgreSQL primary and
its streaming standby, with moto's RDS naming them."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.stub import Stubber

from common.errors import DatabaseLoginError, RdsError, SecretMismatchError, StepTimeLimitError
from common.replicas import FIRST_DELAY
from common.rotation import STEPS
from devtools.postgres import PostgresStandby
from devtools.rds_endpoints import instance_address, promote_read_replica
from devtools.service import LambdaContext
from operator_tools.repair import decide
from tests.helpers import value

if TYPE_CHECKING:
    from collections.abc import Iterator

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from tests.rds.conftest import World

APPLY_DELAY_MS = 300


def psql_login(server: PostgresServer, name: str, user: str, password: str, dbname: str) -> bool:
    """Whether ``psql`` logs in to ``server`` under the RDS name ``name`` (TLS verified by
    that name); False only when the password is refused."""
    conninfo = (
        f"host={name} hostaddr=127.0.0.1 port={server.port} user={user} dbname={dbname} "
        f"sslmode=verify-full sslrootcert={server.ca_file} connect_timeout=5"
    )
    result = subprocess.run(
        [str(server.bin_dir / "psql"), conninfo, "-Atc", "SELECT 1"],
        env={**os.environ, "PGPASSWORD": password},
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode == 0 and result.stdout.strip() == "1":
        return True
    if "password authentication failed" in result.stderr:
        return False
    raise AssertionError(f"psql failed: {result.stderr.strip()}")


@pytest.fixture
def delayed(standby: PostgresStandby) -> Iterator[PostgresStandby]:
    """The standby applies every commit APPLY_DELAY_MS late: a lag every rotation meets."""
    standby.set_apply_delay(APPLY_DELAY_MS)
    yield standby
    standby.set_apply_delay(0)


def rotate_without_refusals(
    world: World, standby: PostgresStandby, handler: RotationFunction[Any], arn: str
) -> None:
    """A whole rotation (raises if any step fails) during which the standby refuses no login."""
    standby.catch_up()  # the test's own set-up (users, databases) first
    refused = standby.failed_logins()
    world.service.rotate(handler, arn)
    assert standby.failed_logins() == refused, "the standby refused a login during the rotation"


def test_alternating_pair_on_the_replica_with_an_rds_managed_master(
    world: World, delayed: PostgresStandby
) -> None:
    standby = delayed
    database = world.instance()
    world.master_user(database)
    user = world.user_on(database.reader, masterarn=database.master_arn)
    handler = world.handler()

    rotate_without_refusals(world, standby, handler, user.arn)
    clone = value(world.sm, user.arn, "AWSCURRENT")
    assert clone["username"] == user.name + "_clone" and clone["host"] == database.reader
    assert psql_login(standby, database.reader, clone["username"], clone["password"], user.dbname)

    rotate_without_refusals(world, standby, handler, user.arn)
    original = value(world.sm, user.arn, "AWSCURRENT")
    assert original["username"] == user.name
    assert psql_login(standby, database.reader, user.name, original["password"], user.dbname)
    assert not psql_login(standby, database.reader, user.name, user.password, user.dbname)
    # The waits were real (the standby was behind at the first look) and bounded.
    waits = handler.rotator.replica_wait.waits
    assert [how for how, _ in waits] == ["position", "position"]  # testSecret never had to wait
    assert all(FIRST_DELAY <= seconds < 30 for _, seconds in waits)


def test_single_user_on_the_replica_changes_its_password_on_the_writer(
    world: World, delayed: PostgresStandby
) -> None:
    standby = delayed
    database = world.instance()
    user = world.user_on(database.reader)  # the writer is found from the host
    handler = world.handler()

    for _ in range(2):
        rotate_without_refusals(world, standby, handler, user.arn)
    current = value(world.sm, user.arn, "AWSCURRENT")
    previous = value(world.sm, user.arn, "AWSPREVIOUS")
    assert psql_login(standby, database.reader, user.name, current["password"], user.dbname)
    assert not psql_login(standby, database.reader, user.name, previous["password"], user.dbname)
    assert not psql_login(standby, database.reader, user.name, user.password, user.dbname)
    assert psql_login(standby.primary, database.writer, user.name, current["password"], user.dbname)


@pytest.mark.parametrize("engine", ["aurora-postgresql", "postgres"], ids=["aurora", "multi-az-cluster"])
def test_cluster_reader_endpoint_and_reader_instance(
    engine: str, world: World, standby: PostgresStandby
) -> None:
    database = world.cluster(engine)
    world.master_user(database)
    pair = world.user_on(database.reader, masterarn=database.master_arn)
    reader_instance = instance_address(f"{database.identifier}-b")
    single = world.user_on(reader_instance, dbClusterIdentifier=database.identifier)
    handler = world.handler()

    for arn in (pair.arn, single.arn, pair.arn):
        rotate_without_refusals(world, standby, handler, arn)
    current = value(world.sm, single.arn, "AWSCURRENT")
    assert psql_login(standby, reader_instance, single.name, current["password"], single.dbname)
    assert not psql_login(standby, reader_instance, single.name, single.password, single.dbname)
    pair_current = value(world.sm, pair.arn, "AWSCURRENT")
    assert pair_current["username"] == pair.name
    assert psql_login(standby, database.reader, pair.name, pair_current["password"], pair.dbname)


def test_master_of_another_instance_is_refused(world: World) -> None:
    ours, theirs = world.instance(), world.instance()
    user = world.user_on(ours.writer, masterarn=theirs.master_arn)
    with pytest.raises(SecretMismatchError, match=f"RDS does not list {ours.writer}.*{theirs.identifier}"):
        world.refused_at_create(world.handler(), user.arn)


def test_host_outside_the_masters_cluster_is_refused(world: World) -> None:
    ours, other = world.cluster(), world.cluster()
    user = world.user_on(instance_address(f"{other.identifier}-b"), masterarn=ours.master_arn)
    with pytest.raises(SecretMismatchError, match=f"not list .*{other.identifier}-b.*{ours.identifier}"):
        world.refused_at_create(world.handler(), user.arn)


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException"])
def test_rds_denied_fails_create_naming_the_permission(code: str, world: World) -> None:
    database = world.instance()
    user = world.user_on(database.writer, masterarn=database.master_arn)
    with Stubber(world.rds) as stubber:
        stubber.add_client_error("describe_db_instances", service_error_code=code, http_status_code=403)
        with pytest.raises(RdsError, match="rds:DescribeDBInstances was refused.*rds:DescribeDBClusters"):
            world.refused_at_create(world.handler(), user.arn)


def test_replica_without_a_known_writer_is_refused_and_nothing_changes(
    world: World, standby: PostgresStandby
) -> None:
    # The standby's own address, not an RDS name: no RDS database says where its writer is.
    user = world.user_on("127.0.0.1")
    body = value(world.sm, user.arn, "AWSCURRENT")
    world.sm.put_secret_value(SecretId=user.arn, SecretString=json.dumps({**body, "port": standby.port}))
    standby.catch_up()
    handler = world.handler()
    request = world.service.start(user.arn)
    handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(RdsError, match="read-only replica and its writer cannot be found"):
        handler(request.event("setSecret"), LambdaContext())
    assert world.writer.can_login(user.name, user.password, user.dbname)
    assert sum(handler.rds_calls.values()) == 0


@pytest.mark.parametrize("kind", ["instance", "cluster writer instance"])
def test_pending_refused_on_the_writer_fails_at_once(kind: str, world: World) -> None:
    """testSecret waits only on a reader: on the writer (an instance, or a cluster's writer
    instance, which RDS lists among the cluster's members) a refused login is final."""
    if kind == "instance":
        user = world.user_on(world.instance().writer)
    else:
        cluster = world.cluster()
        user = world.user_on(
            instance_address(f"{cluster.identifier}-a"), dbClusterIdentifier=cluster.identifier
        )
    handler = world.handler(REPLICA_WAIT_SECONDS="30")
    request = world.service.start(user.arn)
    for step in ("createSecret", "setSecret"):
        handler(request.event(step), LambdaContext())
    world.writer.execute(f'ALTER ROLE "{user.name}" PASSWORD %s', (user.password,))  # behind our back
    with pytest.raises(DatabaseLoginError):
        handler(request.event("testSecret"), LambdaContext())
    assert handler.rotator.replica_wait.waits == []


def rotation_rds_calls(handler: RotationFunction[Any], world: World, arn: str) -> list[int]:
    """Run one whole rotation of ``arn``; the RDS calls each step made."""
    request = world.service.start(arn)
    asked: list[int] = []
    for step in STEPS:
        before = sum(handler.rds_calls.values())
        handler(request.event(step), LambdaContext())
        asked.append(sum(handler.rds_calls.values()) - before)
    return asked


def test_a_replica_promoted_between_two_rotations(world: World) -> None:
    """One container: the first rotation of each secret on the replica passes; the replica
    is then promoted, in RDS and for real (``pg_promote()`` on a standby of this test's
    own). A warm container and a cold one then answer alike, with at most one RDS call per
    rotation: the alternating pair (its master is the former primary's) is refused,
    changing nothing; the single user rotates in place on the promoted, now writable,
    instance (no RDS call: the server says it is no replica). Steps after the first of a
    rotation ask RDS nothing."""
    database = world.instance()
    world.master_user(database)
    pair = world.user_on(database.reader, masterarn=database.master_arn)
    single = world.user_on(database.reader)
    own = PostgresStandby(cast("PostgresServer", world.writer)).start()
    try:
        world.endpoints.point(database.reader, own.port)
        warm = world.handler()
        # The pair meets RDS at createSecret (its master), the single user at setSecret (its writer).
        for arn, first in ((pair.arn, "createSecret"), (single.arn, "setSecret")):
            own.catch_up()
            asked = rotation_rds_calls(warm, world, arn)
            assert [step for step, calls in zip(STEPS, asked, strict=True) if calls] == [first]

        own.catch_up()
        promote_read_replica(world.rds, f"{database.identifier}-replica")
        own.execute("SELECT pg_promote()")
        assert own.execute("SELECT pg_is_in_recovery()")[0][0] is False
        refused = world.service.start(pair.arn)  # Secrets Manager retries it: warm, then cold
        for handler in (warm, world.handler()):
            before = sum(handler.rds_calls.values())
            with pytest.raises(SecretMismatchError, match=f"RDS does not list {database.reader}"):
                handler(refused.event("createSecret"), LambdaContext())
            with pytest.raises(world.sm.exceptions.ResourceNotFoundException):
                world.sm.get_secret_value(SecretId=pair.arn, VersionId=refused.token)
            assert sum(handler.rds_calls.values()) - before <= 1
            assert sum(rotation_rds_calls(handler, world, single.arn)) == 0
            password = value(world.sm, single.arn, "AWSCURRENT")["password"]
            assert psql_login(own, database.reader, single.name, password, single.dbname)
            assert not world.writer.can_login(single.name, password, single.dbname)  # apart now
    finally:
        own.stop()


def preflight_denied_rds(world: World, arn: str) -> dict[str, Any]:
    """A preflight of ``arn`` by a new container whose RDS look-up is refused."""
    with Stubber(world.rds) as stubber:
        stubber.add_client_error(
            "describe_db_instances", service_error_code="AccessDenied", http_status_code=403
        )
        report = world.handler()({"Preflight": {"SecretId": arn}}, LambdaContext())
    assert report is not None
    return report


def test_preflight_takes_an_rds_managed_master_and_names_a_denied_look_up(
    world: World, standby: PostgresStandby
) -> None:
    database = world.instance()
    world.master_user(database)
    user = world.user_on(database.reader, masterarn=database.master_arn)
    handler = world.handler()
    standby.catch_up()

    report = handler({"Preflight": {"SecretId": user.arn}}, LambdaContext())
    assert report is not None
    master = next(check for check in report["checks"] if check["check"] == "master secret")
    assert master["ok"] is True, master

    denied = preflight_denied_rds(world, user.arn)
    assert denied["ok"] is False
    master = next(check for check in denied["checks"] if check["check"] == "master secret")
    assert "rds:DescribeDBInstances was refused" in master["detail"] and "RdsLookups" in master["fix"]


def test_preflight_of_a_single_user_on_a_standby_judges_on_the_writer(
    world: World, standby: PostgresStandby
) -> None:
    """A single user on the standby: the preflight logs in on the writer (where setSecret
    changes the password) and finds nothing missing; when RDS cannot name the writer, the
    ``replica`` check fails and repair refuses to judge by the standby's answers."""
    database = world.instance()
    user = world.user_on(database.reader)
    standby.catch_up()
    report = world.handler()({"Preflight": {"SecretId": user.arn}}, LambdaContext())
    assert report is not None and report["ok"] is True, report
    replica = next(check for check in report["checks"] if check["check"] == "replica")
    assert replica["ok"] is True and f"{database.reader} is a read replica" in replica["detail"]
    assert [c["held"] for c in report["capabilities"]] == [True], report["capabilities"]
    assert [login["outcome"] for login in report["logins"]] == ["accepted"]

    denied = preflight_denied_rds(world, user.arn)
    assert denied["ok"] is False
    replica = next(check for check in denied["checks"] if check["check"] == "replica")
    assert replica["ok"] is False and "rds:DescribeDBInstances was refused" in replica["detail"]
    versions = {login["version"]: login["labels"] for login in denied["logins"]}
    plan = decide(versions, denied)
    assert plan.kind == "refuse" and "replica" in plan.reason, plan


def test_waits_on_a_lagging_replica_stop_before_the_functions_time_out(
    world: World, standby: PostgresStandby
) -> None:
    """A 19 s function with REPLICA_WAIT_SECONDS=16 (it fits, with the margin) and a standby
    40 s behind: setSecret (whose RDS call needs its 15 s, CALL_SECONDS) stops its wait in
    time and succeeds (the change is made); testSecret fails with the named error, inside
    the time-out, never killed, keeping one attempt (connect 5 s + statement 5 s) free."""
    database = world.instance()
    user = world.user_on(database.reader)
    handler = world.handler(REPLICA_WAIT_SECONDS="16", DB_STATEMENT_TIMEOUT="5")
    standby.catch_up()
    standby.set_apply_delay(40_000)
    try:
        request = world.service.start(user.arn)
        for step in ("createSecret", "setSecret"):
            context = LambdaContext(timeout_s=19)
            handler(request.event(step), context)
            assert context.get_remaining_time_in_millis() > 0
        context = LambdaContext(timeout_s=19)
        with pytest.raises(StepTimeLimitError, match="still refused the pending credentials"):
            handler(request.event("testSecret"), context)
        # Stopped with the margin (3 s) and one attempt's time (10 s) to spare.
        assert 12_000 <= context.get_remaining_time_in_millis() <= 13_500
    finally:
        standby.set_apply_delay(0)
        standby.catch_up()
    position, login = handler.rotator.replica_wait.waits
    assert position[0] == "position" and 15 < position[1] < 16  # cut below REPLICA_WAIT_SECONDS
    assert login[0] == "login" and login[1] < 16
