"""The application layer and the secrets the rotation functions serve."""

from __future__ import annotations

import boto3
import pytest

from appkit.connections import RotationAwareConnection
from appkit.retrieval import PowertoolsFetcher, SecretCache
from common.errors import RotationError
from rotators.postgresql.engine import PostgresEngine


def test_an_application_cannot_use_an_rds_managed_master_secret(sm_client: object) -> None:
    """The rotation functions serve RDS-managed master secrets (ManageMasterUserPassword:
    the JSON holds only username and password; host, port and engine come from
    DescribeDBInstances through the secret's aws:rds:primaryDBInstanceArn tag), and the
    README sends applications of rotated secrets to appkit. appkit has no RDS look-up
    (common/rds.py is not in the application layer): prime() refuses the very secret
    RDS creates for every managed database. Expected: the session opens against the
    instance's endpoint (or the README says appkit does not serve these); actual: a
    format error at initialisation."""
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
    except RotationError as error:
        pytest.fail(f"appkit refuses an RDS-managed master secret: {type(error).__name__}: {error}")
