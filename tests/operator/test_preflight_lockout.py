"""The preflight (doctor, repair) writes nothing, and its refused logins must not block
the application's account either: on MariaDB with ``max_password_errors`` (and MySQL 8
with ``FAILED_LOGIN_ATTEMPTS``) every refused login counts. After ordinary single-user
rotations ``AWSPREVIOUS`` and the newest unlabelled versions are all refused: repair's
preflight tries them, and used to block the account (error 4150). Judged by the real
throwaway MariaDB."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import EventFormatError
from common.preflight import DEFAULT_MAX_REFUSED, PreflightRequest
from operator_tools.cli import main
from rotators.mysql.engine import MySQLEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, store_secret, value
from tests.mysql.conftest import maria_secret
from tests.operator.world import FUNCTION_ARN, World

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService

LIMIT = 3


@pytest.fixture
def blocking(mariadb: MariaDBServer) -> Iterator[None]:
    before = mariadb.execute("SELECT @@GLOBAL.max_password_errors")[0][0]
    mariadb.execute(f"SET GLOBAL max_password_errors = {LIMIT}")
    yield
    mariadb.execute(f"SET GLOBAL max_password_errors = {int(before)}")
    mariadb.execute("FLUSH PRIVILEGES")


@pytest.fixture
def world(mariadb: MariaDBServer, sm_client: SecretsManagerClient, service: RotationService) -> World:
    return World(sm_client, service, handler_for(MySQLEngine(), sm_client, DB_CA_BUNDLE=mariadb.ca_file))


def rotated(world: World, mariadb: MariaDBServer, times: int = 5) -> tuple[str, str, dict[str, Any]]:
    """A secret rotated ``times`` times: (ARN, user, AWSCURRENT's value); AWSPREVIOUS and the
    unlabelled versions hold passwords the database refuses."""
    user, password = unique("app"), new_password()
    mariadb.create_user(user, password)
    arn = store_secret(world.sm, world.service, unique("lock"), maria_secret(mariadb, user, password))
    for _ in range(times):
        world.service.rotate(world.handler, arn)
    current = value(world.sm, arn, "AWSCURRENT")
    assert mariadb.can_login(user, current["password"], None)
    return arn, user, current


def repair(world: World, arn: str, *options: str) -> dict[str, Any]:
    out = io.StringIO()
    main(["repair", arn, "--json", *options], aws=world.aws, out=out)
    shown: dict[str, Any] = json.loads(out.getvalue())
    return shown


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["check"] == name)


def test_repair_preflight_does_not_block_the_account(
    world: World, mariadb: MariaDBServer, blocking: None
) -> None:
    arn, user, current = rotated(world, mariadb)
    shown = repair(world, arn)  # a plan only: "nothing changed"
    assert mariadb.can_login(user, current["password"], None), (
        f"after repair's preflight (plan {shown['plan']!r}) the server refuses the AWSCURRENT "
        "credentials: the account is blocked"
    )
    # Twice more in a row (each preflight's AWSCURRENT login resets the server's count).
    repair(world, arn)
    repair(world, arn, "--max-refused-logins", "10")
    assert mariadb.can_login(user, current["password"], None)
    assert shown["plan"] == "nothing to do"
    assert "stopped after 2 refused logins in a row" in shown["reason"], shown["reason"]


def test_the_preflight_reads_the_lockout_and_never_reaches_it(
    world: World, mariadb: MariaDBServer, blocking: None
) -> None:
    arn, user, current = rotated(world, mariadb)
    unlabelled = [
        v["VersionId"]
        for v in world.sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
        if not v.get("VersionStages")
    ]
    report = world.aws.preflight(FUNCTION_ARN, arn, unlabelled, max_refused=10)
    lockout = check(report, "login lockout")
    assert lockout["ok"] is True and f"max_password_errors = {LIMIT}" in lockout["detail"]
    outcomes = [login["outcome"] for login in report["logins"]]
    assert outcomes[:1] == ["accepted"] and outcomes.count("refused") == LIMIT - 1, outcomes
    assert outcomes[LIMIT:] == ["not tried"] * (len(outcomes) - LIMIT), outcomes
    stopped = check(report, "logins stopped")
    assert stopped["ok"] is None and f"blocks after {LIMIT}" in stopped["detail"]
    assert mariadb.can_login(user, current["password"], None)


def test_without_a_lockout_the_preflight_still_stops_after_the_default(
    world: World, mariadb: MariaDBServer
) -> None:
    arn, _, _ = rotated(world, mariadb, times=4)
    report = world.aws.preflight(FUNCTION_ARN, arn, None)
    assert "unlimited" in check(report, "login lockout")["detail"]
    unlabelled = [
        v["VersionId"]
        for v in world.sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
        if not v.get("VersionStages")
    ]
    report = world.aws.preflight(FUNCTION_ARN, arn, unlabelled)
    outcomes = [login["outcome"] for login in report["logins"]]
    assert outcomes.count("refused") == DEFAULT_MAX_REFUSED and outcomes.count("not tried") >= 1, outcomes
    report = world.aws.preflight(FUNCTION_ARN, arn, unlabelled, max_refused=10)
    assert "not tried" not in [login["outcome"] for login in report["logins"]]
    assert all(c["check"] != "logins stopped" for c in report["checks"])


def test_the_doctor_says_when_the_preflight_stopped(world: World, mariadb: MariaDBServer) -> None:
    arn, _, _ = rotated(world, mariadb, times=4)
    world.deploy(handler="rotators.mysql.app.lambda_handler")
    world.allow_rotation(arn)
    out = io.StringIO()
    main(["doctor", arn, "--max-refused-logins", "0"], aws=world.aws, out=out)
    printed = out.getvalue()
    assert "preflight: logins stopped" in printed and "--max-refused-logins" in printed, printed


@pytest.mark.parametrize("bad", [-1, 11, "2", True, 2.0])
def test_max_refused_logins_must_be_a_small_whole_number(bad: object) -> None:
    with pytest.raises(EventFormatError, match="MaxRefusedLogins"):
        PreflightRequest.parse({"Preflight": {"SecretId": "s", "MaxRefusedLogins": bad}})
    assert PreflightRequest.parse({"Preflight": {"SecretId": "s"}}).max_refused == DEFAULT_MAX_REFUSED
