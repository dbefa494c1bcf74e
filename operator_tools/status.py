"""``status``: one row for every secret this suite's functions rotate in an account and region.

The functions come from the stack (``--stack``, the ``AWS::Lambda::Function`` resources
running one of the suite's handlers) or are named (``--function``). A secret is
rotating when ``AWSPENDING`` sits on a version other than ``AWSCURRENT``'s created within
the time a rotation may take (``suite.rotating_window``: four steps at the function's
time-out, and a margin), stuck when that version is older; overdue when its next rotation
date has passed by more than a day and it is not rotating. The last ``RotationFailed`` or
``RotationAbandoned`` comes from CloudTrail when the caller may read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from operator_tools.aws import (
    AWS_ERRORS,
    created_date,
    error_code,
    function_name,
    function_timeout,
    now,
    stuck_pending,
    when,
)
from operator_tools.suite import SUITE_HANDLERS, overdue, pending_state

if TYPE_CHECKING:
    from operator_tools.aws import Aws

FAILURE_EVENTS = ("RotationFailed", "RotationAbandoned")
CLOUDTRAIL_DAYS = 90
CLOUDTRAIL_PAGES = 4


@dataclass(frozen=True)
class Row:
    secret: str
    function: str
    last_rotated: str
    next_rotation: str
    overdue: bool
    pending_version: str | None
    pending_since: str
    stuck: bool
    last_failure: str

    @property
    def state(self) -> str:
        if self.pending_version:
            kind = "STUCK" if self.stuck else "rotating"
            return f"{kind} ({self.pending_version[:8]} since {self.pending_since})"
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
    timeouts: dict[str, int | None] = {}
    rows = []
    for page in sm.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            function = function_name(str(secret.get("RotationLambdaARN", "")))
            if function not in functions:
                continue
            pending = stuck_pending(secret.get("SecretVersionsToStages", {}))
            created = created_date(aws, secret["ARN"], pending) if pending else None
            if pending and function not in timeouts:
                timeouts[function] = function_timeout(aws, secret["RotationLambdaARN"])
            rotating = bool(pending) and pending_state(created, timeouts.get(function), now()) == "rotating"
            rows.append(
                Row(
                    secret=secret["Name"],
                    function=function,
                    last_rotated=when(secret.get("LastRotatedDate")),
                    next_rotation=when(secret.get("NextRotationDate"))
                    if secret.get("RotationEnabled")
                    else "disabled",
                    # A rotation under way is the overdue one being done.
                    overdue=overdue(secret, now()) and not rotating,
                    pending_version=pending,
                    pending_since=when(created) if pending else "",
                    stuck=bool(pending) and not rotating,
                    last_failure=_failure_of(failures, secret),
                )
            )
    return sorted(rows, key=lambda row: row.secret)


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
