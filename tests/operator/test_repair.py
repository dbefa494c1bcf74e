"""``secrets-rotation repair``: the stuck states a crash or an operator leaves, repaired
with the real throwaway database as the judge of every label left behind."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest

from common.secretsmanager import SecretStore
from devtools.mariadb import MariaDBServer
from devtools.ports import free_port
from operator_tools.cli import main
from operator_tools.repair import UNLABELLED_TRIED, Repair, decide
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
    """RotateSecret returns before the steps run (the world's rotation takes 5 s of the
    tool's time): repair waits for it, polling with back-off, then proves the result."""
    world.service.rotate(world.handler, account.arn)
    harness.set_password(account.user, account.password, account.dbname)  # the previous password again
    code, done = repair(world, account.arn, "--apply")
    assert (code, done["plan"], done["finished"]) == (0, "hand over", True), done
    assert done["actions"] == [{"call": "RotateSecret"}]
    assert done["outcome"].startswith("done: the database accepts AWSCURRENT")
    assert world.sleeps == [1.0, 2.0, 4.0]  # 1 s, doubling, until the steps had run
    judged(harness, world.sm, account.arn)
    assert not harness.can_login(account.user, account.password, account.dbname)


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)
def test_a_handed_over_rotation_still_running_when_the_wait_runs_out(
    harness: Harness, world: World, account: Account
) -> None:
    world.service.rotate(world.handler, account.arn)
    harness.set_password(account.user, account.password, account.dbname)
    world.rotation_takes_s = 600
    code, done = repair(world, account.arn, "--apply", "--wait", "30")
    assert (code, done["plan"], done["applied"], done["finished"]) == (3, "hand over", True, False), done
    assert "rotation started" in done["outcome"]
    assert done["outcome"].endswith("check `secrets-rotation status`")
    assert sum(world.sleeps) == 30 and max(world.sleeps) <= 15  # bounded, with back-off
    (_, started), *_ = world.running
    assert labels(world.sm, account.arn)["AWSPENDING"] == started.token  # in progress, not undone
    world.sleep(600)  # the rotation finishes on its own
    judged(harness, world.sm, account.arn)
    assert labels(world.sm, account.arn)["AWSCURRENT"] == started.token


def may_read_grants(harness: Harness, user: str) -> None:
    """On MariaDB, let the original user read every account's grants (setSecret copies
    that to the clone): the privilege proof compares the clone's grants with the
    original's only where the clone may read them, and otherwise accepts a clone holding
    some privileges (one holding none cannot log in to the secret's database at all)."""
    if isinstance(harness.server, MariaDBServer):
        harness.server.execute("GRANT SELECT ON mysql.* TO %s@'%%'", (user,))


def strip_privileges(harness: Harness, clone: str, original: str, dbname: str) -> None:
    """Take from the clone some of what makes it act as the original user."""
    server = harness.server
    if isinstance(server, MariaDBServer):
        server.execute(f"REVOKE DELETE, DROP ON `{dbname}`.* FROM %s@'%%'", (clone,))
    else:
        server.execute(f'REVOKE "{original}" FROM "{clone}"')  # type: ignore[union-attr]


@pytest.mark.parametrize("harness", ["postgresql", "mariadb"], indirect=True)
@pytest.mark.parametrize("strategy_arn", ["alternating"], indirect=True)
@pytest.mark.parametrize(
    ("stripped", "drop_pending", "plan"),
    [(True, False, "refuse"), (True, True, "refuse"), (False, False, "complete")],
    ids=["stripped-pending", "stripped-unlabelled", "privileged-pending"],
)
def test_repair_moves_awscurrent_only_to_a_user_that_passes_the_privilege_proof(
    harness: Harness,
    world: World,
    strategy_arn: str,
    account: Account,
    stripped: bool,
    drop_pending: bool,
    plan: str,
) -> None:
    """setSecret ran (the clone has the pending password), then the original's password
    changed behind the rotation's back: only the clone logs in. finishSecret would refuse
    a clone that does not act as the original; so must repair ("complete" on the pending
    version, "restore" on the unlabelled one)."""
    may_read_grants(harness, account.user)
    request = abandoned(
        world.handler, world.service, strategy_arn, "createSecret", "setSecret", drop_pending=drop_pending
    )
    harness.set_password(account.user, new_password(), account.dbname)
    if stripped:
        strip_privileges(harness, f"{account.user}_clone", account.user, account.dbname)
    before = labels(world.sm, strategy_arn)
    code, done = repair(world, strategy_arn, "--apply")
    assert done["plan"] == plan, done
    if plan == "refuse":
        assert (code, done["applied"]) == (1, False)
        assert "does not pass the privilege proof" in done["reason"], done
        assert labels(world.sm, strategy_arn) == before
    else:
        assert (code, done["finished"]) == (0, True)
        assert labels(world.sm, strategy_arn)["AWSCURRENT"] == request.token
        judged(harness, world.sm, strategy_arn)


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


def test_an_alternating_version_without_a_privilege_report_never_gets_awscurrent() -> None:
    """A function too old to report the privilege proof: accepted is not enough."""
    report = {
        "strategy": "alternating-users",
        "logins": [
            {"version": "c", "labels": ["AWSCURRENT"], "outcome": "refused"},
            {"version": "p", "labels": ["AWSPENDING"], "outcome": "accepted", "user": "app_clone"},
        ],
    }
    plan = decide({"c": ["AWSCURRENT"], "p": ["AWSPENDING"]}, report)
    assert plan.kind == "refuse" and plan.actions == []
    assert "update the function" in plan.reason


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


@pytest.mark.parametrize("harness", ["postgresql"], indirect=True)  # no database involved
def test_repair_picks_unlabelled_versions_in_the_rotations_order(world: World) -> None:
    """Newest first, and among versions created in the same second the later-listed first:
    the order of the rotation's SecretStore.unlabelled_versions (the command, installed
    alone, cannot import it)."""
    arn = world.sm.create_secret(Name="ordered", SecretString="{}")["ARN"]
    for number in range(8):
        world.sm.put_secret_value(SecretId=arn, SecretString=f'{{"n": {number}}}')
    listed = world.sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
    unlabelled = [v["VersionId"] for v in listed if not v.get("VersionStages")]
    assert len(unlabelled) == 7
    world.age(arn, unlabelled[0], 60)  # the oldest; the others share one second or two
    repair = Repair(world.aws, arn)
    repair.arn = arn
    picked = repair._unlabelled()
    assert picked == SecretStore(world.sm).unlabelled_versions(arn, UNLABELLED_TRIED)
    assert len(picked) == UNLABELLED_TRIED and unlabelled[0] not in picked
