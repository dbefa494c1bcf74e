"""Attack round 6 (issue 11): the doctor's RDS checks against what the function calls."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import boto3
import pytest

from devtools.rds_endpoints import EndpointMap, instance_address, managed_cluster
from operator_tools.cli import main
from tests.conftest import REGION, new_password, pg_secret, unique
from tests.helpers import store_secret
from tests.operator.test_doctor import RDS_ACTIONS, make_secret, rds_arn, user, world

if TYPE_CHECKING:
    from devtools.postgres import PostgresServer
    from tests.operator.world import World

__all__ = ["user", "world"]


@pytest.mark.parametrize("user_on", ["writer instance", "cluster endpoint"])
def test_doctor_checks_rds_for_a_pair_on_another_name_of_the_masters_writer(
    world: World, postgres: PostgresServer, user: tuple[str, str, str], user_on: str
) -> None:
    """An alternating pair whose host is the cluster's writer instance and a master
    secret (not RDS-managed) on the cluster endpoint, or the other way round: the hosts
    differ, so the function
    asks RDS (DescribeDBClusters, from the master's host) whether the writer instance
    serves the master's cluster, and createSecret fails naming rds:DescribeDBClusters
    when the role may not.

    Expected: the doctor checks the RDS actions and fails "role permissions" when they
    are denied. Actual (if broken): it asks only whether the *user's* host is a reader; a
    writer instance is not, so the doctor passes a role the function cannot rotate with."""
    rds = boto3.client("rds", region_name=REGION)
    cluster = managed_cluster(rds, world.sm, EndpointMap(), (1, 2))
    master_user, master_password = unique("admin"), new_password()
    master_body = pg_secret(postgres, master_user, master_password, "postgres")
    writer_instance = instance_address(f"{cluster.identifier}-a")
    hosts = (cluster.writer, writer_instance)
    master_host, user_host = hosts if user_on == "writer instance" else hosts[::-1]
    master_body["host"] = master_host
    master = store_secret(world.sm, world.service, master_user, master_body, rotation=False)
    arn = make_secret(world, postgres, user, masterarn=master, host=user_host)
    world.deploy()
    world.allow_rotation(arn)
    world.simulate(["secretsmanager:GetSecretValue"], master, "allowed", ContextEntries=[])
    # Fixed by r11b: IAM's simulator matches resources literally, so the doctor asks
    # about the master's database's own ARN, never "*".
    database = (
        f"cluster:{cluster.identifier}" if user_on == "writer instance" else f"db:{cluster.identifier}-a"
    )
    world.simulate(RDS_ACTIONS, rds_arn(database), "implicitDeny", ContextEntries=[])
    out = io.StringIO()
    main(["doctor", arn, "--json"], aws=world.aws, out=out)
    checks = {check["check"]: check for check in json.loads(out.getvalue())["checks"]}
    # The function did ask RDS here (the preflight runs its createSecret checks).
    assert (
        world.handler.rotator.rds.calls["DescribeDBClusters"] > 0
        or world.handler.rotator.rds.calls["DescribeDBInstances"] > 0
    ), world.handler.rotator.rds.calls
    role = checks["role permissions"]
    assert role["status"] == "fail" and "rds:DescribeDBClusters" in role["reason"], role
