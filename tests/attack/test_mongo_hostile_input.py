"""Hostile host values against the MongoDB rotation function: an odd host gets the
project's error, and a host written as a URI cannot switch certificate verification off."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from common.errors import DatabaseConnectionError, RotationError
from devtools.service import LambdaContext
from rotators.mongodb.engine import MongoEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, labels, store_secret
from tests.hostile_input import refused_with_project_error
from tests.mongodb.test_mongodb import mongo_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.mongo_peer import MongoServer
    from devtools.service import RotationService


def new_user(mongo: MongoServer) -> tuple[str, str, str]:
    """A user with readWrite on a database of its own: (user, password, database)."""
    user, password, db = unique("user"), new_password(), unique("db")
    mongo.create_user_with_roles(user, password, db, [{"role": "readWrite", "db": db}])
    return user, password, db


@pytest.mark.parametrize("host_suffix", [":notaport", ":99999", ",127.0.0.2"])
def test_odd_host_gives_project_error(
    mongo: MongoServer, sm_client: SecretsManagerClient, service: RotationService, host_suffix: str
) -> None:
    """A host with a port that is not one, or a second host, is refused with the
    project's error (not a raw ValueError of PyMongo), and AWSCURRENT stays."""
    handler = handler_for(MongoEngine(), sm_client, DB_CA_BUNDLE=mongo.ca_file)
    user, password, db = new_user(mongo)
    body = mongo_secret(mongo, user, password, db) | {"host": mongo.host + host_suffix}
    arn = store_secret(sm_client, service, unique("oddhost"), body)
    before = labels(sm_client, arn)
    refused_with_project_error(handler, service, arn, password)
    assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]


def test_uri_host_cannot_switch_off_certificate_verification(
    mongo: MongoServer, sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """Plaintext or unverified TLS only when the secret says "ssl": false. The plain host
    is refused for its certificate (the system trust store does not trust the test CA);
    the same host as a URI carrying tlsInsecure=true is refused too."""
    handler = handler_for(MongoEngine(), sm_client)
    user, password, db = new_user(mongo)
    plain = store_secret(sm_client, service, unique("plain"), mongo_secret(mongo, user, password, db))
    request = service.start(plain)
    with pytest.raises(DatabaseConnectionError):
        handler(request.event("createSecret"), LambdaContext())
    body = mongo_secret(mongo, user, password, db) | {
        "host": f"mongodb://{mongo.host}:{mongo.port}/?tlsInsecure=true"
    }
    arn = store_secret(sm_client, service, unique("uri"), body)
    request = service.start(arn)
    with pytest.raises(RotationError):
        handler(request.event("createSecret"), LambdaContext())
