"""The preflight, run through the real handler against every engine's real server, in
both strategies: what it reports, and that it writes nothing anywhere."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import EventFormatError, PreflightRefusedError
from devtools.mariadb import MariaDBServer
from devtools.mongo_peer import MongoServer
from devtools.postgres import PostgresServer
from devtools.service import LambdaContext
from tests.conftest import new_password, unique
from tests.helpers import store_secret
from tests.operator.conftest import abandoned, database_state, secret_state

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationService
    from tests.engines import Harness
    from tests.scenarios.conftest import Account

READS = {"DescribeSecret", "GetSecretValue"}
#: The function the service emulation attaches every secret to (its RotationLambdaARN).
FUNCTION = "rotation-function"


def preflight(
    handler: RotationFunction[Any], arn: str, context: object = None, **extra: Any
) -> dict[str, Any]:
    """The preflight as Lambda invokes it: with the context of the secret's own function
    unless another is given."""
    report = handler({"Preflight": {"SecretId": arn, **extra}}, context or LambdaContext(FUNCTION))
    assert report is not None
    return report


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {(login["labels"] or [login["version"]])[0]: login["outcome"] for login in report["logins"]}


def test_preflight_of_a_stuck_rotation_reports_every_version_and_writes_nothing(
    harness: Harness,
    handler: RotationFunction[Any],
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
    strategy_arn: str,
) -> None:
    abandoned(handler, service, strategy_arn, "createSecret")
    before = secret_state(sm_client, strategy_arn), database_state(harness)
    calls = Counter(handler.secrets_manager_calls)

    report = preflight(handler, strategy_arn)

    assert (secret_state(sm_client, strategy_arn), database_state(harness)) == before
    assert set(handler.secrets_manager_calls - calls) <= READS
    assert report["ok"] is True, report
    assert report["strategy"] == ("single-user" if strategy_arn == account.arn else "alternating-users")
    assert outcomes(report) == {"AWSCURRENT": "accepted", "AWSPENDING": "refused"}
    assert report["capabilities"] and all(c["held"] is True for c in report["capabilities"]), report
    assert account.password not in json.dumps(report)
    pending = json.loads(
        sm_client.get_secret_value(SecretId=strategy_arn, VersionStage="AWSPENDING")["SecretString"]
    )
    assert pending["password"] not in json.dumps(report)


def test_preflight_tries_unlabelled_versions_it_is_given(
    harness: Harness,
    handler: RotationFunction[Any],
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
) -> None:
    """An abandoned single-user rotation whose AWSPENDING an operator removed: the
    database holds the unlabelled version's password."""
    request = abandoned(handler, service, account.arn, "createSecret", "setSecret", drop_pending=True)
    report = preflight(handler, account.arn, VersionIds=[request.token])
    assert outcomes(report) == {"AWSCURRENT": "refused", request.token: "accepted"}
    assert report["ok"] is False
    assert [c["check"] for c in report["checks"] if c["ok"] is False] == ["database login"]


def weak_master(harness: Harness) -> tuple[str, str]:
    """A master user lacking what alternating users need."""
    user, password = unique("weak"), new_password()
    server = harness.server
    if isinstance(server, MariaDBServer):
        server.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        server.execute("GRANT SELECT ON mysql.* TO %s@'%%'", (user,))
    elif isinstance(server, MongoServer):
        server.create_user_with_roles(user, password, "admin", [{"role": "read", "db": "admin"}])
    else:
        assert isinstance(server, PostgresServer)  # the harnesses this test runs on
        server.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
    return user, password


def test_preflight_finds_a_master_user_that_may_not_manage_the_other_user(
    harness: Harness,
    handler: RotationFunction[Any],
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
) -> None:
    user, password = weak_master(harness)
    master = store_secret(
        sm_client,
        service,
        user,
        harness.secret(user, password, harness.server.admin_database),
        rotation=False,
    )
    body = harness.secret(account.user, account.password, account.dbname, masterarn=master)
    arn = store_secret(sm_client, service, f"{account.user}-weak", body)
    before = database_state(harness)

    report = preflight(handler, arn)

    assert database_state(harness) == before
    assert report["ok"] is False
    lacking = [c for c in report["capabilities"] if c["held"] is False]
    assert lacking, report
    expected = {
        "postgresql": "CREATEROLE",
        "mariadb": "CREATE USER",
        "mongodb": "viewUser",
        "redshift": "superuser",
    }[harness.name]
    assert any(expected in c["what"] or expected in c["detail"] for c in lacking), lacking


