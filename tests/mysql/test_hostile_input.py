"""Drift on MariaDB: a clone stripped of its grants between setSecret and testSecret
(NUL bytes and CA bundles for every engine: tests/scenarios/test_hostile_input.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pymysql
import pytest

from common.errors import VerificationError
from devtools.service import LambdaContext
from tests.conftest import new_password, unique
from tests.helpers import labels, store_secret, value
from tests.mysql.conftest import maria_secret, mariadb_client

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


@pytest.fixture
def app_user(mariadb: MariaDBServer) -> tuple[str, str, str]:
    user, password, db = unique("app"), new_password(), unique("db")
    mariadb.create_database(db)
    mariadb.create_user(user, password, db)
    return user, password, db


def test_a_clone_stripped_of_its_grants_fails_test_secret(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    master_arn: str,
    app_user: tuple[str, str, str],
) -> None:
    user, password, db = app_user
    clone = f"{user}_clone"
    # No dbname: the login then succeeds without a database grant, and testSecret reaches
    # the privilege proof.
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, password, masterarn=master_arn))
    before = labels(sm_client, arn)
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext())
    handler(request.event("setSecret"), LambdaContext())
    pending = value(sm_client, arn, "AWSPENDING")
    assert pending["username"] == clone
    # As an administrator, behind the rotation's back: the clone keeps only USAGE.
    mariadb.execute(f"REVOKE ALL PRIVILEGES ON `{db}`.* FROM %s@'%%'", (clone,))
    grants = [str(row[0]) for row in mariadb.execute("SHOW GRANTS FOR %s@'%%'", (clone,))]
    assert len(grants) == 1 and grants[0].startswith("GRANT USAGE ON *.*"), grants
    # testSecret cannot read the original's grants as the clone, so only its own count.
    session = mariadb.connect_as(clone, pending["password"])
    with pytest.raises(pymysql.err.OperationalError) as denied, session.cursor() as cursor:
        cursor.execute("SHOW GRANTS FOR %s@'%%'", (user,))
    session.close()
    assert denied.value.args[0] == 1044

    with pytest.raises(VerificationError, match=f"user '{clone}'@'%' holds no privileges"):
        handler(request.event("testSecret"), LambdaContext())
    assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]
    assert mariadb_client(mariadb, user, password, "SELECT 1").returncode == 0

    # setSecret run again (Secrets Manager's retry) mirrors the grants back; the rotation completes.
    for step in ("setSecret", "testSecret", "finishSecret"):
        handler(request.event(step), LambdaContext())
    assert value(sm_client, arn, "AWSCURRENT")["username"] == clone
    assert mariadb.can_login(clone, pending["password"], db)
