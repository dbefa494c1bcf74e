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

A secret id may be a Parameter Store reference to the secret,
``/aws/reference/secretsmanager/<name>`` (read with decryption); a label other than
``AWSCURRENT`` is then asked for with Parameter Store's selector, ``<reference>:<label>``.
"""

from __future__ import annotations

import http.client
import json
import math
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
    from collections.abc import Callable, Mapping

    from mypy_boto3_secretsmanager import SecretsManagerClient

DEFAULT_MAX_AGE = 300.0
EXTENSION_PATH = "/opt/extensions/AWSParametersAndSecretsLambdaExtension"
REFERENCE_PREFIX = "/aws/reference/secretsmanager/"
# What each backend answers for a secret, version or label that does not exist.
_NOT_FOUND = ("ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound")


def parameter_name(reference: str, stage: str) -> str:
    """The Parameter Store name that reads ``stage`` of the secret ``reference`` names."""
    if ":" in reference[len(REFERENCE_PREFIX) :]:
        raise ConfigurationError(
            f"{reference[:200]!r}: name the secret without a version selector (the cache asks for labels)"
        )
    return reference if stage == "AWSCURRENT" else f"{reference}:{stage}"


def max_age_from_environ(environ: Mapping[str, str] | None = None) -> float:
    """``SECRETS_MAX_AGE``: seconds a value is kept (unset or empty: 300; 0 reads every time)."""
    raw = (os.environ if environ is None else environ).get("SECRETS_MAX_AGE", "").strip()
    if not raw:
        return DEFAULT_MAX_AGE
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"SECRETS_MAX_AGE must be a number of seconds, 0 or more (got {raw[:20]!r})"
        ) from None
    return checked_max_age(value, "SECRETS_MAX_AGE")


def checked_max_age(value: float, source: str) -> float:
    """``value`` if it is a usable time limit: finite and not negative (nan and -5 would
    otherwise turn caching off without a word)."""
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{source} must be a finite number of seconds, 0 or more (got {value})")
    return value


class Fetcher(Protocol):
    """Reads one staging label of a secret: its SecretString, or None when no version
    carries the label (or the secret does not exist)."""

    def fetch(self, secret_id: str, stage: str) -> str | None: ...


class PowertoolsFetcher:
    """Secrets Manager through Powertools' ``SecretsProvider``, and Parameter Store
    references through its ``SSMProvider`` (their own caches bypassed: ``SecretCache``
    decides when to read)."""

    def __init__(self, client: SecretsManagerClient | None = None, ssm_client: Any = None) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        if client is None:
            from common.clients import build_client

            client = build_client()
        self._provider = SecretsProvider(boto3_client=client)
        self._ssm_client = ssm_client
        self._ssm: Any = None
        self.calls = 0

    def fetch(self, secret_id: str, stage: str) -> str | None:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
        from botocore.exceptions import ClientError

        self.calls += 1
        try:
            if secret_id.startswith(REFERENCE_PREFIX):
                value = self._parameters().get(
                    parameter_name(secret_id, stage), decrypt=True, force_fetch=True
                )
            else:
                value = self._provider.get(secret_id, force_fetch=True, VersionStage=stage)
        except GetParameterError as error:
            # Powertools re-raises without ``from``: the SDK's error is the context.
            cause = error.__cause__ or error.__context__
            code = (
                cause.response.get("Error", {}).get("Code", "Unknown")
                if isinstance(cause, ClientError)
                else type(cause or error).__name__
            )
            if code in _NOT_FOUND:
                return None
            raise SecretsManagerError(f"reading {stage} of {secret_id} failed: {code}", code) from error
        return value if isinstance(value, str) else None

    def _parameters(self) -> Any:
        """Powertools' SSM provider, built at the first reference read."""
        if self._ssm is None:
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            if self._ssm_client is None:
                from common.clients import build_ssm_client

                self._ssm_client = build_ssm_client()
            self._ssm = SSMProvider(boto3_client=self._ssm_client)
        return self._ssm


