"""The AWS side of the operator tools: clients, the function's preflight, small parsers.

Everything is reached through :class:`Aws`, so that tests give it moto's clients, a
botocore Stubber where moto has no model, and an in-process invoker of the real handler.
"""

from __future__ import annotations

import json
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
    """One region's clients, made on first use; ``invoke`` runs a function synchronously."""

    def __init__(
        self,
        region: str | None = None,
        *,
        profile: str | None = None,
        clients: dict[str, Any] | None = None,
        invoker: Invoker | None = None,
        rotate: Callable[[str], None] | None = None,
    ) -> None:
        self._region = region
        self._profile = profile
        self._clients: dict[str, Any] = dict(clients or {})
        self._invoker = invoker
        self._rotate = rotate
        self._session: Any = None

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
        self, function: str, secret_arn: str, version_ids: list[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"SecretId": secret_arn}
        if version_ids:
            body["VersionIds"] = version_ids
        return self.invoke(function, {PREFLIGHT_KEY: body})

    def start_rotation(self, secret_arn: str) -> None:
        """``RotateSecret`` with the secret's own function and rules."""
        if self._rotate is not None:
            self._rotate(secret_arn)
            return
        self.client("secretsmanager").rotate_secret(SecretId=secret_arn)


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
    or abandoned, which blocks every later rotation."""
    for version, labels in versions.items():
        if AWSPENDING in labels and AWSCURRENT not in labels:
            return version
    return None


def version_with(versions: dict[str, list[str]], label: str) -> str | None:
    return next((version for version, labels in versions.items() if label in labels), None)


def when(value: object) -> str:
    """A date as the tools print it (UTC, minutes), or "-"."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "-"


def now() -> datetime:
    return datetime.now(UTC)
