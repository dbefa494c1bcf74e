"""The application layer and the secrets the rotation functions serve."""

from __future__ import annotations

import boto3
import pytest

from appkit.connections import RotationAwareConnection
from appkit.retrieval import PowertoolsFetcher, SecretCache
from common.errors import RotationError, SecretFormatError
from rotators.postgresql.engine import PostgresEngine


def test_an_application_cannot_use_an_rds_managed_master_secret(sm_client: object) -> None:
    """Regression (attack 3, was: a format error at initialisation). appkit serves the
    RDS-managed master secrets the rotation functions serve (ManageMasterUserPassword:
    the JSON holds only username and password): the value is completed by the rotation
    side's own resolution (common.rds, shipped in both layers), host, port and engine
    from DescribeDBInstances through the secret's aws:rds:primaryDBInstanceArn tag, read
    once per container."""
    rds = boto3.client("rds", region_name="us-east-1")
    instance = rds.create_db_instance(
        DBInstanceIdentifier="appdb",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="master",
        ManageMasterUserPassword=True,
        AllocatedStorage=20,
    )["DBInstance"]
    arn = instance["MasterUserSecret"]["SecretArn"]
    cache = SecretCache(PowertoolsFetcher(sm_client), max_age=0)  # type: ignore[arg-type]
    connection = RotationAwareConnection(PostgresEngine(), arn, cache)
    try:
        connection.prime()
        connection.prime()  # the tags and the database are not read again
        secret = connection.managed.secret(arn, cache.get(arn) or {}, "AWSCURRENT")
    except RotationError as error:
        pytest.fail(f"appkit refuses an RDS-managed master secret: {type(error).__name__}: {error}")
    endpoint = instance["Endpoint"]
    assert (secret.engine, secret.host, secret.port) == ("postgres", endpoint["Address"], endpoint["Port"])
    assert secret.ssl is not False  # TLS stays the default
    assert connection.managed.rds.calls == {"DescribeDBInstances": 1}


def test_a_secret_without_host_that_rds_does_not_manage_is_named(sm_client: object) -> None:
    """A secret with no host and no RDS tag still fails at initialisation, naming the key."""
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="no-host", SecretString='{"username": "u", "password": "p"}')["ARN"]
    cache = SecretCache(PowertoolsFetcher(sm_client), max_age=0)  # type: ignore[arg-type]
    connection = RotationAwareConnection(PostgresEngine(), arn, cache)
    with pytest.raises(SecretFormatError, match="lacks required key 'engine'"):
        connection.prime()
    assert connection.managed.rds.calls == {}
