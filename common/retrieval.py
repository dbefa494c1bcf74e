"""Secrets for application functions: cached per container, refreshed when rotation
changed them.

This is for the functions that *use* a secret, not for the rotators. ``SecretCache.get``
returns the parsed JSON of a staging label, from a per-container cache with a time
limit; ``refresh=True`` skips the cache (the connection helpers do so when the database
refuses the cached password). Values are read through AWS Lambda Powertools' parameters
utility, or through the Parameters and Secrets Lambda Extension's local endpoint when it
is present (``SECRETS_RETRIEVAL`` = ``auto`` | ``extension`` | ``powertools``). The
extension keeps a cache of its own that cannot be bypassed, so forced refreshes always
go to Secrets Manager directly. Nothing here logs or stores a secret outside memory.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from common.errors import ConfigurationError, SecretsManagerError
from common.secret import parse_object

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_secretsmanager import SecretsManagerClient

DEFAULT_MAX_AGE = 300.0
EXTENSION_PATH = "/opt/extensions/AWSParametersAndSecretsLambdaExtension"


class Fetcher(Protocol):
    """Reads one staging label of a secret: its SecretString, or None when no version
    carries the label."""

    def fetch(self, secret_id: str, stage: str) -> str | None: ...


class PowertoolsFetcher:
    """Secrets Manager through Powertools' ``SecretsProvider`` (its own cache bypassed:
    ``SecretCache`` decides when to read)."""

    def __init__(self, client: SecretsManagerClient | None = None) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        if client is None:
            from common.secretsmanager import build_client

            client = build_client()
        self._provider = SecretsProvider(boto3_client=client)
        self.calls = 0

    def fetch(self, secret_id: str, stage: str) -> str | None:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
        from botocore.exceptions import ClientError

        self.calls += 1
        try:
            value = self._provider.get(secret_id, force_fetch=True, VersionStage=stage)
        except GetParameterError as error:
            # Powertools re-raises without ``from``: the SDK's error is the context.
            cause = error.__cause__ or error.__context__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == (
                "ResourceNotFoundException"
            ):
                return None
            code = (
                cause.response.get("Error", {}).get("Code", "Unknown")
                if isinstance(cause, ClientError)
                else type(cause or error).__name__
            )
            raise SecretsManagerError(f"reading {stage} of {secret_id} failed: {code}", code) from error
        return value if isinstance(value, str) else None


class ExtensionFetcher:
    """The Parameters and Secrets Lambda Extension's local HTTP endpoint."""

    def __init__(self, port: int | None = None, timeout: float = 5.0) -> None:
        configured = os.environ.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2773")
        try:
            self.port = port or int(configured)
        except ValueError:
            raise ConfigurationError("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT must be a port number") from None
        self.timeout = timeout
        self.calls = 0

    def fetch(self, secret_id: str, stage: str) -> str | None:
        query = urllib.parse.urlencode({"secretId": secret_id, "versionStage": stage})
        request = urllib.request.Request(
            f"http://localhost:{self.port}/secretsmanager/get?{query}",
            # The extension accepts only callers that hold the function's session token.
            headers={"X-Aws-Parameters-Secrets-Token": os.environ.get("AWS_SESSION_TOKEN", "")},
        )
        self.calls += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code in (400, 404) and b"ResourceNotFoundException" in error.read():
                return None
            raise SecretsManagerError(
                f"the secrets extension answered {error.code}", str(error.code)
            ) from None
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            raise SecretsManagerError(
                f"the secrets extension failed: {type(error).__name__}", "Extension"
            ) from None
        value = body.get("SecretString")
        return value if isinstance(value, str) else None


def default_fetchers(client: SecretsManagerClient | None = None) -> tuple[Fetcher, Fetcher]:
    """(the fetcher for ordinary reads, the fetcher for forced refreshes) for this
    environment: the extension when present or chosen, else Powertools for both."""
    mode = os.environ.get("SECRETS_RETRIEVAL", "auto").lower()
    if mode not in ("auto", "extension", "powertools"):
        raise ConfigurationError("SECRETS_RETRIEVAL must be auto, extension or powertools")
    direct = PowertoolsFetcher(client)
    extension_present = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT" in os.environ or os.path.exists(
        EXTENSION_PATH
    )
    if mode == "extension" or (mode == "auto" and extension_present):
        return ExtensionFetcher(), direct
    return direct, direct


class SecretCache:
    """Parsed secret values per (secret, label), each kept ``max_age`` seconds.

    Thread-safe; ``fetches`` counts reads by label. A label no version carries (for
    example ``AWSPENDING`` outside a rotation) reads as None and is not cached.
    """

    def __init__(
        self,
        fetcher: Fetcher | None = None,
        refresher: Fetcher | None = None,
        *,
        max_age: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fetcher is None:
            fetcher, default_refresher = default_fetchers()
            refresher = refresher or default_refresher
        self._fetcher = fetcher
        self._refresher = refresher or fetcher
        self._max_age = (
            float(os.environ.get("SECRETS_MAX_AGE", DEFAULT_MAX_AGE)) if max_age is None else max_age
        )
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.fetches: Counter[str] = Counter()

    def get(
        self, secret_id: str, stage: str = "AWSCURRENT", *, refresh: bool = False
    ) -> dict[str, Any] | None:
        """The parsed secret carrying ``stage``; from the cache unless expired or ``refresh``."""
        key = (secret_id, stage)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not refresh and now - entry[0] < self._max_age:
                return entry[1]
        text = (self._refresher if refresh else self._fetcher).fetch(secret_id, stage)
        self.fetches[stage] += 1
        if text is None:
            with self._lock:
                self._entries.pop(key, None)
            return None
        value = parse_object(text, f"{stage} of {secret_id}")
        with self._lock:
            self._entries[key] = (now, value)
        return value

    def invalidate(self, secret_id: str) -> None:
        """Forget every cached label of ``secret_id``."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == secret_id]:
                del self._entries[key]
