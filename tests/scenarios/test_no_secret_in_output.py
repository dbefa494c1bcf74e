"""Every line a rotation prints, happy or failing, is free of passwords and tokens."""

from __future__ import annotations

import io
import json
import traceback
from typing import TYPE_CHECKING, Any

from common.errors import RotationError
from common.observability import logger
from devtools.service import STEPS, LambdaContext
from tests.helpers import store_secret, value

if TYPE_CHECKING:
    import pytest
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationService
    from tests.engines import Harness
    from tests.scenarios.conftest import Account


def all_passwords(client: SecretsManagerClient, arn: str) -> list[str]:
    """Every password any version of the secret has held."""
    passwords = []
    for version in client.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]:
        try:
            text = client.get_secret_value(SecretId=arn, VersionId=version["VersionId"])["SecretString"]
        except client.exceptions.ResourceNotFoundException:
            continue
        passwords.append(json.loads(text)["password"])
    return passwords


def test_rotations_happy_and_failing_print_no_secret(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
    master_arn: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The lines exactly as Lambda would ship them: Powertools' handler, our formatter.
    lines = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    caplog.set_level("DEBUG")
    sensitive: list[str] = [value(sm_client, master_arn, "AWSCURRENT")["password"]]
    errors: list[BaseException] = []

    def rotate(arn: str, steps: tuple[str, ...] = STEPS) -> None:
        request = service.start(arn)
        sensitive.append(request.rotation_token)
        for step in steps:
            try:
                handler(request.event(step), LambdaContext())
            except RotationError as error:
                errors.append(error)
                return

    # Happy: single user twice, a setSecret retried after the password changed (one
    # refused login, then pending), alternating users twice.
    rotate(account.arn)
    rotate(account.arn)
    rotate(account.arn, ("createSecret", "setSecret", "setSecret", "testSecret", "finishSecret"))
    current = value(sm_client, account.arn, "AWSCURRENT")
    alternating = store_secret(sm_client, service, "alternating", current | {"masterarn": master_arn})
    rotate(alternating)
    rotate(alternating)
    # Failing: a password nobody accepts; a pending version for another user.
    body = harness.secret(account.user, "Wrong-pass-123", account.dbname)
    broken = store_secret(sm_client, service, "broken", body)
    rotate(broken)
    mismatched = store_secret(sm_client, service, "mismatch", value(sm_client, account.arn, "AWSCURRENT"))
    request = service.start(mismatched)
    sensitive.append(request.rotation_token)
    sm_client.put_secret_value(
        SecretId=mismatched,
        ClientRequestToken=request.token,
        VersionStages=["AWSPENDING"],
        SecretString=json.dumps(body | {"username": "someone", "password": "Other-pass-456"}),
    )
    try:
        handler(request.event("setSecret"), LambdaContext())
    except RotationError as error:
        errors.append(error)

    assert len(errors) == 2
    for arn in (account.arn, alternating, broken, mismatched):
        sensitive += all_passwords(sm_client, arn)
    sensitive = [s for s in sensitive if s]
    assert len(sensitive) >= 12

    printed = capfd.readouterr()
    output = lines.getvalue() + printed.out + printed.err
    # Our logger's records, before formatting (botocore's own DEBUG wire log is off by default).
    records = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name == logger.name)
    failures = "\n".join("".join(traceback.format_exception(error)) for error in errors)
    assert "rotation step done" in output and "rotation step failed" in output and records
    for text, where in ((output, "log output"), (records, "log records"), (failures, "errors")):
        leaked = sum(1 for s in sensitive if s in text or json.dumps(s)[1:-1] in text)
        # Only the count is reported: the assertion message must not print a secret either.
        assert leaked == 0, f"{leaked} secret value(s) in the {where}"
