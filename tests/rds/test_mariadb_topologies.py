"""The MySQL function with an RDS-managed master secret and a read replica's name: moto's
RDS names pointed at a MariaDB whose certificate carries them (no replication: the
replica's name reaches the same server, so this proves the look-ups and TLS by name; the
RDS side says "mysql": moto has no parameter group for RDS for MariaDB)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from common.errors import SecretMismatchError
from devtools.mariadb import MariaDBServer
from devtools.rds_endpoints import CERTIFICATE_NAMES, managed_instance
from rotators.mysql.engine import MySQLEngine
from tests.helpers import value
from tests.rds.conftest import rds_handler, user_on
from tests.rds.test_postgresql_topologies import refused_at_create

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.rds_endpoints import EndpointMap
    from devtools.service import RotationService


@pytest.fixture(scope="module")
def maria() -> Iterator[MariaDBServer]:
    server = MariaDBServer()
    server.server_names = list(CERTIFICATE_NAMES)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_managed_master_and_replica_name_rotate_both_strategies(
    maria: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> None:
    database = managed_instance(rds, sm_client, endpoints, (maria.port, maria.port), engine="mysql")
    maria.create_master(database.master_user, database.master_password)
    pair = user_on(maria, sm_client, service, database.reader, masterarn=database.master_arn)
    single = user_on(maria, sm_client, service, database.reader)
    handler = rds_handler(MySQLEngine(), sm_client, rds, maria.ca_file)

    for arn in (pair.arn, single.arn, pair.arn):
        service.rotate(handler, arn)
    pair_current = value(sm_client, pair.arn, "AWSCURRENT")
    assert pair_current["username"] == pair.name and pair_current["host"] == database.reader
    assert maria.can_login(pair.name, pair_current["password"], pair.dbname)
    assert not maria.can_login(pair.name, pair.password, pair.dbname)
    single_current = value(sm_client, single.arn, "AWSCURRENT")
    assert maria.can_login(single.name, single_current["password"], single.dbname)
    assert not maria.can_login(single.name, single.password, single.dbname)
    assert handler.rds_calls["DescribeDBInstances"] >= 1


def test_managed_master_of_another_instance_is_refused(
    maria: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> None:
    ours = managed_instance(rds, sm_client, endpoints, (maria.port, maria.port), engine="mysql")
    theirs = managed_instance(rds, sm_client, endpoints, (maria.port, maria.port), engine="mysql")
    user = user_on(maria, sm_client, service, ours.reader, masterarn=theirs.master_arn)
    handler = rds_handler(MySQLEngine(), sm_client, rds, maria.ca_file)
    with pytest.raises(SecretMismatchError, match=f"RDS does not list {ours.reader}"):
        refused_at_create(handler, service, sm_client, user.arn)
