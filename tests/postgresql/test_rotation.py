"""Whole rotations against the real PostgreSQL server, proven by real clients."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Any

from tests.conftest import pg_secret
from tests.helpers import labels, store_secret, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.postgresql.conftest import AppUser


def psql(
    postgres: PostgresServer, user: str, password: str, dbname: str, query: str
) -> subprocess.CompletedProcess[str]:
    """The real command-line client over verified TLS."""
    conninfo = (
        f"host={postgres.host} port={postgres.port} dbname={dbname} user={user} "
        f"sslmode=verify-full sslrootcert={postgres.ca_file} connect_timeout=5"
    )
    return subprocess.run(
        ["psql", conninfo, "-XAtc", query],
        env={**os.environ, "PGPASSWORD": password},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_single_user_rotation_proven_by_psql(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    failed_before = postgres.failed_logins()
    request = service.rotate(handler, app_user.arn)
    assert postgres.failed_logins() == failed_before  # no refused login on the happy path

    assert labels(sm_client, app_user.arn)["AWSCURRENT"] == request.token
    assert "AWSPENDING" not in labels(sm_client, app_user.arn)
    current = value(sm_client, app_user.arn, "AWSCURRENT")
    assert value(sm_client, app_user.arn, "AWSPREVIOUS")["password"] == app_user.password
    assert (current["dbClusterIdentifier"], current["team"], current["port"]) == (
        "cluster-1",
        "x",
        postgres.port,
    )

    accepted = psql(postgres, app_user.name, current["password"], app_user.dbname, "SELECT current_user")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == app_user.name
    refused = psql(postgres, app_user.name, app_user.password, app_user.dbname, "SELECT 1")
    assert refused.returncode != 0
    assert "password authentication failed" in refused.stderr


def test_new_password_never_reaches_the_server_log(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    postgres.execute("ALTER SYSTEM SET log_statement = 'all'")
    postgres.execute("SELECT pg_reload_conf()")
    try:
        service.rotate(handler, app_user.arn)
    finally:
        postgres.execute("ALTER SYSTEM RESET log_statement")
        postgres.execute("SELECT pg_reload_conf()")
    new = value(sm_client, app_user.arn, "AWSCURRENT")["password"]
    log = postgres.log_text()
    assert 'ALTER ROLE "' + app_user.name + "\" WITH PASSWORD 'SCRAM-SHA-256$" in log
    assert new not in log


def test_aurora_engine_name_is_served(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    body = pg_secret(postgres, app_user.name, app_user.password, app_user.dbname, engine="aurora-postgresql")
    arn = store_secret(sm_client, service, "aurora", body)
    service.rotate(handler, arn)
    assert can_login(
        postgres, app_user.name, value(sm_client, arn, "AWSCURRENT")["password"], app_user.dbname
    )
