"""AWS API errors, read once for every client the functions use (Secrets Manager, RDS,
ElastiCache, MemoryDB).

A botocore ``ClientError`` carries the service's code and message in
``error.response["Error"]``; any other botocore error (time-out, connection, parameter
validation) has only its class. This module recognises both by their documented shape,
without importing botocore, so that an engine's module (which never imports boto3) can
use it too. AWS never echoes a password in a message; the mask is the safety net.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.redaction import redact

#: The codes AWS answers when the caller's IAM policy lacks the action.
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


@dataclass(frozen=True)
class AwsFailure:
    """What an AWS call's failure says: its ``code`` (the service's, or the botocore
    error's class name) and its masked ``message`` (empty when it has none)."""

    code: str
    message: str = ""

    @property
    def denied(self) -> bool:
        """Whether the function's role lacks the action."""
        return self.code in DENIED

    @classmethod
    def of(cls, error: BaseException) -> AwsFailure | None:
        """The failure ``error`` reports, or None when it is not an AWS client's error."""
        response = getattr(error, "response", None)
        details = response.get("Error") if isinstance(response, Mapping) else None
        if isinstance(details, Mapping):
            return cls(str(details.get("Code") or "Unknown"), redact(str(details.get("Message") or "")))
        if any(kind.__module__.split(".")[0] == "botocore" for kind in type(error).__mro__):
            return cls(type(error).__name__)
        return None

    def summary(self, operation: str) -> str:
        """``<operation> failed with <code>``: the start of every message built on it."""
        return f"{operation} failed with {self.code}"
