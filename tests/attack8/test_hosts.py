"""Attack round 8: the host rule (``host_problem``: "a DNS name or IP address", for every
engine) against addresses each driver reads differently. No server needed: a closed
port on the loopback shows whether the driver tried to connect at all."""

from __future__ import annotations

import pytest

from common.engine import Login
from common.errors import DatabaseConnectionError, SecretFormatError
from common.secret import DatabaseSecret
from common.tls import TlsPolicy
from rotators.mongodb.engine import MongoEngine


def _login(host: str) -> Login:
    return Login(
        host=host,
        port=1,
        dbname=None,
        username="app",
        password="Pw-valid-123456",
        tls=TlsPolicy(enabled=False),
        connect_timeout=2,
        statement_timeout=2,
        label="AWSCURRENT",
    )


@pytest.mark.parametrize("host", ["::1", "fe80::1%lo"])
def test_mongodb_accepts_an_ipv6_address(host: str) -> None:
    """Severity: low (a valid host for every other engine is a configuration error for the
    MongoDB function; the operator must know to bracket it).

    Expected: the driver tries the address (connection refused on a closed port), as
    PyMySQL, libpq and redis-py do. Actual: ConfigurationError "cannot use the AWSCURRENT
    settings for ::1:1: Reserved characters such as ':' must be escaped..." (PyMongo
    splits an unbracketed host at ':'; the zone id: "Percent-encoding is only allowed
    ...")."""
    with pytest.raises(DatabaseConnectionError):
        MongoEngine().open(_login(host))


@pytest.mark.parametrize("host", ["db.example.internal:5432", "10.0.0.5:3306"])
def test_a_port_inside_the_host_is_refused_naming_the_problem(host: str) -> None:
    """Severity: low (bad input without a clear error: PostgreSQL, MySQL and Redis fail
    later with "Name or service not known"; PyMongo silently uses the host's port and
    ignores the secret's ``port``).

    Expected: SecretFormatError naming key 'host' and the port (or 'port'). Actual: the
    secret is accepted."""
    raw = {"engine": "postgres", "host": host, "username": "app", "password": "Pw-valid-123456", "port": 5432}
    with pytest.raises(SecretFormatError, match="'host'"):
        DatabaseSecret.from_dict(raw, "AWSCURRENT")
