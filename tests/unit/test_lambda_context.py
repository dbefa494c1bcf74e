"""Every log line of an invocation names the invocation: request id, function, cold start."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.logging import logger as powertools_logger

from common.observability import logger
from devtools.service import STEPS, LambdaContext, RotationService
from tests.fake_engine import FakeDatabase, FakeEngine
from tests.helpers import handler_for, store_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction

HOST = "db.example.internal"


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The rotation logger's output, in what counts as a new process for cold starts."""
    captured = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", captured)
    monkeypatch.setattr(powertools_logger, "is_cold_start", True)
    return captured


@pytest.fixture
def handler(sm_client: SecretsManagerClient) -> RotationFunction[Any]:
    database = FakeDatabase(host=HOST, passwords={"app": "initial-Pass-1"})
    return handler_for(FakeEngine(database), sm_client)


@pytest.fixture
def arn(sm_client: SecretsManagerClient, service: RotationService) -> str:
    value = {"engine": "postgres", "host": HOST, "username": "app", "password": "initial-Pass-1"}
    return store_secret(sm_client, service, "app", value)


def records(lines: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines.getvalue().splitlines()]


def test_each_step_logs_its_own_request_and_only_the_first_is_cold(
    handler: RotationFunction[Any],
    arn: str,
    service: RotationService,
    lines: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    request = service.start(arn)
    contexts = {step: LambdaContext("postgresql-rotation") for step in STEPS}
    for step, context in contexts.items():
        handler(request.event(step), context)
    logged = records(lines)
    assert [r["step"] for r in logged if r["message"] == "rotation step done"] == list(STEPS)
    for record in logged:
        context = contexts[record["step"]]
        assert record["function_request_id"] == context.aws_request_id
        assert record["function_name"] == "postgresql-rotation"
        assert record["cold_start"] is (record["step"] == "createSecret")
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cold = [m for m in metrics if "ColdStart" in m]
    assert len(cold) == 1 and cold[0]["function_name"] == "postgresql-rotation"


def test_a_failed_step_names_its_request_too(
    handler: RotationFunction[Any], arn: str, service: RotationService, lines: io.StringIO
) -> None:
    context = LambdaContext()
    with pytest.raises(Exception, match="no-such-version"):
        handler(
            {**service.start(arn).event("createSecret"), "ClientRequestToken": "no-such-version"}, context
        )
    (failure,) = records(lines)
    assert failure["message"] == "rotation step failed"
    assert (failure["function_request_id"], failure["cold_start"]) == (context.aws_request_id, True)


def test_without_a_context_nothing_is_invented(
    handler: RotationFunction[Any], arn: str, service: RotationService, lines: io.StringIO
) -> None:
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext())
    handler(request.event("setSecret"), None)
    _, done = records(lines)
    assert done["message"] == "rotation step done"
    assert not {"function_request_id", "function_name", "cold_start"} & done.keys()


@pytest.mark.parametrize("service_name", [None, "payments-rotation"])
def test_engine_lines_come_out_as_the_rotation_loggers_json(service_name: str | None) -> None:
    """An engine's log line (``common.engine.engine_log``) is a child of the Powertools
    logger whatever ``POWERTOOLS_SERVICE_NAME`` names, so it comes out as that logger's
    JSON with its keys. A fresh interpreter: both names are fixed at import."""
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "POWERTOOLS_SERVICE_NAME"}
    if service_name:
        env["POWERTOOLS_SERVICE_NAME"] = service_name
    script = (
        "from common.observability import logger\n"
        "from common.engine import engine_log\n"
        "logger.append_keys(step='setSecret')\n"
        "engine_log.warning('fell back')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["message"] == "fell back"
    assert line["step"] == "setSecret"
    assert line["service"] == (service_name or "secrets-rotation")
