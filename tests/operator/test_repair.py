"""``secrets-rotation repair``: the stuck states a crash or an operator leaves, repaired
with the real throwaway database as the judge of every label left behind."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest

from devtools.ports import free_port
from operator_tools.cli import main
from operator_tools.repair import decide
from tests.conftest import new_password
from tests.helpers import labels, store_secret, value
from tests.operator.conftest import abandoned
from tests.operator.world import World

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationService
    from tests.engines import Harness
    from tests.scenarios.conftest import Account


@pytest.fixture
def world(sm_client: SecretsManagerClient, service: RotationService, handler: RotationFunction[Any]) -> World:
    return World(sm_client, service, handler)


def repair(world: World, arn: str, *options: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["repair", arn, "--json", *options], aws=world.aws, out=out)
    return code, json.loads(out.getvalue())


def judged(harness: Harness, sm: SecretsManagerClient, arn: str) -> None:
    """The database accepts AWSCURRENT's credentials and no rotation is stuck."""
    current = value(sm, arn, "AWSCURRENT")
    assert harness.can_login(current["username"], current["password"], current["dbname"])
    found = labels(sm, arn)
    assert found.get("AWSPENDING") in (None, found["AWSCURRENT"])


def rotates_again(world: World, harness: Harness, arn: str) -> None:
    """The next rotation is no longer blocked, and it works."""
    world.service.rotate(world.handler, arn)
    judged(harness, world.sm, arn)


def test_abandoned_after_create_secret_discards_the_pending_version(
    harness: Harness, world: World, strategy_arn: str
) -> None:
    request = abandoned(world.handler, world.service, strategy_arn, "createSecret")
    before = labels(world.sm, strategy_arn)

    code, shown = repair(world, strategy_arn)
    assert (code, shown["plan"], shown["applied"]) == (0, "discard", False)
    assert labels(world.sm, strategy_arn) == before  # a plan changes nothing

    code, done = repair(world, strategy_arn, "--apply")
    assert (code, done["plan"], done["applied"]) == (0, "discard", True), done
    assert done["actions"] == [
        {
            "call": "UpdateSecretVersionStage",
            "VersionStage": "AWSPENDING",
            "RemoveFromVersionId": request.token,
        }
    ]
    judged(harness, world.sm, strategy_arn)
    rotates_again(world, harness, strategy_arn)


def test_abandoned_after_set_secret_completes_a_single_user_rotation(
    harness: Harness, world: World, account: Account
) -> None:
    request = abandoned(world.handler, world.service, account.arn, "createSecret", "setSecret")
    assert not harness.can_login(account.user, account.password, account.dbname)

    code, done = repair(world, account.arn, "--apply")
    assert (code, done["plan"]) == (0, "complete"), done
    assert labels(world.sm, account.arn)["AWSCURRENT"] == request.token
    judged(harness, world.sm, account.arn)
    rotates_again(world, harness, account.arn)


@pytest.mark.parametrize("strategy_arn", ["alternating"], indirect=True)
def test_abandoned_after_set_secret_keeps_the_original_alternating_user(
    harness: Harness, world: World, strategy_arn: str, account: Account
) -> None:
    abandoned(world.handler, world.service, strategy_arn, "createSecret", "setSecret")
    code, done = repair(world, strategy_arn, "--apply")
    assert (code, done["plan"]) == (0, "discard"), done
    assert value(world.sm, strategy_arn, "AWSCURRENT")["username"] == account.user
    judged(harness, world.sm, strategy_arn)
    rotates_again(world, harness, strategy_arn)


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
def test_a_rotation_that_stopped_before_create_secret(
    harness: Harness, world: World, account: Account
) -> None:
    request = world.service.start(account.arn)  # the pending version has no value yet
    code, done = repair(world, account.arn, "--apply")
    assert (code, done["plan"]) == (0, "discard"), done
    assert request.token not in labels(world.sm, account.arn).values()
    rotates_again(world, harness, account.arn)


@pytest.mark.parametrize("harness", ["postgresql", "mariadb"], indirect=True)
def test_an_operator_removed_awspending_after_set_secret(
    harness: Harness, world: World, account: Account
) -> None:
    request = abandoned(
        world.handler, world.service, account.arn, "createSecret", "setSecret", drop_pending=True
    )
    code, done = repair(world, account.arn, "--apply")
    assert (code, done["plan"]) == (0, "restore"), done
    assert labels(world.sm, account.arn)["AWSCURRENT"] == request.token
    judged(harness, world.sm, account.arn)
    rotates_again(world, harness, account.arn)


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
def test_a_password_restored_behind_the_rotation_is_handed_to_the_function(
    harness: Harness, world: World, account: Account
) -> None:
    world.service.rotate(world.handler, account.arn)
    harness.set_password(account.user, account.password, account.dbname)  # the previous password again
    code, done = repair(world, account.arn, "--apply")
    assert (code, done["plan"]) == (0, "hand over"), done
    assert done["actions"] == [{"call": "RotateSecret"}]
    judged(harness, world.sm, account.arn)
    assert not harness.can_login(account.user, account.password, account.dbname)


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
def test_it_refuses_when_the_database_accepts_no_version(
    harness: Harness, world: World, account: Account
) -> None:
    abandoned(world.handler, world.service, account.arn, "createSecret")
    harness.set_password(account.user, new_password(), account.dbname)
    before = labels(world.sm, account.arn)
    code, done = repair(world, account.arn, "--apply")
    assert (code, done["plan"], done["applied"]) == (1, "refuse", False)
    assert "accepts none of the versions' credentials" in done["reason"]
    assert labels(world.sm, account.arn) == before


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
def test_it_refuses_when_the_database_cannot_be_reached(
    harness: Harness,
    world: World,
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
) -> None:
    body = {**harness.secret(account.user, account.password, account.dbname), "port": free_port()}
    arn = store_secret(sm_client, service, f"{account.user}-nowhere", body)
    request = service.start(arn)
    before = labels(sm_client, arn)
    code, done = repair(world, arn, "--apply")
    assert (code, done["plan"]) == (1, "refuse")
    assert done["reason"].startswith("cannot tell: cannot connect to")
    assert labels(sm_client, arn) == before and before["AWSPENDING"] == request.token


def test_nothing_to_repair_text_output() -> None:
    report = {"logins": [{"version": "c", "labels": ["AWSCURRENT"], "outcome": "accepted"}]}
    plan = decide({"c": ["AWSCURRENT"]}, report)
    assert (plan.kind, plan.actions) == ("nothing to do", [])


def test_a_refused_pending_never_gets_awscurrent() -> None:
    """Both refused, no other version accepted: refuse rather than guess."""
    report = {
        "strategy": "single-user",
        "logins": [
            {"version": "c", "labels": ["AWSCURRENT"], "outcome": "refused"},
            {"version": "p", "labels": ["AWSPENDING"], "outcome": "refused"},
            {"version": "o", "labels": ["AWSPREVIOUS"], "outcome": "refused"},
        ],
    }
    plan = decide({"c": ["AWSCURRENT"], "p": ["AWSPENDING"], "o": ["AWSPREVIOUS"]}, report)
    assert plan.kind == "refuse" and plan.actions == []
