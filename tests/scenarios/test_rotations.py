"""Whole rotations against every engine's real server, proven by real client logins."""

from __future__ import annotations

import importlib
import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import DatabaseConnectionError
from devtools.certs import CertificateAuthority
from devtools.service import STEPS, LambdaContext
from tests.helpers import handler_for, labels, move_current, store_secret, value

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationService
    from tests.engines import Harness
    from tests.scenarios.conftest import Account


def logs_in(harness: Harness, secret: dict[str, Any]) -> bool:
    return harness.can_login(secret["username"], secret["password"], secret["dbname"])


def test_rotation_proven_by_a_real_client(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
    strategy_arn: str,
) -> None:
    old_version = labels(sm_client, strategy_arn)["AWSCURRENT"]
    refused_before = harness.server.failed_logins()
    request = service.rotate(handler, strategy_arn)
    assert harness.server.failed_logins() == refused_before  # no refused login on the happy path

    assert labels(sm_client, strategy_arn) == {"AWSCURRENT": request.token, "AWSPREVIOUS": old_version}
    current, previous = (
        value(sm_client, strategy_arn, "AWSCURRENT"),
        value(sm_client, strategy_arn, "AWSPREVIOUS"),
    )
    assert logs_in(harness, current)
    assert {k: v for k, v in current.items() if k not in ("username", "password")} == {
        k: v for k, v in previous.items() if k not in ("username", "password")
    }
    if "masterarn" in current:
        assert current["username"] == account.user + "_clone"
        assert logs_in(harness, previous)  # the previous user works until the next rotation
    else:
        assert current["username"] == account.user
        assert not logs_in(harness, previous)


def test_three_rotations_in_a_row(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
    strategy_arn: str,
) -> None:
    seen = [value(sm_client, strategy_arn, "AWSCURRENT")]
    for _ in range(3):
        service.rotate(handler, strategy_arn)
        seen.append(value(sm_client, strategy_arn, "AWSCURRENT"))
        assert "AWSPENDING" not in labels(sm_client, strategy_arn)
    assert len({secret["password"] for secret in seen}) == 4
    assert logs_in(harness, seen[-1])
    if "masterarn" in seen[0]:
        clone = account.user + "_clone"
        assert [s["username"] for s in seen] == [account.user, clone, account.user, clone]
        assert logs_in(harness, seen[-2])
    else:
        assert not any(logs_in(harness, old) for old in seen[:-1])


def test_each_step_twice(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    strategy_arn: str,
) -> None:
    request = service.start(strategy_arn)
    for step in STEPS:
        handler(request.event(step), LambdaContext())
        handler(request.event(step), LambdaContext())
    assert labels(sm_client, strategy_arn)["AWSCURRENT"] == request.token
    assert "AWSPENDING" not in labels(sm_client, strategy_arn)
    assert logs_in(harness, value(sm_client, strategy_arn, "AWSCURRENT"))


@pytest.mark.parametrize("completed_steps", [1, 2, 3])
def test_crash_between_steps_then_retried_rotation_completes(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
    strategy_arn: str,
    completed_steps: int,
) -> None:
    request = service.start(strategy_arn)
    for step in STEPS[:completed_steps]:
        handler(request.event(step), LambdaContext())
    # The function dies here: AWSCURRENT must still log in (the single user's password
    # may already be the pending one: clients briefly fail, the secret is not lost).
    # A new container picks up Secrets Manager's retry of the whole rotation.
    retry = handler_for(harness.engine, sm_client, DB_CA_BUNDLE=harness.server.ca_file)
    for step in STEPS:
        retry(request.event(step), LambdaContext())
    assert labels(sm_client, strategy_arn)["AWSCURRENT"] == request.token
    assert "AWSPENDING" not in labels(sm_client, strategy_arn)
    assert logs_in(harness, value(sm_client, strategy_arn, "AWSCURRENT"))
    if strategy_arn == account.arn:
        assert not harness.can_login(account.user, account.password, account.dbname)


