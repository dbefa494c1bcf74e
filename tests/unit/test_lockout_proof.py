"""Steps out of order, abandoned rotations and bad configuration, through a fake engine and moto."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest

from common.engine import Lockout, Login
from common.errors import (
    ConfigurationError,
    DatabaseLoginError,
    EventFormatError,
    SecretFormatError,
    SecretMismatchError,
    SecretsManagerError,
    StagingError,
)
from common.handler import RotationFunction
from common.observability import logger
from devtools.service import STEPS, LambdaContext, RotationService
from tests.fake_engine import FakeDatabase, FakeEngine, FakeSession, secret
from tests.helpers import handler_for, labels, store_secret, value
from tests.operator.test_preflight import FUNCTION

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


def test_finish_before_create_moves_nothing(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    before = labels(sm_client, arn)
    request = service.start(arn)
    with pytest.raises(StagingError, match="labelled AWSPENDING has no value yet"):
        handler_for(FakeEngine(database), sm_client)(request.event("finishSecret"), None)
    assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]


@pytest.mark.parametrize("alternating", [False, True])
def test_finish_right_after_create_moves_nothing(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase, alternating: bool
) -> None:
    extra = {}
    if alternating:
        extra["masterarn"] = store_secret(sm_client, service, "master", secret("admin", "master-Pass-1"))
    arn = store_secret(sm_client, service, "app", secret(**extra))
    current = labels(sm_client, arn)["AWSCURRENT"]
    request = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    handler(request.event("createSecret"), None)
    with pytest.raises(DatabaseLoginError, match="refused the AWSPENDING credentials"):
        handler(request.event("finishSecret"), None)
    assert labels(sm_client, arn) == {"AWSCURRENT": current, "AWSPENDING": request.token}
    # The rotation then completes normally, and a later one too.
    for step in STEPS[1:]:
        handler(request.event(step), None)
    service.rotate(handler, arn)
    now = value(sm_client, arn, "AWSCURRENT")
    assert database.passwords[now["username"]] == now["password"]


def abandon(sm_client: SecretsManagerClient, arn: str, token: str) -> None:
    """What AWS tells an operator to do with a stuck rotation: remove AWSPENDING from it."""
    sm_client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)


def test_restart_after_an_abandoned_rotation_finds_the_unlabelled_password(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    abandoned = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    for step in STEPS[:2]:
        handler(abandoned.event(step), None)
    abandon(sm_client, arn, abandoned.token)
    assert abandoned.token not in sm_client.describe_secret(SecretId=arn)["VersionIdsToStages"]

    fresh = handler_for(FakeEngine(database), sm_client)  # a new container: nothing cached
    service.rotate(fresh, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert database.passwords["app"] == current["password"]
    assert fresh.rotator.store.calls["ListSecretVersionIds"] == 2  # createSecret and setSecret
    service.rotate(fresh, arn)  # and the next rotation is an ordinary one
    assert database.passwords["app"] == value(sm_client, arn, "AWSCURRENT")["password"]


def test_unlabelled_versions_are_tried_newest_first_and_bounded(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    handler = handler_for(FakeEngine(database), sm_client)
    abandoned_passwords = []
    for _ in range(5):  # five rotations abandoned after setSecret, one after another
        request = service.start(arn)
        for step in STEPS[:2]:
            handler(request.event(step), None)
        abandoned_passwords.append(database.passwords["app"])
        abandon(sm_client, arn, request.token)
    database.passwords["app"] = abandoned_passwords[0]  # the oldest: beyond the bound
    failed_before = database.failed_logins
    with pytest.raises(DatabaseLoginError, match="unlabelled version"):
        service.rotate(handler_for(FakeEngine(database), sm_client), arn)
    # AWSCURRENT, AWSPREVIOUS is absent, and three unlabelled versions: four refused logins.
    assert database.failed_logins - failed_before == 4


class LockingEngine(FakeEngine):
    """A server that blocks an account after two refused logins in a row."""

    def login_lockout(self, connection: FakeSession, login: Login) -> Lockout:
        return Lockout(2, known=True, detail="blocks after 2")


def test_a_lockout_read_in_one_step_orders_and_stops_the_next(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    """createSecret finds the password restored to AWSPREVIOUS after one refused login and
    reads the limit (2); setSecret then tries AWSPREVIOUS first (no refused login). With
    the limit known, a later refused first login is the last: the step stops rather than
    make the refusal that blocks."""
    arn = store_secret(sm_client, service, "app", secret())
    handler = handler_for(LockingEngine(database), sm_client)
    service.rotate(handler, arn)
    database.passwords["app"] = value(sm_client, arn, "AWSPREVIOUS")["password"]  # restored
    before = database.failed_logins
    service.rotate(handler, arn)
    assert database.failed_logins - before == 1  # createSecret's AWSCURRENT only
    assert database.passwords["app"] == value(sm_client, arn, "AWSCURRENT")["password"]

    database.passwords["app"] = value(sm_client, arn, "AWSPREVIOUS")["password"]  # again
    before = database.failed_logins
    stop = r"counts 1 refused login in a row \(AWSCURRENT in this step\) and blocks the account after 2"
    with pytest.raises(DatabaseLoginError, match=stop):
        service.rotate(handler, arn)
    assert database.failed_logins - before == 1


def test_the_steps_refused_logins_count_for_the_preflight_and_retries(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    """One count per account and container: after a step stopped one refused login short
    of the limit (2), neither its retry nor a preflight in the same container logs in
    (AWSCURRENT included); an accepted login elsewhere is not seen, so they keep waiting."""
    arn = store_secret(sm_client, service, "app", secret())
    handler = handler_for(LockingEngine(database), sm_client)
    service.rotate(handler, arn)
    database.passwords["app"] = value(sm_client, arn, "AWSPREVIOUS")["password"]
    service.rotate(handler, arn)  # learns the limit (2)
    database.passwords["app"] = "changed-Behind-our-back"
    request = service.start(arn)
    before = database.failed_logins
    with pytest.raises(DatabaseLoginError, match="counts 1 refused login in a row"):
        handler(request.event("createSecret"), None)
    with pytest.raises(DatabaseLoginError, match=r"counts 1 refused login in a row and blocks"):
        handler(request.event("createSecret"), None)  # Secrets Manager's retry
    report = handler({"Preflight": {"SecretId": arn}}, LambdaContext(FUNCTION))
    assert report is not None
    tried = {login["outcome"] for login in report["logins"] if login["user"]}  # "no value": AWSPENDING
    assert tried == {"not tried"}
    assert database.failed_logins - before == 1


def test_unlabelled_versions_of_another_user_or_server_are_not_used(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    database.passwords["admin"] = "abandoned-Pass-7"
    for body in (secret("admin", "abandoned-Pass-7"), secret(password="x-Pass-12345", host="other.internal")):
        sm_client.put_secret_value(SecretId=arn, SecretString=json.dumps(body), VersionStages=["OLD"])
        version = labels(sm_client, arn)["OLD"]
        sm_client.update_secret_version_stage(SecretId=arn, VersionStage="OLD", RemoveFromVersionId=version)
    database.passwords["app"] = "changed-Behind-our-back"
    with pytest.raises(DatabaseLoginError, match="with the AWSCURRENT credentials$"):
        service.rotate(handler_for(FakeEngine(database), sm_client), arn)
    assert database.passwords["admin"] == "abandoned-Pass-7"


@pytest.mark.parametrize(("app_port", "master_port"), [(None, 5432), (5432, None), ("5432", None)])
def test_a_missing_default_port_names_the_same_server(
    sm_client: SecretsManagerClient,
    service: RotationService,
    database: FakeDatabase,
    app_port: Any,
    master_port: Any,
) -> None:
    master_body = secret("admin", "master-Pass-1") | {"port": master_port}
    master = store_secret(sm_client, service, "master", master_body)
    arn = store_secret(sm_client, service, "app", secret(masterarn=master) | {"port": app_port})
    service.rotate(handler_for(FakeEngine(database), sm_client), arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == "app_clone"


def test_master_secret_that_does_not_exist_names_the_key(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nothing-here-AbCdEf"
    arn = store_secret(sm_client, service, "app", secret(masterarn=missing))
    request = service.start(arn)
    with pytest.raises(SecretFormatError, match=r"master secret \(key 'masterarn'\) arn:.*nothing-here"):
        handler_for(FakeEngine(database), sm_client)(request.event("createSecret"), None)


def capture(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    lines = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    return lines


def test_configuration_errors_are_failed_steps(
    sm_client: SecretsManagerClient,
    service: RotationService,
    database: FakeDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    request = service.start(arn)
    lines = capture(monkeypatch)
    handler = handler_for(FakeEngine(database), sm_client, PASSWORD_LENGTH="lots")
    with pytest.raises(ConfigurationError, match="PASSWORD_LENGTH"):
        handler(request.event("createSecret"), None)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "soon")
    from_environment = RotationFunction(FakeEngine(database), client=sm_client)
    with pytest.raises(ConfigurationError, match="DB_CONNECT_TIMEOUT"):
        from_environment(request.event("createSecret"), None)
    failures = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [(f["message"], f["error"]) for f in failures] == [
        ("rotation step failed", "ConfigurationError")
    ] * 2
    assert "PASSWORD_LENGTH" in failures[0]["reason"] and "DB_CONNECT_TIMEOUT" in failures[1]["reason"]
    assert capsys.readouterr().out.count('"StepFailed":[1.0]') == 2


def test_oversized_inputs_are_not_echoed_whole(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    request = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    huge = "x" * 1_000_000
    with pytest.raises(EventFormatError) as bad_step:
        handler({**request.event("createSecret"), "Step": huge}, None)
    with pytest.raises(StagingError) as bad_token:
        handler({**request.event("createSecret"), "ClientRequestToken": huge}, None)
    with pytest.raises(SecretsManagerError) as bad_id:
        handler({**request.event("createSecret"), "SecretId": huge}, None)
    for raised in (bad_step, bad_token, bad_id):
        assert len(str(raised.value)) < 400


def test_an_unforeseen_failure_leaves_as_our_error_with_its_message_masked(
    sm_client: SecretsManagerClient,
    service: RotationService,
    database: FakeDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from common.errors import UnexpectedError

    arn = store_secret(sm_client, service, "app", secret())
    request = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    handler(request.event("createSecret"), None)
    pending_password = value(sm_client, arn, "AWSPENDING")["password"]

    def quoting_driver(*_: Any, **__: Any) -> None:
        raise ValueError(f"bad value {pending_password!r} near 'ALTER'")

    monkeypatch.setattr(FakeEngine, "change_own_password", quoting_driver)
    lines = capture(monkeypatch)
    with pytest.raises(UnexpectedError, match=r"^ValueError: bad value '\*\*\*' near") as raised:
        handler(request.event("setSecret"), None)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    logged = lines.getvalue()
    assert "rotation step failed unexpectedly" in logged and "quoting_driver" in logged  # the traceback
    assert pending_password not in logged


def test_a_pending_version_without_the_master_is_refused_at_test_and_finish(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    master = store_secret(sm_client, service, "master", secret("admin", "master-Pass-1"))
    arn = store_secret(sm_client, service, "app", secret(masterarn=master))
    request = service.start(arn)
    database.passwords["app_clone"] = "pending-Pass-2"  # exists, but acts as nobody
    sm_client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=request.token,
        VersionStages=["AWSPENDING"],
        SecretString=json.dumps(secret("app_clone", "pending-Pass-2")),  # no masterarn
    )
    handler = handler_for(FakeEngine(database), sm_client)
    for step in ("testSecret", "finishSecret"):
        with pytest.raises(SecretMismatchError, match="'masterarn' differs"):
            handler(request.event(step), None)
    assert labels(sm_client, arn)["AWSPENDING"] == request.token


def test_settings_never_show_the_environment() -> None:
    from common.settings import Settings

    settings = Settings.from_environ(
        {"AWS_SECRET_ACCESS_KEY": "sekrit-key-value-1", "DB_CONNECT_TIMEOUT": "7"}
    )
    assert "sekrit-key-value-1" not in repr(settings)
    assert settings.connect_timeout == 7
