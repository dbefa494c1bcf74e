"""The AWS side of the operator tools: clients, the function's preflight, small parsers.

Everything is reached through :class:`Aws`, so that tests give it moto's clients, a
botocore Stubber where moto has no model, and an in-process invoker of the real handler.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

#: The preflight event's top-level key (the function's side: ``common/preflight.py``).
PREFLIGHT_KEY = "Preflight"
AWSCURRENT, AWSPENDING, AWSPREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"

#: (function ARN, event) -> the function's JSON answer.
Invoker = Callable[[str, dict[str, Any]], dict[str, Any]]


#: What a failed AWS call raises: the service's answer, or botocore's own failure.
AWS_ERRORS = (ClientError, BotoCoreError)


class ToolError(Exception):
    """A failure the tool reports as one line (never with a secret value)."""


class Aws:
    """One region's clients, made on first use; ``invoke`` runs a function synchronously.

    ``sleep`` and ``clock`` are the tools' time (waiting for a rotation), so that a test
    can let time pass without waiting."""

    def __init__(
        self,
        region: str | None = None,
        *,
        profile: str | None = None,
        clients: dict[str, Any] | None = None,
        invoker: Invoker | None = None,
        rotate: Callable[[str], str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._region = region
        self._profile = profile
        self._clients: dict[str, Any] = dict(clients or {})
        self._invoker = invoker
        self._rotate = rotate
        self._session: Any = None
        self.sleep = sleep
        self.clock = clock

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            if self._session is None:
                self._session = boto3.session.Session(profile_name=self._profile, region_name=self._region)
            config = Config(
                connect_timeout=5, read_timeout=70, retries={"max_attempts": 3, "mode": "standard"}
            )
            self._clients[service] = self._session.client(service, config=config)
        return self._clients[service]

    @property
    def region(self) -> str:
        return str(self.client("secretsmanager").meta.region_name)

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        """The function's answer to ``event``; ToolError when it failed or answered no object."""
        if self._invoker is not None:
            return self._invoker(function, event)
        response = self.client("lambda").invoke(
            FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            error = payload if isinstance(payload, dict) else {}
            kind, message = error.get("errorType", "error"), error.get("errorMessage", "")
            raise ToolError(f"the function failed: {kind}: {message}".rstrip(": "))
        if not isinstance(payload, dict):
            raise ToolError("the function answered no report (is it one of this suite's, up to date?)")
        return payload

    def preflight(
        self,
        function: str,
        secret_arn: str,
        version_ids: list[str] | None = None,
        max_refused: int | None = None,
    ) -> dict[str, Any]:
        """The function's preflight report; ``max_refused`` asks it to risk that many
        refused logins in a row per user (None: the function's default)."""
        body: dict[str, Any] = {"SecretId": secret_arn}
        if version_ids:
            body["VersionIds"] = version_ids
        if max_refused is not None:
            body["MaxRefusedLogins"] = max_refused
        return self.invoke(function, {PREFLIGHT_KEY: body})

    def start_rotation(self, secret_arn: str) -> str:
        """``RotateSecret`` with the secret's own function and rules; the new version's id.
        It only starts the rotation: Secrets Manager registers the version labelled
        ``AWSPENDING`` and runs the function's four steps afterwards."""
        if self._rotate is not None:
            return self._rotate(secret_arn)
        return str(self.client("secretsmanager").rotate_secret(SecretId=secret_arn)["VersionId"])


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError, else the error's type."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Code"):
        return str(response["Error"]["Code"])
    return type(error).__name__


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def function_name(arn_or_name: str) -> str:
    """A function's name from its name or ARN (qualifier dropped)."""
    if arn_or_name.startswith("arn:"):
        parts = arn_or_name.split(":")
        return parts[6] if len(parts) > 6 else arn_or_name
    return arn_or_name


def stuck_pending(versions: dict[str, list[str]]) -> str | None:
    """The version labelled AWSPENDING when it is not AWSCURRENT's: a rotation in progress
    or abandoned, which blocks every later rotation (``suite.pending_state`` tells which)."""
    for version, labels in versions.items():
        if AWSPENDING in labels and AWSCURRENT not in labels:
            return version
    return None


def created_date(aws: Aws, arn: str, version: str) -> datetime | None:
    """When a version was created (``ListSecretVersionIds``), None when it is not listed;
    raises one of :data:`AWS_ERRORS` when the caller may not list them."""
    listed = aws.client("secretsmanager").list_secret_version_ids(
        SecretId=arn, IncludeDeprecated=True, MaxResults=100
    )["Versions"]
    created = next((v.get("CreatedDate") for v in listed if v["VersionId"] == version), None)
    return created if isinstance(created, datetime) else None


def function_timeout(aws: Aws, function: str | None) -> int | None:
    """A function's time-out in seconds; None when there is none or it cannot be read."""
    if not function:
        return None
    try:
        timeout = aws.client("lambda").get_function_configuration(FunctionName=function).get("Timeout")
    except AWS_ERRORS:
        return None
    return int(timeout) if timeout else None


def version_with(versions: dict[str, list[str]], label: str) -> str | None:
    return next((version for version, labels in versions.items() if label in labels), None)


def when(value: object) -> str:
    """A date as the tools print it (UTC, minutes), or "-"."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "-"


def now() -> datetime:
    return datetime.now(UTC)
