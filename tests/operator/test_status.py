"""``secrets-rotation status``: the suite's secrets found from the stack, one row each;
CloudTrail's LookupEvents (no moto model) answered by a Stubber that checks the request."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import ANY

from devtools.service import DEFAULT_ACCOUNT
from operator_tools.cli import main
from rotators.postgresql.engine import PostgresEngine
from tests.conftest import REGION, unique
from tests.helpers import handler_for
from tests.operator.world import World

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.postgres import PostgresServer
    from devtools.service import RotationService

DAY = 86400


@pytest.fixture
def world(sm_client: SecretsManagerClient, service: RotationService, postgres: PostgresServer) -> World:
    return World(sm_client, service, handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file))


def stack(world: World) -> dict[str, str]:
    """A stack with one of the suite's functions and a function of another kind; their ARNs."""
    template = {
        "Resources": {
            logical: {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "Role": world.role_arn,
                    "Handler": handler,
                    "Code": {"ZipFile": "def handler(event, context): pass"},
                },
            }
            for logical, handler in (
                ("PostgreSQLRotationFunction", "rotators.postgresql.app.lambda_handler"),
                ("SomethingElse", "other.handler"),
            )
        }
    }
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName="secrets-rotation", TemplateBody=json.dumps(template))
    resources = cloudformation.list_stack_resources(StackName="secrets-rotation")["StackResourceSummaries"]
    return {
        r["LogicalResourceId"]: world.lambda_.get_function_configuration(
            FunctionName=r["PhysicalResourceId"]
        )["FunctionArn"]
        for r in resources
    }


def secret(world: World, function: str, *, last: float, next_: float) -> str:
    from moto.secretsmanager.models import secretsmanager_backends

    arn = world.sm.create_secret(Name=unique("secret"), SecretString="{}")["ARN"]
    world.service.enable_rotation(arn)
    secrets: Any = secretsmanager_backends[DEFAULT_ACCOUNT][REGION].secrets
    secrets[arn].rotation_lambda_arn = function
    secrets[arn].last_rotation_date = int(last)
    secrets[arn].next_rotation_date = int(next_)
    return arn


def trail(world: World, failures: list[dict[str, Any]]) -> None:
    for name in ("RotationFailed", "RotationAbandoned"):
        events = [event for event in failures if event["EventName"] == name]
        world.cloudtrail_stub.add_response(
            "lookup_events",
            {"Events": events},
            {
                "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
                "StartTime": ANY,
                "MaxResults": 50,
            },
        )


def status(world: World, *options: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["status", "--json", *options], aws=world.aws, out=out)
    world.cloudtrail_stub.assert_no_pending_responses()
    return code, json.loads(out.getvalue())


def test_status_finds_the_stacks_secrets_and_flags_the_stuck_and_the_overdue(world: World) -> None:
    functions = stack(world)
    now = time.time()
    suite = functions["PostgreSQLRotationFunction"]
    healthy = secret(world, suite, last=now - 2 * DAY, next_=now + 28 * DAY)
    overdue = secret(world, suite, last=now - 40 * DAY, next_=now - 10 * DAY)
    stuck = secret(world, suite, last=now - 2 * DAY, next_=now + 28 * DAY)
    other = secret(world, functions["SomethingElse"], last=now, next_=now + DAY)
    request = world.service.start(stuck)
    world.age(stuck, request.token, 3600)  # past the window: 4 steps at 3 s, and 5 min
    failed_at = datetime.now(UTC)
    trail(
        world,
        [
            {
                "EventName": "RotationFailed",
                "EventTime": failed_at,
                "CloudTrailEvent": json.dumps({"additionalEventData": {"SecretId": stuck}}),
            }
        ],
    )

    code, document = status(world)

    assert code == 1
    assert document["functions"] == [suite.split(":")[-1]]
    rows = {row["secret"]: row for row in document["secrets"]}
    names = {arn: world.sm.describe_secret(SecretId=arn)["Name"] for arn in (healthy, overdue, stuck, other)}
    assert set(rows) == {names[healthy], names[overdue], names[stuck]}
    assert rows[names[healthy]]["state"] == "ok"
    assert rows[names[overdue]]["state"] == "OVERDUE" and rows[names[overdue]]["overdue"]
    assert (rows[names[stuck]]["pending_version"], rows[names[stuck]]["stuck"]) == (request.token, True)
    assert rows[names[stuck]]["state"].startswith(f"STUCK ({request.token[:8]} since 20")
    assert rows[names[stuck]]["last_failure"] == f"RotationFailed {failed_at.strftime('%Y-%m-%d %H:%M')} UTC"
    assert rows[names[healthy]]["last_failure"] == "-"


def test_status_of_named_functions_all_well_without_cloudtrail(world: World) -> None:
    world.deploy()
    now = time.time()
    arn = secret(
        world,
        world.lambda_.get_function(FunctionName="rotation-function")["Configuration"]["FunctionArn"],
        last=now - DAY,
        next_=now + 29 * DAY,
    )
    world.cloudtrail_stub.add_client_error("lookup_events", "AccessDeniedException", http_status_code=400)
    out = io.StringIO()
    code = main(["status", "--function", "rotation-function"], aws=world.aws, out=out)
    text = out.getvalue().splitlines()
    assert code == 0, text
    assert text[0].split() == [
        "SECRET",
        "FUNCTION",
        "LAST",
        "ROTATED",
        "NEXT",
        "ROTATION",
        "STATE",
        "LAST",
        "FAILURE",
    ]
    name = world.sm.describe_secret(SecretId=arn)["Name"]
    assert text[1].startswith(name) and " ok " in text[1]
    assert text[1].endswith("CloudTrail not readable (AccessDeniedException)")
    assert text[-1] == "1 secret rotated by rotation-function"


def test_status_tells_a_rotation_in_progress_from_a_stuck_one(world: World) -> None:
    """A pending version younger than the function's window (4 steps at its time-out,
    60 s, and 5 min) is a rotation under way: not stuck, and not overdue either."""
    arn = world.deploy()
    now = time.time()
    rotating = secret(world, arn, last=now - 31 * DAY, next_=now - 2 * DAY)
    request = world.service.start(rotating)
    world.cloudtrail_stub.add_client_error("lookup_events", "AccessDeniedException", http_status_code=400)
    world.age(rotating, request.token, 8 * 60)

    code, document = status(world, "--function", "rotation-function")

    (row,) = document["secrets"]
    assert code == 0, document
    assert row["state"].startswith(f"rotating ({request.token[:8]} since 20"), row
    assert (row["pending_version"], row["stuck"], row["overdue"]) == (request.token, False, False)

    world.age(rotating, request.token, 2 * 60)  # 10 min: past the 9 min window
    world.cloudtrail_stub.add_client_error("lookup_events", "AccessDeniedException", http_status_code=400)
    code, document = status(world, "--function", "rotation-function")
    (row,) = document["secrets"]
    assert code == 1
    assert row["state"].startswith(f"STUCK ({request.token[:8]} since 20"), row
    assert (row["stuck"], row["overdue"]) == (True, True)
