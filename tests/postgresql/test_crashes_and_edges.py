"""Crashes between steps, an unanswering database, and user names SQL would choke on."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from psycopg2 import sql

from common.errors import DatabaseConnectionError
from devtools.service import STEPS, LambdaContext
from rotators.postgresql.engine import PostgresEngine
from tests.conftest import create_role, new_password, pg_secret
from tests.helpers import handler_for, labels, store_secret, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.postgresql.conftest import AppUser


def assert_labelled_versions_log_in(postgres: PostgresServer, client: SecretsManagerClient, arn: str) -> None:
    """The invariant every failure must keep: AWSCURRENT logs in (and AWSPREVIOUS of
    alternating users, whose previous user is untouched)."""
    current = value(client, arn, "AWSCURRENT")
    assert can_login(postgres, current["username"], current["password"], current["dbname"])


@pytest.mark.parametrize("strategy", ["single", "alternating"])
@pytest.mark.parametrize("completed_steps", [1, 2, 3])
def test_crash_between_steps_then_retried_rotation_completes(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
    master_arn: str,
    strategy: str,
    completed_steps: int,
) -> None:
    arn = app_user.arn
    if strategy == "alternating":
        body = pg_secret(postgres, app_user.name, app_user.password, app_user.dbname, masterarn=master_arn)
        arn = store_secret(sm_client, service, f"{app_user.name}-alt", body)
    request = service.start(arn)
    for step in STEPS[:completed_steps]:
        handler(request.event(step), LambdaContext())
    # The function dies here. A new container picks up Secrets Manager's retry.
    retry = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file)
    for step in STEPS:
        retry(request.event(step), LambdaContext())
    assert labels(sm_client, arn)["AWSCURRENT"] == request.token
    assert "AWSPENDING" not in labels(sm_client, arn)
    assert_labelled_versions_log_in(postgres, sm_client, arn)
    if strategy == "single":
        assert not can_login(postgres, app_user.name, app_user.password, app_user.dbname)


def test_crash_inside_finish_between_label_moves(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    request = service.start(app_user.arn)
    for step in STEPS[:3]:
        handler(request.event(step), LambdaContext())
    old = labels(sm_client, app_user.arn)["AWSCURRENT"]
    sm_client.update_secret_version_stage(  # the first of finishSecret's two calls, then death
        SecretId=app_user.arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=request.token,
        RemoveFromVersionId=old,
    )
    assert_labelled_versions_log_in(postgres, sm_client, app_user.arn)
    for step in STEPS:
        handler(request.event(step), LambdaContext())
    assert labels(sm_client, app_user.arn) == {"AWSCURRENT": request.token, "AWSPREVIOUS": old}


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    for connection in accepted:
        connection.close()
    listener.close()


def test_database_that_does_not_answer_fails_within_the_timeout(
    sm_client: SecretsManagerClient,
    service: RotationService,
    silent_server: int,
    postgres: PostgresServer,
) -> None:
    body = pg_secret(postgres, "app", "Some-pass-123", "postgres") | {"port": silent_server}
    arn = store_secret(sm_client, service, "silent", body)
    handler = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file, DB_CONNECT_TIMEOUT="2")
    request = service.start(arn)
    started = time.monotonic()
    with pytest.raises(DatabaseConnectionError, match=f"cannot connect to 127.0.0.1:{silent_server}"):
        handler(request.event("createSecret"), LambdaContext())
    assert time.monotonic() - started < 6
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)


def test_certificate_for_another_host_is_refused_at_create(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
) -> None:
    body = pg_secret(postgres, app_user.name, app_user.password, app_user.dbname) | {"host": "localhost"}
    arn = store_secret(sm_client, service, "wrong-name", body)
    request = service.start(arn)
    with pytest.raises(DatabaseConnectionError, match='does not match host name "localhost"'):
        handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)


@pytest.mark.parametrize("strategy", ["single", "alternating"])
def test_user_name_with_quotes_semicolons_and_spaces(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
    strategy: str,
) -> None:
    name = f"o'brien\"; DROP TABLE canary; -- {strategy}"
    password = new_password()
    create_role(postgres, name, password)
    postgres.execute("CREATE TABLE canary (v int)", dbname=database)
    postgres.execute(
        sql.SQL("GRANT SELECT ON canary TO {}")
        .format(sql.Identifier(name))
        .as_string(postgres.admin_connection()),
        dbname=database,
    )
    extra = {"masterarn": master_arn} if strategy == "alternating" else {}
    arn = store_secret(
        sm_client, service, f"odd-{strategy}", pg_secret(postgres, name, password, database, **extra)
    )
    for _ in range(2):
        service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == name
    assert can_login(postgres, name, current["password"], database)
    assert postgres.execute("SELECT count(*) FROM canary", dbname=database) == [(0,)]
    if strategy == "alternating":
        previous = value(sm_client, arn, "AWSPREVIOUS")
        assert previous["username"] == name + "_clone"
        assert can_login(postgres, previous["username"], previous["password"], database)
