"""``status``: one row for every secret this suite's functions rotate in an account and region.

The functions come from the stack (``--stack``, the ``AWS::Lambda::Function`` resources
running one of the suite's handlers) or are named (``--function``). A secret is stuck
when ``AWSPENDING`` sits on a version other than ``AWSCURRENT``'s, overdue when its next
rotation date has passed by more than a day. The last ``RotationFailed`` or
``RotationAbandoned`` comes from CloudTrail when the caller may read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from operator_tools.aws import AWS_ERRORS, error_code, function_name, now, stuck_pending, when
from operator_tools.doctor import SUITE_HANDLERS

if TYPE_CHECKING:
    from operator_tools.aws import Aws

FAILURE_EVENTS = ("RotationFailed", "RotationAbandoned")
CLOUDTRAIL_DAYS = 90
CLOUDTRAIL_PAGES = 4
OVERDUE_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class Row:
    secret: str
    function: str
    last_rotated: str
    next_rotation: str
    overdue: bool
    stuck_version: str | None
    stuck_since: str
    last_failure: str

    @property
    def state(self) -> str:
        if self.stuck_version:
            return f"STUCK ({self.stuck_version[:8]} since {self.stuck_since})"
        return "OVERDUE" if self.overdue else "ok"


def suite_functions(aws: Aws, stack: str | None, names: list[str]) -> set[str]:
    """The names of the functions to report on."""
    if names:
        return {function_name(name) for name in names}
    cloudformation, lambda_ = aws.client("cloudformation"), aws.client("lambda")
    found = set()
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceType"] != "AWS::Lambda::Function":
                continue
            configuration = lambda_.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
            if configuration.get("Handler") in SUITE_HANDLERS:
                found.add(function_name(configuration["FunctionArn"]))
    return found


def collect(aws: Aws, functions: set[str]) -> list[Row]:
    sm = aws.client("secretsmanager")
    failures = last_failures(aws)
    rows = []
    for page in sm.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            function = function_name(str(secret.get("RotationLambdaARN", "")))
            if function not in functions:
                continue
            versions = secret.get("SecretVersionsToStages", {})
            stuck = stuck_pending(versions)
            next_rotation = secret.get("NextRotationDate")
            rows.append(
                Row(
                    secret=secret["Name"],
                    function=function,
                    last_rotated=when(secret.get("LastRotatedDate")),
                    next_rotation=when(next_rotation) if secret.get("RotationEnabled") else "disabled",
                    overdue=bool(
                        secret.get("RotationEnabled")
                        and next_rotation is not None
                        and next_rotation < now() - OVERDUE_GRACE
                    ),
                    stuck_version=stuck,
                    stuck_since=_created(aws, secret["ARN"], stuck) if stuck else "",
                    last_failure=_failure_of(failures, secret),
                )
            )
    return sorted(rows, key=lambda row: row.secret)


def _created(aws: Aws, arn: str, version: str) -> str:
    listed = aws.client("secretsmanager").list_secret_version_ids(SecretId=arn)["Versions"]
    return next((when(v.get("CreatedDate")) for v in listed if v["VersionId"] == version), "-")


def last_failures(aws: Aws) -> list[dict[str, Any]] | str:
    """Recent rotation failures from CloudTrail, newest first; a reason string when the
    caller may not read them."""
    cloudtrail = aws.client("cloudtrail")
    events: list[dict[str, Any]] = []
    try:
        for name in FAILURE_EVENTS:
            arguments: dict[str, Any] = {
                "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
                "StartTime": now() - timedelta(days=CLOUDTRAIL_DAYS),
                "MaxResults": 50,
            }
            for _ in range(CLOUDTRAIL_PAGES):
                response = cloudtrail.lookup_events(**arguments)
                events.extend(response.get("Events", []))
                if not response.get("NextToken"):
                    break
                arguments["NextToken"] = response["NextToken"]
    except AWS_ERRORS as error:
        return f"CloudTrail not readable ({error_code(error)})"
    return sorted(events, key=lambda event: event["EventTime"], reverse=True)


def _failure_of(failures: list[dict[str, Any]] | str, secret: dict[str, Any]) -> str:
    if isinstance(failures, str):
        return failures
    for event in failures:
        names = {resource.get("ResourceName") for resource in event.get("Resources", [])}
        if secret["ARN"] in names or secret["ARN"] in str(event.get("CloudTrailEvent", "")):
            return f"{event['EventName']} {when(event['EventTime'])}"
    return "-"


def rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [{**asdict(row), "state": row.state} for row in rows]


def table(rows: list[Row]) -> list[str]:
    header = ("SECRET", "FUNCTION", "LAST ROTATED", "NEXT ROTATION", "STATE", "LAST FAILURE")
    cells = [header] + [
        (row.secret, row.function, row.last_rotated, row.next_rotation, row.state, row.last_failure)
        for row in rows
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
