"""Attack round 6 (issue 11): the PostgreSQL function against the real primary and its
streaming standby, with moto's RDS naming them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devtools.rds_endpoints import instance_address
from devtools.service import LambdaContext
from tests.helpers import value
from tests.rds.test_postgresql_topologies import psql_login

if TYPE_CHECKING:
    from devtools.postgres import PostgresStandby
    from tests.rds.conftest import World


def test_single_user_on_a_cascaded_read_replica_rotates(world: World, standby: PostgresStandby) -> None:
    """RDS cascades read replicas (a replica of a read replica: MySQL, MariaDB, and
    PostgreSQL 14+): the secret's host is <db>-replica-2, whose source is <db>-replica,
    whose source is the master's instance. Its writer is that instance, which RDS can
    tell (two DescribeDBInstances).

    Expected: the rotation changes the password on the writer and the standby gets it.
    Actual (if broken): setSecret fails with "host ... is not one of the hosts of RDS DB
    instance <db>": only the writer's direct replicas count as its hosts."""
    database = world.instance()
    cascaded = f"{database.identifier}-replica-2"
    world.rds.create_db_instance_read_replica(
        DBInstanceIdentifier=cascaded, SourceDBInstanceIdentifier=f"{database.identifier}-replica"
    )
    world.endpoints.point(instance_address(cascaded), standby.port)
    user = world.user_on(instance_address(cascaded))
    standby.catch_up()
    handler = world.handler()
    request = world.service.start(user.arn)
    try:
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            handler(request.event(step), LambdaContext())
    finally:
        # Whatever failed, the version labelled current still logs in on the standby.
        current = value(world.sm, user.arn, "AWSCURRENT")
        standby.catch_up()
        assert psql_login(standby, instance_address(cascaded), user.name, current["password"], user.dbname)
    assert current["password"] != user.password
