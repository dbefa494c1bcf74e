"""The protocol, driven through a fake engine and moto (no database)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import (
    DatabaseLoginError,
    RotationNotEnabledError,
    SecretFormatError,
    SecretMismatchError,
    StagingError,
)
from devtools.service import STEPS, LambdaContext, RotationService
from tests.fake_engine import FakeDatabase, FakeEngine, secret
from tests.helpers import handler_for, labels, move_current, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


def test_single_user_happy_path_is_cheap_and_clean(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret(dbClusterIdentifier="c1", team="payments"))
    handler = handler_for(FakeEngine(database), sm_client)
    service.rotate(handler, arn)

    calls = handler.rotator.store.calls
    assert dict(calls) == {
        "DescribeSecret": 4,
        "GetSecretValue": 1,
        "PutSecretValue": 1,
        "UpdateSecretVersionStage": 2,
    }
    assert database.failed_logins == 0
    # createSecret proves the secret can be rotated, setSecret acts, testSecret proves the
    # result, finishSecret proves it again before it moves a label.
    assert database.logins == ["AWSCURRENT", "AWSCURRENT", "AWSPENDING", "AWSPENDING"]
    current = value(sm_client, arn, "AWSCURRENT")
    assert database.passwords["app"] == current["password"] != "initial-Pass-1"
    assert (current["team"], current["dbClusterIdentifier"]) == ("payments", "c1")
    assert value(sm_client, arn, "AWSPREVIOUS")["password"] == "initial-Pass-1"
    assert "AWSPENDING" not in labels(sm_client, arn)


def test_cold_container_per_step_stays_bounded(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    request = service.start(arn)
    total = 0
    for step in STEPS:
        handler = handler_for(FakeEngine(database), sm_client)  # a new container each time
        handler(request.event(step), LambdaContext())
        total += sum(handler.rotator.store.calls.values())
    # testSecret reads the current value and finishSecret the current and pending values,
    # to check the pending version against it, in a cold container (3 more than before).
    assert total == 14
    assert database.failed_logins == 0


def test_rotation_token_reaches_put_secret_value(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(dict(params))

    sm_client.meta.events.register("provide-client-params.secrets-manager.PutSecretValue", record)
    arn = store_secret(sm_client, service, "app", secret())
    request = service.rotate(handler_for(FakeEngine(database), sm_client), arn)
    assert [p.get("RotationToken") for p in seen] == [request.rotation_token]
    assert seen[0]["ClientRequestToken"] == request.token
    assert seen[0]["VersionStages"] == ["AWSPENDING"]


def test_secret_name_works_as_secret_id(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "by-name", secret())
    request = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    for step in STEPS:
        handler({**request.event(step), "SecretId": "by-name"}, LambdaContext())
    assert labels(sm_client, arn)["AWSCURRENT"] == request.token


def test_every_step_twice_keeps_the_first_password(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    request = service.start(arn)
    first_password = None
    for step in STEPS:
        for attempt in range(2):
            # The second attempt runs in a fresh container: no cache can hide a second password.
            handler = handler_for(FakeEngine(database), sm_client)
            handler(request.event(step), LambdaContext())
            if step == "createSecret" and attempt == 0:
                first_password = value(sm_client, arn, "AWSPENDING")["password"]
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["password"] == first_password == database.passwords["app"]
    assert "AWSPENDING" not in labels(sm_client, arn)
    # Only the repeated setSecret met a refused login (current no longer valid).
    assert database.failed_logins == 1


def test_finish_interrupted_between_label_moves_is_completed(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    request = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    for step in STEPS[:3]:
        handler(request.event(step), LambdaContext())
    old = move_current(sm_client, arn, request.token)
    assert labels(sm_client, arn)["AWSPENDING"] == request.token
    handler(request.event("finishSecret"), LambdaContext())
    assert labels(sm_client, arn) == {"AWSCURRENT": request.token, "AWSPREVIOUS": old}


def test_already_current_token_means_nothing_to_do(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    request = service.rotate(handler_for(FakeEngine(database), sm_client), arn)
    logins = list(database.logins)
    handler = handler_for(FakeEngine(database), sm_client)
    for step in STEPS:
        handler(request.event(step), LambdaContext())
    assert database.logins == logins
    assert dict(handler.rotator.store.calls) == {"DescribeSecret": 4}


def test_rotation_not_enabled_is_refused(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret(), rotation=False)
    request = service.start(arn)
    with pytest.raises(RotationNotEnabledError, match="does not have rotation enabled"):
        handler_for(FakeEngine(database), sm_client)(request.event("createSecret"), None)


def test_unknown_and_unlabelled_tokens_are_refused(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    request = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    with pytest.raises(StagingError, match="is not a version of secret"):
        handler({**request.event("createSecret"), "ClientRequestToken": "no-such-version"}, None)
    sm_client.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=request.token
    )
    # AWS's DescribeSecret no longer lists a version without labels.
    with pytest.raises(StagingError, match="is not a version of secret .* or carries no staging label"):
        handler(request.event("createSecret"), None)
    sm_client.update_secret_version_stage(SecretId=arn, VersionStage="CUSTOM", MoveToVersionId=request.token)
    with pytest.raises(StagingError, match="is not labelled AWSPENDING"):
        handler(request.event("createSecret"), None)


def test_set_before_create_names_the_missing_value(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    request = service.start(arn)
    with pytest.raises(StagingError, match="labelled AWSPENDING has no value yet"):
        handler_for(FakeEngine(database), sm_client)(request.event("setSecret"), None)


@pytest.mark.parametrize(
    ("pending_changes", "message"),
    [
        ({"host": "other.example.internal"}, "is for other.example.internal:5432 but AWSCURRENT is for"),
        ({"port": 5433}, "is for db.example.internal:5433"),
        ({"username": "admin"}, "is for user 'admin'; the single-user strategy expects 'app'"),
    ],
)
def test_pending_that_disagrees_with_current_is_refused(
    sm_client: SecretsManagerClient,
    service: RotationService,
    database: FakeDatabase,
    pending_changes: dict[str, Any],
    message: str,
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    request = service.start(arn)
    sm_client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=request.token,
        VersionStages=["AWSPENDING"],
        SecretString=json.dumps(secret(password="pending-Pass-2") | pending_changes),
    )
    before = dict(database.passwords)
    handler = handler_for(FakeEngine(database), sm_client)
    with pytest.raises(SecretMismatchError, match=message):
        handler(request.event("setSecret"), None)
    assert database.passwords == before


def test_single_user_recovers_with_previous_credentials(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    handler = handler_for(FakeEngine(database), sm_client)
    service.rotate(handler, arn)
    database.passwords["app"] = "initial-Pass-1"  # e.g. restored from a backup
    service.rotate(handler, arn)
    assert database.passwords["app"] == value(sm_client, arn, "AWSCURRENT")["password"]


def test_single_user_no_credentials_work_loses_nothing(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret())
    database.passwords["app"] = "changed-Behind-our-back"
    request = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    with pytest.raises(DatabaseLoginError, match="with the AWSCURRENT credentials") as raised:
        handler(request.event("createSecret"), None)
    assert "changed-Behind-our-back" not in str(raised.value)
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)
    # A pending version stored by other means still finds no credentials that log in.
    sm_client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=request.token,
        VersionStages=["AWSPENDING"],
        SecretString=json.dumps(secret(password="pending-Pass-2")),
    )
    with pytest.raises(DatabaseLoginError, match="with the AWSCURRENT, AWSPENDING credentials"):
        handler(request.event("setSecret"), None)
    assert labels(sm_client, arn)["AWSCURRENT"] != request.token


def test_alternating_users_alternate(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    master = store_secret(sm_client, service, "master", secret("admin", "master-Pass-1"))
    arn = store_secret(sm_client, service, "app", secret(masterarn=master))
    handler = handler_for(FakeEngine(database), sm_client)
    users: list[str] = []
    calls: list[int] = []
    for _ in range(3):
        before = sum(handler.rotator.store.calls.values()) if users else 0
        service.rotate(handler, arn)
        calls.append(sum(handler.rotator.store.calls.values()) - before)
        users.append(value(sm_client, arn, "AWSCURRENT")["username"])
    assert users == ["app_clone", "app", "app_clone"]
    assert database.acts_as["app_clone"] == "app"
    assert value(sm_client, arn, "AWSCURRENT")["masterarn"] == master
    assert database.failed_logins == 0
    # A describe per step, the current value, the put, the master value (checked in
    # createSecret, used in setSecret) and two label moves; from the second rotation on,
    # the current value is the version this container wrote and is not read again.
    assert calls == [10, 9, 9]


def test_alternating_refuses_master_when_current_fails(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    master = store_secret(sm_client, service, "master", secret("admin", "master-Pass-1"))
    arn = store_secret(sm_client, service, "app", secret(password="wrong-Pass-9", masterarn=master))
    request = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    with pytest.raises(DatabaseLoginError, match="with the AWSCURRENT credentials"):
        handler(request.event("createSecret"), None)
    sm_client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=request.token,
        VersionStages=["AWSPENDING"],
        SecretString=json.dumps(secret("app_clone", "pending-Pass-2", masterarn=master)),
    )
    with pytest.raises(DatabaseLoginError, match="with the AWSCURRENT credentials"):
        handler(request.event("setSecret"), None)
    assert "master" not in database.logins
    assert "app_clone" not in database.passwords


def test_alternating_refuses_master_for_another_host(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    master_body = secret("admin", "master-Pass-1") | {"host": "elsewhere.example.internal"}
    master = store_secret(sm_client, service, "master", master_body)
    arn = store_secret(sm_client, service, "app", secret(masterarn=master))
    request = service.start(arn)
    handler = handler_for(FakeEngine(database), sm_client)
    with pytest.raises(SecretMismatchError, match="master secret is for elsewhere.example.internal:5432"):
        handler(request.event("createSecret"), None)
    assert "app_clone" not in database.passwords
    assert database.logins == []


def test_alternating_user_name_must_fit(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    master = store_secret(sm_client, service, "master", secret("admin", "master-Pass-1"))
    arn = store_secret(sm_client, service, "app", secret("a_twelve_chr", masterarn=master))
    request = service.start(arn)
    with pytest.raises(SecretFormatError, match="must fit in 16 characters"):
        handler_for(FakeEngine(database), sm_client)(request.event("createSecret"), None)
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)  # nothing stored
    assert "app_clone" not in database.passwords


def test_wrong_engine_is_refused_before_anything_is_written(
    sm_client: SecretsManagerClient, service: RotationService, database: FakeDatabase
) -> None:
    arn = store_secret(sm_client, service, "app", secret() | {"engine": "mysql"})
    request = service.start(arn)
    with pytest.raises(SecretFormatError, match="has engine 'mysql'; this function serves postgres"):
        handler_for(FakeEngine(database), sm_client)(request.event("createSecret"), None)
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)
