"""Every line a rotation prints, happy or failing, is free of passwords and tokens."""

from __future__ import annotations

import io
import json
import traceback
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import RotationError
from common.observability import logger
from devtools.service import STEPS, LambdaContext
from tests.helpers import store_secret, value

if TYPE_CHECKING:
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


def test_debug_root_logger_prints_no_secret(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    master_arn: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda's advanced logging controls at DEBUG set the root logger's level: every
    logger of the process (botocore's and the drivers' included) then writes, and none
    may write a secret, whatever characters it holds."""
    import logging
    import secrets

    lines = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    everything = io.StringIO()
    catch_all = logging.StreamHandler(everything)
    catch_all.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(catch_all)
    root.setLevel(logging.DEBUG)
    logger.setLevel(logging.DEBUG)
    try:
        # Quotes and backslashes everywhere; non-ASCII where the engine's test server takes it.
        odd = 'Pä"ß\\wörd-' if harness.name == "postgresql" else 'Pa"ss\\wd-'
        user, _, dbname = harness.new_user()
        password = odd + secrets.token_urlsafe(12)
        harness.set_password(user, password, dbname)
        single = store_secret(sm_client, service, f"{user}-debug", harness.secret(user, password, dbname))
        sensitive = [password, value(sm_client, master_arn, "AWSCURRENT")["password"]]
        for arn in (single, single):
            sensitive.append(service.rotate(handler, arn).rotation_token)
        current = value(sm_client, single, "AWSCURRENT")
        alternating = store_secret(
            sm_client, service, f"{user}-debug-alt", current | {"masterarn": master_arn}
        )
        for arn in (alternating, alternating):
            sensitive.append(service.rotate(handler, arn).rotation_token)
        # A failing step too: a password nobody accepts, five characters long.
        short = "Q9!x" + secrets.choice("abcdefgh")
        broken = store_secret(sm_client, service, f"{user}-short", harness.secret(user, short, dbname))
        request = service.start(broken)
        sensitive.append(request.rotation_token)
        with pytest.raises(RotationError):
            handler(request.event("createSecret"), LambdaContext())
    finally:
        root.removeHandler(catch_all)
        root.setLevel(level)
        logger.setLevel(logging.INFO)
    for arn in (single, alternating, broken):
        sensitive += all_passwords(sm_client, arn)
    assert len(set(sensitive)) >= 10

    printed = capfd.readouterr()
    output = "\n".join((lines.getvalue(), everything.getvalue(), printed.out, printed.err))
    assert "rotation step done" in output and "DEBUG" in everything.getvalue()
    forms = {form for s in set(sensitive) for form in _written_forms(s)}
    leaked = sum(1 for form in forms if form in output)
    assert leaked == 0, f"{leaked} written form(s) of a secret in the output"


def _written_forms(secret: str) -> set[str]:
    """How a secret could appear in a log line: raw, JSON-escaped (ASCII or not), twice
    JSON-escaped, as a Python repr of the text or of its UTF-8 bytes."""
    once = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms = set(once)
    for text in once:
        forms |= {json.dumps(text)[1:-1], repr(text)[1:-1], repr(text.encode())[2:-1]}
    return forms
