"""engine.open() with hostile login values against a dead local port: only the project's
exception tree may come out (promise 2), and never the password."""

from __future__ import annotations

import socket

import pytest

from common.engine import Login
from common.errors import RotationError
from common.tls import TlsPolicy
from rotators.mongodb.engine import MongoEngine
from rotators.mysql.engine import MySQLEngine
from rotators.postgresql.engine import PostgresEngine
from rotators.redshift.engine import RedshiftEngine

PASSWORD = "Secret-Pw-0123456789"


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


ENGINES = {"postgres": PostgresEngine, "mysql": MySQLEngine, "mongo": MongoEngine, "redshift": RedshiftEngine}
CASES = {
    "nul-host": dict(host="127.0.0.1\x00x"),
    "nul-user": dict(username="u\x00x"),
    "nul-password": dict(password=PASSWORD + "\x00x"),
    "nul-dbname": dict(dbname="d\x00x"),
    "surrogate-password": dict(password=PASSWORD + "\ud800"),
    "surrogate-user": dict(username="u\udfff"),
    "surrogate-host": dict(host="h\ud800"),
    "space-host": dict(host="127.0.0.1 evil"),
    "colon-host": dict(host="127.0.0.1:abc"),
    "huge-user": dict(username="u" * 70000),
    "huge-host": dict(host="h" * 70000),
    "non-pem-ca": dict(ca="/etc/hostname"),
    "directory-ca": dict(ca="/etc"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("engine_name", sorted(ENGINES))
def test_open_raises_only_project_errors(engine_name: str, case: str) -> None:
    values = dict(host="127.0.0.1", username="app", password=PASSWORD, dbname="db", ca=None)
    values.update(CASES[case])
    engine = ENGINES[engine_name]()
    try:
        login = Login(
            host=values["host"], port=_dead_port(), dbname=values["dbname"], username=values["username"],
        password=values["password"], tls=TlsPolicy(enabled=True, ca_file=values["ca"] or "/etc/ssl/certs/ca-certificates.crt"),
        connect_timeout=1, statement_timeout=1, label="AWSCURRENT",
        )
        connection = engine.open(login)
    except RotationError as error:
        assert PASSWORD not in str(error)
        return
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"raw {type(error).__module__}.{type(error).__name__}: {str(error)[:120]}")
    engine.close(connection)
    pytest.fail("connected to a dead port?")
