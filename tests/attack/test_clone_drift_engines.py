"""Alternating users: privileges given to the clone itself after the first rotation (drift)
are gone after the next rotations, which make the clone "exactly the original's" again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import unique
from tests.engines import MariaDBHarness, MongoHarness, harness_named, store_master_secret
from tests.helpers import handler_for, store_secret, value

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.service import RotationService
    from tests.engines import Harness


def drift(harness: Harness, clone: str, dbname: str) -> Callable[[str], Any]:
    """Give ``clone`` a privilege its original lacks; returns what a user holds, in a form
    that compares equal between two users with the same privileges."""
    if isinstance(harness, MariaDBHarness):
        maria = harness.maria
        maria.execute("GRANT SELECT ON mysql.* TO %s@'%%'", (clone,))

        def grants(user: str) -> list[str]:
            rows = maria.execute("SHOW GRANTS FOR %s@'%%'", (user,))
            return sorted(row[0].replace(f"`{user}`", "`U`") for row in rows if "IDENTIFIED" not in row[0])

        return grants
    assert isinstance(harness, MongoHarness)
    mongo = harness.mongo
    mongo.grant_role(clone, dbname, "root", "admin")
    return lambda user: mongo.roles_of(user, dbname)


@pytest.mark.parametrize("engine", ["mariadb", "mongodb"])
def test_clone_drift_is_undone(
    request: pytest.FixtureRequest, sm_client: SecretsManagerClient, service: RotationService, engine: str
) -> None:
    """After the first rotation the clone is AWSCURRENT's user; a privilege granted to it
    alone shows, and two more rotations take it away again."""
    harness = harness_named(engine, request)
    handler = handler_for(harness.engine, sm_client, DB_CA_BUNDLE=harness.server.ca_file)
    user, password, dbname = harness.new_user()
    master_arn = store_master_secret(harness, sm_client, service)
    arn = store_secret(
        sm_client, service, unique("drift"), harness.secret(user, password, dbname, masterarn=master_arn)
    )
    service.rotate(handler, arn)
    clone = user + "_clone"
    privileges = drift(harness, clone, dbname)
    assert privileges(clone) != privileges(user), "the drift did not show"
    for _ in range(2):
        service.rotate(handler, arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == clone
    assert privileges(clone) == privileges(user), (
        f"{harness.name}: after two rotations the clone holds {privileges(clone)}, the original "
        f"{privileges(user)}"
    )