class ExtensionFetcher:
    """The Parameters and Secrets Lambda Extension's local HTTP endpoint
    (``/secretsmanager/get``, and ``/systemsmanager/parameters/get`` for references)."""

    def __init__(self, port: int | None = None, timeout: float = 5.0) -> None:
        configured = os.environ.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2773")
        try:
            self.port = port or int(configured)
        except ValueError:
            self.port = 0
        if not 1 <= self.port <= 65535:
            raise ConfigurationError("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT must be a port number")
        self.endpoint = f"http://localhost:{self.port}"
        self.timeout = timeout
        self.calls = 0

    def fetch(self, secret_id: str, stage: str) -> str | None:
        if secret_id.startswith(REFERENCE_PREFIX):
            path = "/systemsmanager/parameters/get"
            query = {"name": parameter_name(secret_id, stage), "withDecryption": "true"}
        else:
            path, query = "/secretsmanager/get", {"secretId": secret_id, "versionStage": stage}
        body = self._get(path, query)
        if body is None:
            return None
        if path.startswith("/systemsmanager/"):
            parameter = body.get("Parameter")
            value = parameter.get("Value") if isinstance(parameter, dict) else None
        else:
            value = body.get("SecretString")
        return value if isinstance(value, str) else None

    def _get(self, path: str, query: dict[str, str]) -> dict[str, Any] | None:
        """The JSON object the extension answers; None for a secret or label that does not exist."""
        request = urllib.request.Request(  # noqa: S310 - always http://localhost
            f"{self.endpoint}{path}?{urllib.parse.urlencode(query)}",
            # The extension accepts only callers that hold the function's session token.
            headers={"X-Aws-Parameters-Secrets-Token": os.environ.get("AWS_SESSION_TOKEN", "")},
        )
        self.calls += 1
        not_extension = (
            f"{self.endpoint} did not answer as the Parameters and Secrets extension "
            "(check PARAMETERS_SECRETS_EXTENSION_HTTP_PORT and that the extension's layer is attached)"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = error.read()
            if error.code in (400, 404) and any(code.encode() in answer for code in _NOT_FOUND):
                return None
            raise SecretsManagerError(
                f"the Parameters and Secrets extension at {self.endpoint}{path} answered HTTP {error.code}",
                str(error.code),
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as error:
            # Connection refused or reset, not HTTP, or not JSON: something else holds the port.
            cause = error.reason if isinstance(error, urllib.error.URLError) else error
            reason = type(cause).__name__ if isinstance(cause, BaseException) else str(cause)[:100]
            raise SecretsManagerError(f"{not_extension}: {reason}", "Extension") from None
        if not isinstance(body, dict):
            raise SecretsManagerError(f"{not_extension}: unexpected answer", "Extension")
        return body


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
    """Parsed secret values per (secret, label), each kept ``max_age`` seconds
    (``SECRETS_MAX_AGE`` when not given).

    Thread-safe; ``fetches`` counts reads by label. A label no version carries (for
    example ``AWSPENDING`` outside a rotation) reads as None and is not cached; a secret
    with no ``AWSCURRENT`` value does not exist for an application, and reading it
    raises SecretsManagerError naming the secret.
    """

    def __init__(
        self,
        fetcher: Fetcher | None = None,
        refresher: Fetcher | None = None,
        *,
        max_age: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age = max_age_from_environ() if max_age is None else checked_max_age(max_age, "max_age")
        if fetcher is None:
            fetcher, default_refresher = default_fetchers()
            refresher = refresher or default_refresher
        self._fetcher = fetcher
        self._refresher = refresher or fetcher
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
            if stage == "AWSCURRENT":
                raise SecretsManagerError(
                    f"secret {secret_id[:300]!r} was not found: it does not exist, or holds no value "
                    "labelled AWSCURRENT (check the secret id)",
                    "ResourceNotFoundException",
                )
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
