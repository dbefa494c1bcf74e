"""Whole rotations against the real PostgreSQL server, proven by real clients."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING, Any

from devtools.service import STEPS, LambdaContext
from tests.conftest import pg_secret
from tests.helpers import labels, store_secret, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    import pytest
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


def test_three_rotations_in_a_row(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    passwords = [app_user.password]
    for _ in range(3):
        service.rotate(handler, app_user.arn)
        passwords.append(value(sm_client, app_user.arn, "AWSCURRENT")["password"])
    assert len(set(passwords)) == 4
    assert can_login(postgres, app_user.name, passwords[-1], app_user.dbname)
    assert not any(can_login(postgres, app_user.name, old, app_user.dbname) for old in passwords[:-1])


def test_each_step_twice(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    request = service.start(app_user.arn)
    for step in STEPS:
        handler(request.event(step), LambdaContext())
        handler(request.event(step), LambdaContext())
    current = value(sm_client, app_user.arn, "AWSCURRENT")
    assert labels(sm_client, app_user.arn) == {
        "AWSCURRENT": request.token,
        "AWSPREVIOUS": labels(sm_client, app_user.arn)["AWSPREVIOUS"],
    }
    assert can_login(postgres, app_user.name, current["password"], app_user.dbname)


def test_crash_after_set_then_whole_rotation_retried(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    """The password changed, then the function died: AWSCURRENT no longer logs in until
    Secrets Manager's retry completes the same rotation."""
    request = service.start(app_user.arn)
    handler(request.event("createSecret"), LambdaContext())
    handler(request.event("setSecret"), LambdaContext())
    for step in STEPS:  # Secrets Manager retries the whole rotation with the same token
        handler(request.event(step), LambdaContext())
    current = value(sm_client, app_user.arn, "AWSCURRENT")
    assert labels(sm_client, app_user.arn)["AWSCURRENT"] == request.token
    assert can_login(postgres, app_user.name, current["password"], app_user.dbname)


def test_password_restored_behind_our_back_is_recovered_with_previous(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    service.rotate(handler, app_user.arn)
    postgres.execute(f'ALTER ROLE "{app_user.name}" PASSWORD %s', (app_user.password,))  # a restore
    service.rotate(handler, app_user.arn)
    current = value(sm_client, app_user.arn, "AWSCURRENT")
    assert can_login(postgres, app_user.name, current["password"], app_user.dbname)


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


def test_secret_in_awss_format_rotates_unchanged(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    """AWS's console writes the port as a number and no dbname or ssl key."""
    body = {
        "engine": "postgres",
        "host": postgres.host,
        "username": app_user.name,
        "password": app_user.password,
        "port": postgres.port,
        "dbInstanceIdentifier": "database-1",
    }
    arn = store_secret(sm_client, service, "aws-format", json.dumps(body))
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert set(current) == set(body)
    assert {k: v for k, v in current.items() if k != "password"} == {
        k: v for k, v in body.items() if k != "password"
    }
    assert can_login(postgres, app_user.name, current["password"])


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


def test_handler_module_as_lambda_imports_it(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    app_user: AppUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler string Lambda is given, with configuration from the environment only."""
    import importlib

    monkeypatch.setenv("DB_CA_BUNDLE", postgres.ca_file)
    module = importlib.import_module("rotators.postgresql.app")
    monkeypatch.setattr(module.lambda_handler, "_rotator", None)  # a fresh container
    service.rotate(module.lambda_handler, app_user.arn)
    current = value(sm_client, app_user.arn, "AWSCURRENT")
    assert can_login(postgres, app_user.name, current["password"], app_user.dbname)