def test_crash_inside_finish_between_label_moves(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
) -> None:
    request = service.start(account.arn)
    for step in STEPS[:3]:
        handler(request.event(step), LambdaContext())
    old = move_current(sm_client, account.arn, request.token)  # finishSecret's first move, then death
    assert logs_in(harness, value(sm_client, account.arn, "AWSCURRENT"))
    for step in STEPS:
        handler(request.event(step), LambdaContext())
    assert labels(sm_client, account.arn) == {"AWSCURRENT": request.token, "AWSPREVIOUS": old}


def test_password_restored_behind_our_back_is_recovered_with_previous(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
) -> None:
    service.rotate(handler, account.arn)
    harness.set_password(account.user, account.password, account.dbname)  # e.g. a restore from a backup
    service.rotate(handler, account.arn)
    assert logs_in(harness, value(sm_client, account.arn, "AWSCURRENT"))


def test_secret_in_awss_format_rotates_unchanged(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
) -> None:
    """AWS's console writes the port as a number, no ssl key, and identifiers it keeps."""
    body = {
        "engine": harness.engine_key,
        "host": harness.server.host,
        "username": account.user,
        "password": account.password,
        "port": harness.server.port,
        "dbname": account.dbname,
        "dbInstanceIdentifier": "database-1",
    }
    arn = store_secret(sm_client, service, "aws-format", json.dumps(body))
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert {k: v for k, v in current.items() if k != "password"} == {
        k: v for k, v in body.items() if k != "password"
    }
    assert logs_in(harness, current)


def test_handler_module_as_lambda_imports_it(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler string Lambda is given, configured by the environment alone."""
    monkeypatch.setenv("DB_CA_BUNDLE", harness.server.ca_file)
    module = importlib.import_module(harness.app_module)
    monkeypatch.setattr(module.lambda_handler, "_rotator", None)  # a fresh container
    service.rotate(module.lambda_handler, account.arn)
    assert logs_in(harness, value(sm_client, account.arn, "AWSCURRENT"))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
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
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
    silent_port: int,
) -> None:
    body = harness.secret(account.user, account.password, account.dbname) | {"port": silent_port}
    arn = store_secret(sm_client, service, "silent", body)
    handler = handler_for(
        harness.engine, sm_client, DB_CA_BUNDLE=harness.server.ca_file, DB_CONNECT_TIMEOUT="2"
    )
    request = service.start(arn)
    started = time.monotonic()
    with pytest.raises(DatabaseConnectionError, match=f"cannot connect to 127.0.0.1:{silent_port}"):
        handler(request.event("createSecret"), LambdaContext())
    assert time.monotonic() - started < 6
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)


def test_certificate_for_another_host_is_refused_at_create(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
) -> None:
    body = harness.secret(account.user, account.password, account.dbname) | {"host": "localhost"}
    arn = store_secret(sm_client, service, "wrong-name", body)
    request = service.start(arn)
    with pytest.raises(DatabaseConnectionError, match="localhost") as raised:
        handler(request.event("createSecret"), LambdaContext())
    assert "match" in str(raised.value).lower()  # a name mismatch, not some other failure
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)


def test_untrusted_ca_is_refused_and_nothing_is_lost(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
    tmp_path: Path,
) -> None:
    other = CertificateAuthority.create(tmp_path, "other-ca")
    handler = handler_for(harness.engine, sm_client, DB_CA_BUNDLE=str(other.cert_path))
    refused_before = harness.server.failed_logins()
    request = service.start(account.arn)
    with pytest.raises(DatabaseConnectionError, match="certificate verify failed"):
        handler(request.event("createSecret"), LambdaContext())
    # No fallback to plaintext, and no other credentials tried after a TLS failure.
    assert harness.server.failed_logins() == refused_before
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=account.arn, VersionId=request.token)
    assert harness.can_login(account.user, account.password, account.dbname)