# Every Redshift user may change its own password: that check has no failing form; nor
# has PostgreSQL's but on a standby (tests/rds: the password then changes on the writer).
@pytest.mark.parametrize("harness", ["mariadb", "mongodb"], indirect=True)
def test_preflight_finds_a_user_that_may_not_change_its_own_password(
    harness: Harness,
    handler: RotationFunction[Any],
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
) -> None:
    server = harness.server
    if isinstance(server, MongoServer):
        # A user without the changeOwnPassword action.
        user, password = unique("app"), new_password()
        server.create_user_with_roles(
            user, password, account.dbname, [{"role": "readWrite", "db": account.dbname}]
        )
        arn = store_secret(sm_client, service, user, harness.secret(user, password, account.dbname))
    else:
        assert isinstance(server, MariaDBServer)
        arn = account.arn
        server.execute("SET GLOBAL read_only = 1")
    try:
        report = preflight(handler, arn)
    finally:
        if isinstance(server, MariaDBServer):
            server.execute("SET GLOBAL read_only = 0")
    assert report["ok"] is False
    assert [c["held"] for c in report["capabilities"]] == [False], report
    assert outcomes(report)["AWSCURRENT"] == "accepted"


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
def test_preflight_finds_a_read_only_by_default_role_able_to_change_its_password(
    harness: Harness, handler: RotationFunction[Any], account: Account
) -> None:
    """A role whose sessions are read-only by default (finding A7-10) is served: the
    engine changes its password in a read-write transaction, so nothing is missing."""
    server = harness.server
    assert isinstance(server, PostgresServer)
    server.execute(f'ALTER ROLE "{account.user}" SET default_transaction_read_only = on')
    report = preflight(handler, account.arn)
    assert report["ok"] is True, report
    assert [c["held"] for c in report["capabilities"]] == [True], report
    assert outcomes(report)["AWSCURRENT"] == "accepted"


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
@pytest.mark.parametrize("strategy_arn", ["alternating"], indirect=True)
def test_preflight_reports_whether_each_accepted_version_passes_the_privilege_proof(
    harness: Harness,
    handler: RotationFunction[Any],
    service: RotationService,
    account: Account,
    strategy_arn: str,
) -> None:
    """After a rotation the clone is AWSCURRENT; stripped of the original's role, it still
    logs in but no longer passes finishSecret's proof, and the preflight says so."""
    service.rotate(handler, strategy_arn)
    report = preflight(handler, strategy_arn)
    proofs = {login["labels"][0]: login["privileges"] for login in report["logins"]}
    assert proofs == {"AWSCURRENT": True, "AWSPREVIOUS": True}, report

    harness.server.execute(f'REVOKE "{account.user}" FROM "{account.user}_clone"')  # type: ignore[union-attr]
    report = preflight(handler, strategy_arn)

    current = next(login for login in report["logins"] if "AWSCURRENT" in login["labels"])
    assert (current["user"], current["outcome"], current["privileges"]) == (
        f"{account.user}_clone",
        "accepted",
        False,
    )
    assert f"does not act as {account.user!r}" in current["detail"]
    failing = [c for c in report["checks"] if c["ok"] is False]
    assert [c["check"] for c in failing] == ["privileges"] and report["ok"] is False


def aliased(function: str, qualifier: str) -> LambdaContext:
    """The context of an invocation through an alias or version (``...:function:name:live``)."""
    context = LambdaContext(function)
    context.invoked_function_arn += f":{qualifier}"
    return context


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
def test_preflight_answers_for_the_functions_own_secret(
    handler: RotationFunction[Any], account: Account
) -> None:
    """The secret's RotationLambdaARN is the invoked function (through an alias too)."""
    for context in (LambdaContext(FUNCTION), aliased(FUNCTION, "live")):
        report = preflight(handler, account.arn, context)
        assert outcomes(report) == {"AWSCURRENT": "accepted"}, report


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
def test_preflight_refuses_a_secret_of_another_function(
    handler: RotationFunction[Any], account: Account, master_arn: str
) -> None:
    """An invoker may not use the function to probe another function's secrets, nor the
    master secret (which no function rotates), nor try old passwords (VersionIds)."""
    calls = Counter(handler.secrets_manager_calls)
    with pytest.raises(PreflightRefusedError, match="rotated by another function") as refused:
        preflight(handler, account.arn, LambdaContext("other-function"), VersionIds=["v1"])
    assert account.arn in str(refused.value)
    with pytest.raises(PreflightRefusedError, match="has no rotation function"):
        preflight(handler, master_arn)
    # Nothing read but the descriptions: no value, no login.
    assert set(handler.secrets_manager_calls - calls) == {"DescribeSecret"}


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
def test_preflight_without_a_lambda_context_is_refused(
    handler: RotationFunction[Any], account: Account
) -> None:
    with pytest.raises(PreflightRefusedError, match="without a Lambda context"):
        handler({"Preflight": {"SecretId": account.arn}}, None)


def test_preflight_event_is_never_taken_for_a_step(handler: RotationFunction[Any]) -> None:
    with pytest.raises(EventFormatError, match="ambiguous"):
        handler({"Preflight": {"SecretId": "x"}, "Step": "createSecret"}, None)
    with pytest.raises(EventFormatError, match="SecretId"):
        handler({"Preflight": {}}, None)
