"""Hostile secret JSON through the PostgreSQL function: every case fails createSecret with
an error of the project's tree, never echoes the password, and moves no label."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.errors import RotationError
from devtools.service import LambdaContext
from tests.conftest import pg_secret, unique
from tests.helpers import labels, store_secret
from tests.hostile_input import refused_with_project_error

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService

PASSWORD = "Hostile-Secret-Pw-123456"

#: Keys replaced in an otherwise valid secret of a user that does not exist.
CASES: dict[str, dict[str, Any]] = {
    "port-list": {"port": [5432]},
    "port-dict": {"port": {"n": 5432}},
    "port-float": {"port": 5432.0},
    "port-negative": {"port": -1},
    "port-huge": {"port": 10**30},
    "port-str-space": {"port": " 5432 "},
    "port-underscore": {"port": "5_4_3_2"},
    "port-zero": {"port": 0},
    "port-true": {"port": True},
    "host-int": {"host": 127},
    "host-space": {"host": "127.0.0.1 hostaddr=10.0.0.1"},
    "host-empty": {"host": "   "},
    "host-conninfo": {"host": "host=127.0.0.1 sslmode=disable"},
    "user-list": {"username": ["a"]},
    "user-sql": {"username": "x'; DROP ROLE postgres; --"},
    "user-huge": {"username": "u" * 60000},
    "dbname-int": {"dbname": 5},
    "dbname-conninfo": {"dbname": "postgres sslmode=disable"},
    "dbname-uri": {"dbname": "postgresql://evil/x"},
    "masterarn-int": {"masterarn": 5},
    "masterarn-self-name": {"masterarn": "does-not-exist"},
    "masterarn-list": {"masterarn": ["arn"]},
    "ssl-yes": {"ssl": "yes"},
    "ssl-0": {"ssl": 0},
    "ca-dir": {"ca_bundle": "/etc"},
    "ca-nonpem": {"ca_bundle": "/etc/hostname"},
    "ca-proc": {"ca_bundle": "/proc/self/environ"},
    "engine-mysql": {"engine": "mysql"},
    "engine-int": {"engine": 1},
    "engine-unicode": {"engine": "POSTGRES\u0130"},
    "password-int": {"password": 12345678},
    "password-empty": {"password": ""},
    "extra-huge": {"notes": "x" * 60000},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_json(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    case: str,
) -> None:
    """The case is refused at createSecret with the project's error (not a raw driver or
    Python exception, and not a login attempt that happens to fail), and AWSCURRENT stays."""
    body = pg_secret(postgres, unique("nobody"), PASSWORD, database) | CASES[case]
    arn = store_secret(sm_client, service, unique("hostile"), body)
    before = labels(sm_client, arn)
    refused_with_project_error(handler, service, arn, PASSWORD)
    assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]


@pytest.mark.parametrize("text", ["[]", "null", '"str"', "{", '{"password": "' + PASSWORD + '"', "1e999"])
def test_non_object_secret(
    sm_client: SecretsManagerClient, service: RotationService, handler: RotationFunction[Any], text: str
) -> None:
    """A secret string that is not a JSON object is refused naming no part of its text."""
    arn = store_secret(sm_client, service, unique("nonobj"), text)
    refused_with_project_error(handler, service, arn, PASSWORD)


def test_binary_secret(
    sm_client: SecretsManagerClient, service: RotationService, handler: RotationFunction[Any]
) -> None:
    """A secret stored as SecretBinary (no SecretString) is refused with the project's error."""
    arn = sm_client.create_secret(Name=unique("bin"), SecretBinary=b"\x00\x01")["ARN"]
    service.enable_rotation(arn)
    request = service.start(arn)
    with pytest.raises(RotationError):
        handler(request.event("createSecret"), LambdaContext())
