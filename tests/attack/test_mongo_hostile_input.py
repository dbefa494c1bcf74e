"""Hostile host values against the MongoDB rotation function."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import DatabaseConnectionError, RotationError
from devtools.service import LambdaContext
from rotators.mongodb.engine import MongoEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, labels, store_secret
from tests.mongodb.test_mongodb import mongo_secret


@pytest.mark.parametrize("host_suffix", [":notaport", ":99999", ",127.0.0.2"])
def test_odd_host_gives_project_error(mongo, sm_client, service, host_suffix) -> None:
    handler = handler_for(MongoEngine(), sm_client, DB_CA_BUNDLE=mongo.ca_file)
    user, password, db = unique("odd"), new_password(), unique("db")
    mongo.create_user_with_roles(user, password, db, [{"role": "readWrite", "db": db}])
    body = mongo_secret(mongo, user, password, db)
    body["host"] = mongo.host + host_suffix
    arn = store_secret(sm_client, service, unique("oddhost"), body)
    before = labels(sm_client, arn)
    request = service.start(arn)
    try:
        handler(request.event("createSecret"), LambdaContext())
    except RotationError:
        pass
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"raw {type(error).__module__}.{type(error).__name__} escaped: {error}")
    assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]


def test_uri_host_cannot_switch_off_certificate_verification(mongo, sm_client, service) -> None:
    """Plaintext or unverified TLS only when the secret says "ssl": false. A host written as
    a URI carries its own options; tlsInsecure=true must not get past verification."""
    handler = handler_for(MongoEngine(), sm_client)  # system trust store: does NOT trust the test CA
    user, password, db = unique("uri"), new_password(), unique("db")
    mongo.create_user_with_roles(user, password, db, [{"role": "readWrite", "db": db}])
    # Baseline: the plain host is refused for its untrusted certificate.
    plain = store_secret(sm_client, service, unique("plain"), mongo_secret(mongo, user, password, db))
    request = service.start(plain)
    with pytest.raises(DatabaseConnectionError):
        handler(request.event("createSecret"), LambdaContext())
    body = mongo_secret(mongo, user, password, db)
    body["host"] = f"mongodb://{mongo.host}:{mongo.port}/?tlsInsecure=true"
    arn = store_secret(sm_client, service, unique("uri"), body)
    request = service.start(arn)
    try:
        handler(request.event("createSecret"), LambdaContext())
    except RotationError:
        return  # refused: held
    pytest.fail("createSecret logged in over TLS whose certificate was not verified (host URI option)")
