"""Function settings read from the environment once per container."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_CONNECT_TIMEOUT = 5
DEFAULT_STATEMENT_TIMEOUT = 30
DEFAULT_REPLICA_WAIT = 30


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
            connect_timeout=_seconds(env, "DB_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
            statement_timeout=_seconds(env, "DB_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT),
            replica_wait=_seconds(env, "REPLICA_WAIT_SECONDS", DEFAULT_REPLICA_WAIT, minimum=0),
            ca_bundle=env.get("DB_CA_BUNDLE") or None,
            environ=env,
        )

    def time_limits(self) -> list[tuple[str, int]]:
        """Each time limit with its variable's name, for the check against the time-out."""
        return [
            ("DB_CONNECT_TIMEOUT", self.connect_timeout),
            ("DB_STATEMENT_TIMEOUT", self.statement_timeout),
            ("REPLICA_WAIT_SECONDS", self.replica_wait),
        ]


def _seconds(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
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
