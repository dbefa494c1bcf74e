"""RDS-managed master secrets, readers and replicas, against a real PostgreSQL primary and
its streaming standby, with moto's RDS naming them."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from botocore.stub import Stubber

from common.errors import DatabaseLoginError, RdsError, SecretMismatchError
from common.replicas import FIRST_DELAY
from devtools.rds_endpoints import instance_address, managed_cluster, managed_instance
from devtools.service import LambdaContext
from rotators.postgresql.engine import PostgresEngine
from tests.helpers import value
from tests.rds.conftest import rds_handler, user_on

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer, PostgresStandby
    from devtools.rds_endpoints import EndpointMap
    from devtools.service import RotationService

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
def delayed(standby: PostgresStandby) -> Any:
    """The standby applies every commit APPLY_DELAY_MS late: a lag every rotation meets."""
    standby.set_apply_delay(APPLY_DELAY_MS)
    yield standby
    standby.set_apply_delay(0)


def rotate_without_refusals(
    service: RotationService, handler: RotationFunction[Any], arn: str, standby: PostgresStandby
) -> None:
    standby.catch_up()  # the test's own set-up (users, databases) first
    refused = standby.failed_logins()
    service.rotate(handler, arn)  # raises if any step fails
    assert standby.failed_logins() == refused, "the standby refused a login during the rotation"


def test_alternating_pair_on_the_replica_with_an_rds_managed_master(
    primary: PostgresServer,
    delayed: PostgresStandby,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> None:
    database = managed_instance(rds, sm_client, endpoints, (primary.port, delayed.port))
    primary.create_master(database.master_user, database.master_password)
    user = user_on(primary, sm_client, service, database.reader, masterarn=database.master_arn)
    handler = rds_handler(PostgresEngine(), sm_client, rds, primary.ca_file)

    rotate_without_refusals(service, handler, user.arn, delayed)
    clone = value(sm_client, user.arn, "AWSCURRENT")
    assert clone["username"] == user.name + "_clone" and clone["host"] == database.reader
    assert psql_login(delayed, database.reader, clone["username"], clone["password"], user.dbname)

    rotate_without_refusals(service, handler, user.arn, delayed)
    original = value(sm_client, user.arn, "AWSCURRENT")
    assert original["username"] == user.name
    assert psql_login(delayed, database.reader, user.name, original["password"], user.dbname)
    assert not psql_login(delayed, database.reader, user.name, user.password, user.dbname)
    # The waits were real (the standby was behind at the first look) and bounded.
    waits = handler.rotator.replica_wait.waits
    assert [how for how, _ in waits] == ["position", "position"]  # testSecret never had to wait
    assert all(FIRST_DELAY <= seconds < 30 for _, seconds in waits)


def test_single_user_on_the_replica_changes_its_password_on_the_writer(
    primary: PostgresServer,
    delayed: PostgresStandby,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> None:
    database = managed_instance(rds, sm_client, endpoints, (primary.port, delayed.port))
    user = user_on(primary, sm_client, service, database.reader)  # the writer found from the host
    handler = rds_handler(PostgresEngine(), sm_client, rds, primary.ca_file)

    for _ in range(2):
        rotate_without_refusals(service, handler, user.arn, delayed)
    current = value(sm_client, user.arn, "AWSCURRENT")
    previous = value(sm_client, user.arn, "AWSPREVIOUS")
    assert psql_login(delayed, database.reader, user.name, current["password"], user.dbname)
    assert not psql_login(delayed, database.reader, user.name, previous["password"], user.dbname)
    assert not psql_login(delayed, database.reader, user.name, user.password, user.dbname)
    assert psql_login(primary, database.writer, user.name, current["password"], user.dbname)


@pytest.mark.parametrize("engine", ["aurora-postgresql", "postgres"], ids=["aurora", "multi-az-cluster"])
def test_cluster_reader_endpoint_and_reader_instance(
    engine: str,
    primary: PostgresServer,
    standby: PostgresStandby,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> None:
    database = managed_cluster(rds, sm_client, endpoints, (primary.port, standby.port), engine)
    primary.create_master(database.master_user, database.master_password)
    pair = user_on(primary, sm_client, service, database.reader, masterarn=database.master_arn)
    reader_instance = instance_address(f"{database.identifier}-b")
    single = user_on(primary, sm_client, service, reader_instance, dbClusterIdentifier=database.identifier)
    handler = rds_handler(PostgresEngine(), sm_client, rds, primary.ca_file)

    for arn in (pair.arn, single.arn, pair.arn):
        rotate_without_refusals(service, handler, arn, standby)
    current = value(sm_client, single.arn, "AWSCURRENT")
    assert psql_login(standby, reader_instance, single.name, current["password"], single.dbname)
    assert not psql_login(standby, reader_instance, single.name, single.password, single.dbname)
    pair_current = value(sm_client, pair.arn, "AWSCURRENT")
    assert pair_current["username"] == pair.name
    assert psql_login(standby, database.reader, pair.name, pair_current["password"], pair.dbname)


def refused_at_create(
    handler: RotationFunction[Any], service: RotationService, sm_client: SecretsManagerClient, arn: str
) -> None:
    """Run createSecret, which must fail leaving no pending value; re-raises its error."""
    request = service.start(arn)
    try:
        handler(request.event("createSecret"), LambdaContext())
    finally:
        with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
            sm_client.get_secret_value(SecretId=arn, VersionId=request.token)


def test_master_of_another_instance_is_refused(
    primary: PostgresServer,
    standby: PostgresStandby,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> None:
    ours = managed_instance(rds, sm_client, endpoints, (primary.port, standby.port))
    theirs = managed_instance(rds, sm_client, endpoints, (primary.port, standby.port))
    user = user_on(primary, sm_client, service, ours.writer, masterarn=theirs.master_arn)
    handler = rds_handler(PostgresEngine(), sm_client, rds, primary.ca_file)
    with pytest.raises(SecretMismatchError, match=f"RDS does not list {ours.writer}.*{theirs.identifier}"):
        refused_at_create(handler, service, sm_client, user.arn)


def test_host_outside_the_masters_cluster_is_refused(
    primary: PostgresServer,
    standby: PostgresStandby,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> None:
    ours = managed_cluster(rds, sm_client, endpoints, (primary.port, standby.port))
    other = managed_cluster(rds, sm_client, endpoints, (primary.port, standby.port))
    user = user_on(
        primary, sm_client, service, instance_address(f"{other.identifier}-b"), masterarn=ours.master_arn
    )
    handler = rds_handler(PostgresEngine(), sm_client, rds, primary.ca_file)
    with pytest.raises(SecretMismatchError, match=f"not list .*{other.identifier}-b.*{ours.identifier}"):
        refused_at_create(handler, service, sm_client, user.arn)


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException"])
def test_rds_denied_fails_create_naming_the_permission(
    code: str,
    primary: PostgresServer,
    standby: PostgresStandby,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> None:
    database = managed_instance(rds, sm_client, endpoints, (primary.port, standby.port))
    user = user_on(primary, sm_client, service, database.writer, masterarn=database.master_arn)
    handler = rds_handler(PostgresEngine(), sm_client, rds, primary.ca_file)
    with Stubber(rds) as stubber:
        stubber.add_client_error("describe_db_instances", service_error_code=code, http_status_code=403)
        with pytest.raises(RdsError, match="rds:DescribeDBInstances was refused.*rds:DescribeDBClusters"):
            refused_at_create(handler, service, sm_client, user.arn)


def test_replica_without_a_known_writer_is_refused_and_nothing_changes(
    primary: PostgresServer,
    standby: PostgresStandby,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
) -> None:
    # The standby's own address, not an RDS name: no RDS database says where its writer is.
    user = user_on(primary, sm_client, service, "127.0.0.1")
    body = value(sm_client, user.arn, "AWSCURRENT")
    sm_client.put_secret_value(SecretId=user.arn, SecretString=json.dumps({**body, "port": standby.port}))
    standby.catch_up()
    handler = rds_handler(PostgresEngine(), sm_client, rds, primary.ca_file)
    request = service.start(user.arn)
    handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(RdsError, match="read-only replica and its writer cannot be found"):
        handler(request.event("setSecret"), LambdaContext())
    assert primary.can_login(user.name, user.password, user.dbname)
    assert sum(handler.rds_calls.values()) == 0


def test_pending_refused_on_a_host_rds_does_not_list_fails_at_once(
    primary: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    rds: RDSClient,
    endpoints: EndpointMap,
) -> None:
    """testSecret waits only on a reader: on the writer a refused login is final."""
    database = managed_instance(rds, sm_client, endpoints, (primary.port, primary.port))
    user = user_on(primary, sm_client, service, database.writer)
    handler = rds_handler(PostgresEngine(), sm_client, rds, primary.ca_file, REPLICA_WAIT_SECONDS="30")
    request = service.start(user.arn)
    for step in ("createSecret", "setSecret"):
        handler(request.event(step), LambdaContext())
    primary.execute(f'ALTER ROLE "{user.name}" PASSWORD %s', (user.password,))  # behind the rotation's back
    with pytest.raises(DatabaseLoginError):
        handler(request.event("testSecret"), LambdaContext())
    assert handler.rotator.replica_wait.waits == []
