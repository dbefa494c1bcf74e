"""The MySQL function with an RDS-managed master secret and a read replica's name: moto's
RDS names pointed at a MariaDB whose certificate carries them (no replication: the
replica's name reaches the same server, so this proves the look-ups and TLS by name; the
RDS side says "mysql": moto has no parameter group for RDS for MariaDB)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from common.errors import SecretMismatchError
from devtools.mariadb import MariaDBServer
from devtools.rds_endpoints import CERTIFICATE_NAMES
from rotators.mysql.engine import MySQLEngine
from tests.helpers import value
from tests.rds.conftest import World

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.rds_endpoints import EndpointMap
    from devtools.service import RotationService


@pytest.fixture(scope="module")
def maria() -> Iterator[MariaDBServer]:
    server = MariaDBServer()
    server.certificate_hosts += CERTIFICATE_NAMES
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def maria_world(
    maria: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> World:
    return World(maria, maria, MySQLEngine(), sm_client, service, rds, endpoints)


def test_managed_master_and_replica_name_rotate_both_strategies(maria_world: World) -> None:
    world, maria = maria_world, maria_world.writer
    database = world.instance("mysql")
    world.master_user(database)
    pair = world.user_on(database.reader, masterarn=database.master_arn)
    single = world.user_on(database.reader)
    handler = world.handler()

    for arn in (pair.arn, single.arn, pair.arn):
        world.service.rotate(handler, arn)
    pair_current = value(world.sm, pair.arn, "AWSCURRENT")
    assert pair_current["username"] == pair.name and pair_current["host"] == database.reader
    assert maria.can_login(pair.name, pair_current["password"], pair.dbname)
    assert not maria.can_login(pair.name, pair.password, pair.dbname)
    single_current = value(world.sm, single.arn, "AWSCURRENT")
    assert maria.can_login(single.name, single_current["password"], single.dbname)
    assert not maria.can_login(single.name, single.password, single.dbname)
    assert handler.rds_calls["DescribeDBInstances"] >= 1


def test_managed_master_of_another_instance_is_refused(maria_world: World) -> None:
    ours, theirs = maria_world.instance("mysql"), maria_world.instance("mysql")
    user = maria_world.user_on(ours.reader, masterarn=theirs.master_arn)
    with pytest.raises(SecretMismatchError, match=f"RDS does not list {ours.reader}"):
        maria_world.refused_at_create(maria_world.handler(), user.arn)
