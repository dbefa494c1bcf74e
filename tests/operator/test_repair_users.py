"""``secrets-rotation repair`` never switches a secret to another database user, and
hands over to a rotation only when the rotation's own recovery can work: the states a
migration leaves (the secret moved from user A to user B by PutSecretValue), judged by
the real throwaway PostgreSQL."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest

from operator_tools.cli import main
from operator_tools.repair import decide
from rotators.postgresql.engine import PostgresEngine
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import handler_for, labels, store_secret, value
from tests.operator.world import FUNCTION_ARN, World

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


@pytest.fixture
def world(sm_client: SecretsManagerClient, service: RotationService, postgres: PostgresServer) -> World:
    return World(sm_client, service, handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file))


def repair(world: World, arn: str, *options: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["repair", arn, "--json", *options], aws=world.aws, out=out)
    return code, json.loads(out.getvalue())


def migrated(
    world: World, postgres: PostgresServer, database: str, *, stale_b: bool
) -> tuple[str, tuple[str, str], str]:
    """A secret of user A moved to user B (PutSecretValue), then B's password changed
    behind its back: (ARN, (A, A's password), B). With ``stale_b`` a second version of B
    follows, so that A's version is left without a label."""
    a, b = unique("olduser"), unique("newuser")
    pa, pb = new_password(), new_password()
    postgres.create_user(a, pa)
    postgres.create_user(b, pb)
    sm = world.sm
    arn = store_secret(sm, world.service, unique("migrated"), pg_secret(postgres, a, pa, database))
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps(pg_secret(postgres, b, pb, database)))
    if stale_b:
        sm.put_secret_value(SecretId=arn, SecretString=json.dumps(pg_secret(postgres, b, pb + "x", database)))
    postgres.execute(f'ALTER ROLE "{b}" PASSWORD %s', (new_password(),))
    return arn, (a, pa), b


def test_repair_does_not_switch_the_secret_to_another_user(
    world: World, postgres: PostgresServer, database: str
) -> None:
    arn, (a, password), b = migrated(world, postgres, database, stale_b=True)
    before = labels(world.sm, arn)
    code, shown = repair(world, arn, "--apply")
    assert (code, shown["plan"], shown["applied"]) == (1, "refuse", False), shown
    assert "another user" in shown["reason"] and repr(a) in shown["reason"] and repr(b) in shown["reason"]
    assert labels(world.sm, arn) == before
    assert value(world.sm, arn, "AWSCURRENT")["username"] == b
    assert postgres.can_login(a, password, database)


def test_repair_does_not_hand_over_to_another_users_previous_version(
    world: World, postgres: PostgresServer, database: str
) -> None:
    arn, (a, _), _ = migrated(world, postgres, database, stale_b=False)
    before = labels(world.sm, arn)
    code, shown = repair(world, arn)
    assert (code, shown["plan"]) == (1, "refuse"), shown
    assert "another user" in shown["reason"] and repr(a) in shown["reason"]
    code, shown = repair(world, arn, "--apply")
    assert (code, shown["plan"], shown["applied"]) == (1, "refuse", False), shown
    assert labels(world.sm, arn) == before


def test_the_preflight_reports_each_versions_user_relation(
    world: World, postgres: PostgresServer, database: str
) -> None:
    arn, _, _ = migrated(world, postgres, database, stale_b=True)
    report = world.aws.preflight(FUNCTION_ARN, arn)
    relations = {tuple(login["labels"]): login["relation"] for login in report["logins"]}
    assert relations == {("AWSCURRENT",): "same user", ("AWSPREVIOUS",): "same user"}
    previous = next(login for login in report["logins"] if login["labels"] == ["AWSPREVIOUS"])
    assert previous["outcome"] == "refused"


def login(version: str, labels: list[str], user: str, outcome: str, relation: str | None) -> dict[str, Any]:
    found = {"version": version, "labels": labels, "user": user, "outcome": outcome, "privileges": True}
    return found if relation is None else {**found, "relation": relation}


@pytest.mark.parametrize("relation", ["other user", None])
def test_decide_refuses_another_users_accepted_version(relation: str | None) -> None:
    versions = {"c": ["AWSCURRENT"], "p": ["AWSPREVIOUS"], "u": []}
    for strategy in ("single-user", "alternating-users"):
        report = {
            "strategy": strategy,
            "logins": [
                login("c", ["AWSCURRENT"], "bob", "refused", relation and "same user"),
                login("p", ["AWSPREVIOUS"], "alice", "accepted", relation),
                login("u", [], "alice", "accepted", relation),
            ],
        }
        plan = decide(versions, report)
        assert plan.kind == "refuse" and "another user" in plan.reason, (strategy, plan)


def test_decide_restores_the_pair_of_alternating_users_only() -> None:
    versions = {"c": ["AWSCURRENT"], "u": []}
    logins = [
        login("c", ["AWSCURRENT"], "app", "refused", "same user"),
        login("u", [], "app_clone", "accepted", "pair"),
    ]
    assert decide(versions, {"strategy": "alternating-users", "logins": logins}).kind == "restore"
    assert decide(versions, {"strategy": "single-user", "logins": logins}).kind == "refuse"
