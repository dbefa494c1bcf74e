"""Attacks on the Lambda entry point: Powertools' event logging, the collector state of
warm invocations, odd Powertools settings."""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from common.errors import ConfigurationError
from common.handler import RotationFunction
from common.observability import logger
from devtools.service import LambdaContext, RotationService
from tests.fake_engine import FakeDatabase, FakeEngine
from tests.helpers import store_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

ROOT = Path(__file__).resolve().parents[2]
HOST = "db.example.internal"


def test_powertools_log_event_writes_the_rotation_token_in_clear(
    monkeypatch: pytest.MonkeyPatch, sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """Regression (attack 3, was: the RotationToken in clear). An operator who turns on
    Powertools' event logging (POWERTOOLS_LOGGER_LOG_EVENT, a documented switch any
    function's configuration may carry) gets no event logged: RotationFunction wraps its
    steps and preflights with inject_lambda_context(log_event=False), so the event,
    RotationToken included, is never written, before or after the step registers the
    token for masking."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    captured = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", captured)
    database = FakeDatabase(host=HOST, passwords={"app": "initial-Pass-1"})
    value = {"engine": "postgres", "host": HOST, "username": "app", "password": "initial-Pass-1"}
    arn = store_secret(sm_client, service, "app", value)
    # Built the way app.py builds it at import: the switch is read then.
    handler = RotationFunction(FakeEngine(database), client=sm_client)
    request = service.start(arn)
    event = request.event("createSecret")
    token = event.get("RotationToken")
    assert token, "the service emulation sends a RotationToken"
    handler(event, LambdaContext("postgresql-rotation"))
    logged = captured.getvalue()
    # Compared as a flag, so that a failure does not print the token itself.
    leaked = [line[:60] for line in logged.splitlines() if token in line]
    assert not leaked, f"the RotationToken is in {len(leaked)} log line(s), e.g. {leaked[:1]}"
    assert "rotation step done" in logged  # the capture saw the step's own lines
    assert "RotationToken" not in logged  # nor the event, masked


def test_a_failing_configuration_freezes_a_new_client_on_every_warm_invocation(
    monkeypatch: pytest.MonkeyPatch, sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """Regression (attack 3, was: thousands of objects frozen per failing invocation).
    With a bad setting (DB_CONNECT_TIMEOUT=abc) every invocation fails, as it should,
    and the frozen set stops growing after the first: the settings are read before the
    Secrets Manager client is built, the client is built once per container, and a warm
    long_lived() collects before it freezes, so no invocation's garbage (a dropped
    client, the exception and its frames) is frozen for the container's life."""
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "abc")
    database = FakeDatabase(host=HOST, passwords={"app": "initial-Pass-1"})
    value = {"engine": "postgres", "host": HOST, "username": "app", "password": "initial-Pass-1"}
    arn = store_secret(sm_client, service, "app", value)
    handler = RotationFunction(FakeEngine(database))  # the client built as in Lambda
    event = service.start(arn).event("createSecret")
    counts = []
    try:
        for _ in range(21):
            with pytest.raises(Exception, match="DB_CONNECT_TIMEOUT"):
                handler(dict(event), LambdaContext("postgresql-rotation"))
            counts.append(gc.get_freeze_count())
    finally:
        gc.unfreeze()
    growth = counts[-1] - counts[1]
    assert growth < 1000, f"frozen objects after each warm invocation: {counts}"


def _fresh_process(code: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", **environ)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


_STEP = (
    "import json, rotators.postgresql.app as app\n"
    "event = {'Step': 'createSecret', 'SecretId': 'arn:aws:secretsmanager:us-east-1:123456789012:"
    "secret:app-AbCdEf', 'ClientRequestToken': '0' * 36}\n"
    "try:\n    app.lambda_handler(event, None)\n"
    "except Exception as error:\n    print(json.dumps([type(error).__name__, str(error)]))\n"
)


@pytest.mark.parametrize("level", ["verbose", "5", "TRACE"])
def test_an_odd_log_level_fails_with_a_configuration_error_naming_it(level: str) -> None:
    """Regression (attack 3, was: Powertools' bare ValueError at import). A
    POWERTOOLS_LOG_LEVEL Powertools does not know (it is declared in the template for
    --env-vars) lets the handler import, at INFO, and fails every step as a
    ConfigurationError naming the variable, logged and counted like any bad setting."""
    result = _fresh_process(_STEP, POWERTOOLS_LOG_LEVEL=level)
    assert result.returncode == 0, result.stderr[-600:]
    name, message = json.loads(result.stdout.splitlines()[-1])
    assert name == "ConfigurationError"
    assert "POWERTOOLS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in message
    assert "rotation step failed" in result.stdout


@pytest.mark.parametrize(("level", "expected"), [(" INFO ", "INFO"), ("debug", "DEBUG")])
def test_a_log_level_in_any_case_and_blanks_is_taken(level: str, expected: str) -> None:
    """Case and surrounding blanks are forgiven: the level is the one named."""
    code = "import logging, rotators.postgresql.app; from common.observability import logger\n"
    code += "print(logging.getLevelName(logger.log_level))"
    result = _fresh_process(code, POWERTOOLS_LOG_LEVEL=level)
    assert result.returncode == 0, result.stderr[-600:]
    assert result.stdout.split()[-1] == expected


def test_the_collector_is_on_and_nothing_of_the_handler_frozen_twice_after_import() -> None:
    """Importing a handler leaves the collector as it found it (held)."""
    result = _fresh_process(
        "import gc; import rotators.postgresql.app; print(gc.isenabled(), gc.get_threshold())"
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.split()[0] == "True"


@pytest.mark.parametrize("endpoint", ["172.17.0.1:5000", " ", "http://[::1", "ftp://172.17.0.1:5000"])
def test_a_malformed_secrets_manager_endpoint_is_named(
    monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    """Regression (attack 3, was: botocore's "Invalid endpoint" / "Invalid IPv6 URL" /
    HTTPClientError after retries, an *unexpected* failure naming nothing).
    SECRETS_MANAGER_ENDPOINT is declared in the template for env.json; a missing scheme
    (`172.17.0.1:5000`), blanks, an unclosed IPv6 bracket or another scheme fail the
    step as a ConfigurationError naming the variable, before any call."""
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", endpoint)
    from rotators.postgresql.engine import PostgresEngine

    handler = RotationFunction(PostgresEngine())
    event = {
        "Step": "createSecret",
        "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf",
        "ClientRequestToken": "0" * 36,
    }
    with pytest.raises(ConfigurationError) as raised:
        handler(event, LambdaContext("postgresql-rotation"))
    assert "SECRETS_MANAGER_ENDPOINT must be an http:// or https:// URL" in str(raised.value), (
        f"{type(raised.value).__name__}: {raised.value}"
    )
