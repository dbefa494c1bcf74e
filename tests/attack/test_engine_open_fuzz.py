"""Every engine's open() with hostile login values against a local port nothing listens on:
only errors of the project's tree come out (never a raw driver, socket or Unicode error),
and never the password."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.engine import Login
from common.errors import RotationError
from common.tls import TlsPolicy
from devtools.ports import free_port
from rotators.mongodb.engine import MongoEngine
from rotators.mysql.engine import MySQLEngine
from rotators.postgresql.engine import PostgresEngine
from rotators.redshift.engine import RedshiftEngine

if TYPE_CHECKING:
    from common.engine import Engine

PASSWORD = "Secret-Pw-0123456789"
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"

ENGINES: dict[str, type[Engine[Any]]] = {
    "postgres": PostgresEngine,
    "mysql": MySQLEngine,
    "mongo": MongoEngine,
    "redshift": RedshiftEngine,
}
#: Login fields replaced in an otherwise plain login.
CASES: dict[str, dict[str, str]] = {
    "nul-host": {"host": "127.0.0.1\x00x"},
    "nul-user": {"username": "u\x00x"},
    "nul-password": {"password": PASSWORD + "\x00x"},
    "nul-dbname": {"dbname": "d\x00x"},
    "surrogate-password": {"password": PASSWORD + "\ud800"},
    "surrogate-user": {"username": "u\udfff"},
    "surrogate-host": {"host": "h\ud800"},
    "space-host": {"host": "127.0.0.1 evil"},
    "colon-host": {"host": "127.0.0.1:abc"},
    "huge-user": {"username": "u" * 70000},
    "huge-host": {"host": "h" * 70000},
    "non-pem-ca": {"ca": "/etc/hostname"},
    "directory-ca": {"ca": "/etc"},
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("engine_name", sorted(ENGINES))
def test_open_raises_only_project_errors(engine_name: str, case: str) -> None:
    """Building the login and opening it both fail with a RotationError that does not hold
    the password; any other exception fails the test by its type alone."""
    values = {"host": "127.0.0.1", "username": "app", "password": PASSWORD, "dbname": "db", "ca": SYSTEM_CA}
    values |= CASES[case]
    engine = ENGINES[engine_name]()
    raw: type[BaseException] | None = None
    try:
        login = Login(
            host=values["host"],
            port=free_port(),
            dbname=values["dbname"],
            username=values["username"],
            password=values["password"],
            tls=TlsPolicy(enabled=True, ca_file=values["ca"]),
            connect_timeout=1,
            statement_timeout=1,
            label="AWSCURRENT",
        )
        connection = engine.open(login)
    except RotationError as error:
        assert PASSWORD not in str(error)
        return
    except Exception as error:  # noqa: BLE001 - any other exception is the defect under test
        raw = type(error)
    if raw is not None:
        pytest.fail(f"raw {raw.__module__}.{raw.__name__} escaped open()")
    engine.close(connection)
    pytest.fail("open() connected to a port nothing listens on")
