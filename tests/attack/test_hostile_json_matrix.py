"""Hostile secret JSON through the PostgreSQL handler: every case must fail createSecret
with the project's error (or rotate), move no label, and never echo the password."""

from __future__ import annotations

import json

import pytest

from common.errors import RotationError
from devtools.service import LambdaContext
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import labels, store_secret

PW = "Hostile-Secret-Pw-123456"

CASES = {
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
def test_hostile_json(postgres, sm_client, service, handler, database, case) -> None:
    body = pg_secret(postgres, unique("nobody"), PW, database)
    body.update(CASES[case])
    arn = store_secret(sm_client, service, unique("hostile"), body)
    before = labels(sm_client, arn)
    request = service.start(arn)
    try:
        handler(request.event("createSecret"), LambdaContext())
    except RotationError as error:
        assert PW not in str(error)
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"raw {type(error).__module__}.{type(error).__name__}: {str(error)[:150]}")
    else:
        pytest.fail("createSecret succeeded for a user that does not exist")
    after = labels(sm_client, arn)
    assert after["AWSCURRENT"] == before["AWSCURRENT"]


@pytest.mark.parametrize("text", ["[]", "null", "\"str\"", "{", "{\"password\": \"" + PW + "\"", "1e999"])
def test_non_object_secret(sm_client, service, handler, text) -> None:
    arn = store_secret(sm_client, service, unique("nonobj"), text)
    request = service.start(arn)
    with pytest.raises(RotationError) as raised:
        handler(request.event("createSecret"), LambdaContext())
    assert PW not in str(raised.value)


def test_binary_secret(sm_client, service, handler) -> None:
    arn = sm_client.create_secret(Name=unique("bin"), SecretBinary=b"\x00\x01")["ARN"]
    service.enable_rotation(arn)
    request = service.start(arn)
    with pytest.raises(RotationError):
        handler(request.event("createSecret"), LambdaContext())
