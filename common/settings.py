"""Function settings read from the environment once per container."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_CONNECT_TIMEOUT = 5
DEFAULT_STATEMENT_TIMEOUT = 30
DEFAULT_REPLICA_WAIT = 30
#: The levels Powertools' logger takes by name (it upper-cases what it is given).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: The Powertools service name when ``POWERTOOLS_SERVICE_NAME`` is not set.
DEFAULT_SERVICE = "secrets-rotation"


@dataclass(frozen=True)
class Settings:
    """Time limits and the TLS trust anchor shared by every engine.

    ``ca_bundle`` is the ``DB_CA_BUNDLE`` path (``None`` means the system trust store);
    ``replica_wait`` bounds how long a rotation waits for a read replica to receive a
    changed password (0: not at all); ``environ`` is kept for the password policy variables.
    """

    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT
    statement_timeout: int = DEFAULT_STATEMENT_TIMEOUT
    replica_wait: int = DEFAULT_REPLICA_WAIT
    ca_bundle: str | None = None
    # The whole environment holds the function's AWS credentials: never in a repr.
    environ: Mapping[str, str] | None = field(default=None, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``DB_CONNECT_TIMEOUT``, ``DB_STATEMENT_TIMEOUT``, ``REPLICA_WAIT_SECONDS``
        (seconds) and ``DB_CA_BUNDLE``."""
        env = dict(os.environ if environ is None else environ)
        return cls(
            connect_timeout=seconds(env, "DB_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
            statement_timeout=seconds(env, "DB_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT),
            replica_wait=seconds(env, "REPLICA_WAIT_SECONDS", DEFAULT_REPLICA_WAIT, minimum=0),
            ca_bundle=env.get("DB_CA_BUNDLE") or None,
            environ=env,
        )

    def time_limits(self) -> list[tuple[str, int, bool]]:
        """Each time limit with its variable's name, for the check against the time-out,
        and whether it must be left in full after the step has begun (a login is started
        only with the whole connect time-out left, so an exact fit would never log in)."""
        return [
            ("DB_CONNECT_TIMEOUT", self.connect_timeout, True),
            ("DB_STATEMENT_TIMEOUT", self.statement_timeout, False),
            ("REPLICA_WAIT_SECONDS", self.replica_wait, False),
        ]


def seconds(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    """The whole number of seconds in variable ``name`` (``minimum`` to 600), ``default``
    when unset or empty; ConfigurationError naming the variable otherwise."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number of seconds") from None
    if not minimum <= value <= 600:
        raise ConfigurationError(f"{name} must be between {minimum} and 600 seconds")
    return value


def flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """The true/false variable ``name`` (also 1/0, yes/no), ``default`` when unset or
    empty; ConfigurationError naming the variable otherwise."""
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be true or false")


def log_level(env: Mapping[str, str]) -> str | None:
    """The logger's level from ``POWERTOOLS_LOG_LEVEL`` (or Powertools' legacy
    ``LOG_LEVEL``), in any case and surrounding blanks; None when neither is set.

    Raises ConfigurationError naming the variable for anything else (``verbose``, ``5``):
    Powertools itself would fail at import with a bare ValueError."""
    for name in ("POWERTOOLS_LOG_LEVEL", "LOG_LEVEL"):
        raw = env.get(name, "")
        if not raw:
            continue
        level = raw.strip().upper()
        if level not in LOG_LEVELS:
            raise ConfigurationError(f"{name} must be one of {', '.join(LOG_LEVELS)} (got {raw[:20]!r})")
        return level
    return None


def service_name(env: Mapping[str, str]) -> str:
    """The rotation functions' logger and metrics service (``POWERTOOLS_SERVICE_NAME``),
    also the parent of every other logger of ours, so their lines share its handler."""
    return env.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE


def endpoint_url(env: Mapping[str, str], name: str) -> str | None:
    """The endpoint URL variable ``name`` holds (``http(s)://host[:port]``), None when
    it is unset or empty (the service's regional endpoint).

    Raises ConfigurationError naming the variable for a URL botocore would refuse or
    misread (no scheme, blanks, an unclosed IPv6 bracket, a bad port, another scheme)."""
    raw = env.get(name, "")
    if raw == "":
        return None
    problem = f"{name} must be an http:// or https:// URL with a host, e.g. http://172.17.0.1:5000, or empty"
    try:
        parts = urllib.parse.urlsplit(raw)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigurationError(problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or raw != raw.strip():
        raise ConfigurationError(problem)
    return raw
