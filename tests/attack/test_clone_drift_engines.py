"""Alternating users on every engine: privileges given to the clone itself (drift after the
first rotation) must be gone after the next rotations ("exactly the original's")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import unique
from tests.engines import MariaDBHarness, MongoHarness, RedshiftHarness
from tests.helpers import store_secret, value
from tests.scenarios.conftest import account, handler, harness, master_arn  # noqa: F401


def _drift(harness, clone: str, dbname: str) -> tuple[Any, Any]:
    """Give the clone something extra; returns (probe, what the original has)."""
    if isinstance(harness, RedshiftHarness):
        harness.redshift.execute(f'ALTER USER "{clone}" CREATEDB')
        probe = lambda user: harness.redshift.execute(
            "SELECT usecreatedb FROM pg_user WHERE usename = %s", (user,)
        )  # noqa: E731
        return probe, probe
    if isinstance(harness, MariaDBHarness):
        harness.maria.execute("GRANT SELECT ON mysql.* TO %s@'%%'", (clone,))

        def grants(user: str) -> Any:
            return sorted(
                row[0].replace(f"`{user}`", "`U`")
                for row in harness.maria.execute("SHOW GRANTS FOR %s@'%%'", (user,))
                if "IDENTIFIED" not in row[0]
            )

        return grants, grants
    if isinstance(harness, MongoHarness):
        harness.mongo.grant_role(clone, dbname, "root", "admin")
        probe = lambda user: harness.mongo.roles_of(user, dbname)  # noqa: E731
        return probe, probe
    pytest.skip("PostgreSQL: see test_pg_clone_privileges.py")


def test_clone_drift_is_undone(harness, account, master_arn, sm_client, service, handler) -> None:
    body = harness.secret(account.user, account.password, account.dbname, masterarn=master_arn)
    arn = store_secret(sm_client, service, unique("drift"), body)
    service.rotate(handler, arn)
    clone = account.user + "_clone"
    probe, _ = _drift(harness, clone, account.dbname)
    for _ in range(2):
        service.rotate(handler, arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == clone
    assert probe(clone) == probe(account.user), (
        f"{harness.name}: after two rotations the clone holds {probe(clone)}, the original {probe(account.user)}"
    )
