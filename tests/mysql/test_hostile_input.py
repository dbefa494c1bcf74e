"""Hostile input and drift on MariaDB: NUL bytes, a CA bundle that is not PEM, and a
clone stripped of its grants between setSecret and testSecret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pymysql
import pytest

from common.errors import SecretFormatError, TlsConfigurationError, VerificationError
from devtools.service import LambdaContext
from rotators.mysql.engine import MySQLEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, labels, store_secret, value
from tests.hostile_input import NUL_VALUES, refused_at_create
from tests.mysql.conftest import maria_secret, mariadb_client

if TYPE_CHECKING:
    from pathlib import Path

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


@pytest.mark.parametrize(("key", "hostile"), NUL_VALUES)
def test_a_nul_byte_is_refused_naming_the_key(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    caplog: pytest.LogCaptureFixture,
    app_user: tuple[str, str, str],
    key: str,
    hostile: str,
) -> None:
    user, password, db = app_user
    body = maria_secret(mariadb, user, password, dbname=db) | {key: hostile}
    refused_at_create(
        handler, service, sm_client, caplog, body, SecretFormatError, f"key '{key}' contains a NUL byte"
    )
    assert mariadb.can_login(user, password, db)


def test_a_ca_bundle_that_is_not_pem_names_the_variable(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    caplog: pytest.LogCaptureFixture,
    app_user: tuple[str, str, str],
    tmp_path: Path,
) -> None:
    # A DER file: what a CA download often is. PyMySQL raised a bare ssl.SSLError.
    bundle = tmp_path / "rds-ca.der"
    bundle.write_bytes(b"0\x82\x03\x1a0\x82\x02\x02evil")
    handler = handler_for(MySQLEngine(), sm_client, DB_CA_BUNDLE=str(bundle))
    user, password, db = app_user
    refused_at_create(
        handler,
        service,
        sm_client,
        caplog,
        maria_secret(mariadb, user, password, dbname=db),
        TlsConfigurationError,
        r"CA bundle '.*rds-ca.der' named by DB_CA_BUNDLE is not a PEM file of CA certificates",
    )


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
