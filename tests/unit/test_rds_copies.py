"""operator_tools ships without common, so the doctor keeps copies of common.rds's tag
names, endpoint domains, database naming and reader decision: pinned here to the
originals, over one table of hosts in moto's RDS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from common import rds
from devtools.rds_endpoints import EndpointMap, instance_address, managed_cluster, managed_instance
from operator_tools import doctor
from tests.conftest import REGION
from tests.unit.test_rds import secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

#: The secret's keys, by row; ``{instance}``/``{cluster}`` stand for the databases' names.
HOSTS: dict[str, dict[str, str]] = {
    "instance writer": {"host": "{instance_writer}"},
    "instance writer, upper case, final dot": {"host": "{instance_writer_odd}"},
    "instance writer with its key": {"host": "{instance_writer}", "dbInstanceIdentifier": "{instance}"},
    "read replica": {"host": "{instance_reader}"},
    "read replica with its primary's key": {
        "host": "{instance_reader}",
        "dbInstanceIdentifier": "{instance}",
    },
    "cluster endpoint": {"host": "{cluster_writer}"},
    "cluster reader endpoint": {"host": "{cluster_reader}"},
    "cluster writer instance": {"host": "{cluster_a}", "dbClusterIdentifier": "{cluster}"},
    "cluster writer instance, no key": {"host": "{cluster_a}"},
    "cluster reader instance": {"host": "{cluster_b}", "dbClusterIdentifier": "{cluster}"},
    "cluster reader instance, no key": {"host": "{cluster_b}"},
    "custom endpoint": {"host": "mine.cluster-custom-abc.us-east-1.rds.amazonaws.com"},
    "unknown RDS instance": {"host": "nope.abc.us-east-1.rds.amazonaws.com"},
    "not RDS": {"host": "db.example.internal"},
}


def test_the_constants_are_common_rds_own() -> None:
    assert frozenset({rds.INSTANCE_TAG, rds.CLUSTER_TAG}) == doctor.RDS_MASTER_TAGS
    assert rds.RDS_DOMAINS == doctor.RDS_DOMAINS
    for host in ("Db.Example.", " x.rds.amazonaws.com ", "plain"):
        assert doctor.normal_host(host) == rds.normal_host(host)


@pytest.mark.parametrize("row", HOSTS)
def test_the_doctor_decides_as_the_function(sm_client: SecretsManagerClient, row: str) -> None:
    client = boto3.client("rds", region_name=REGION)
    instance = managed_instance(client, sm_client, EndpointMap(), (1, 2))
    cluster = managed_cluster(client, sm_client, EndpointMap(), (1, 2))
    names = {
        "instance": instance.identifier,
        "instance_writer": instance.writer,
        "instance_writer_odd": instance.writer.upper() + ".",
        "instance_reader": instance.reader,
        "cluster": cluster.identifier,
        "cluster_writer": cluster.writer,
        "cluster_reader": cluster.reader,
        "cluster_a": instance_address(f"{cluster.identifier}-a"),
        "cluster_b": instance_address(f"{cluster.identifier}-b"),
    }
    value: dict[str, Any] = {key: text.format(**names) for key, text in HOSTS[row].items()}
    named = rds.database_of_secret(secret(**value))
    copied = doctor.rds_database(value)
    assert (named and ({"instance": "db"}.get(named[0], named[0]), named[1])) == copied
    reads = rds.RdsDirectory(client).is_reader(secret(**value))
    assert bool(doctor.rds_reader(value, client)) == reads, (row, reads)


def test_a_host_only_its_server_can_judge_counts_as_a_reader_for_the_doctor() -> None:
    """The one place the copies differ on purpose: a non-RDS host with an identifier key
    (the function asks the server whether it is a replica; the doctor cannot)."""
    value = {"host": "db.example.internal", "dbInstanceIdentifier": "db1"}
    assert doctor.rds_reader(value, None) == "the secret names its RDS database (dbInstanceIdentifier)"
