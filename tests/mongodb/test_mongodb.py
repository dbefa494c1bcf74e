"""MongoDB-specific behaviour: changeOwnPassword, roles in the right authentication
database, DocumentDB's connection options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.engine import Login
from common.errors import DatabaseOperationError
from common.tls import TlsPolicy
from devtools.service import LambdaContext
from rotators.mongodb.engine import MongoEngine, client_options, is_documentdb
from tests.conftest import new_password, unique
from tests.helpers import handler_for, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mongo_peer import MongoServer
    from devtools.service import RotationService


def mongo_secret(server: MongoServer, user: str, password: str, dbname: str, **extra: Any) -> dict[str, Any]:
    return {
        "engine": "mongo",
        "host": server.host,
        "port": server.port,
        "username": user,
        "password": password,
        "dbname": dbname,
        **extra,
    }


def roles(server: MongoServer, db: str, user: str) -> set[tuple[str, str]] | None:
    return server.roles_of(user, db)


@pytest.fixture
def handler(sm_client: SecretsManagerClient, mongo: MongoServer) -> RotationFunction[Any]:
    return handler_for(MongoEngine(), sm_client, DB_CA_BUNDLE=mongo.ca_file)


def test_single_user_without_change_own_password_is_told_so(
    mongo: MongoServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    user, password, db = unique("plain"), new_password(), unique("db")
    mongo.create_user_with_roles(user, password, db, [{"role": "readWrite", "db": db}])
    arn = store_secret(sm_client, service, user, mongo_secret(mongo, user, password, db))
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(DatabaseOperationError, match="needs the changeOwnPassword action") as raised:
        handler(request.event("setSecret"), LambdaContext())
    assert password not in str(raised.value)
    assert mongo.can_login(user, password, db)


def test_alternating_users_keep_roles_in_line_in_their_authentication_database(
    mongo: MongoServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    master, master_password = unique("admin"), new_password()
    mongo.create_master(master, master_password)
    master_arn = store_secret(
        sm_client, service, master, mongo_secret(mongo, master, master_password, "admin"), rotation=False
    )
    user, password, db = unique("app"), new_password(), unique("shop")
    mongo.create_user(user, password, db)
    arn = store_secret(
        sm_client, service, user, mongo_secret(mongo, user, password, db, masterarn=master_arn)
    )
    clone = user + "_clone"

    service.rotate(handler, arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == clone
    assert roles(mongo, db, clone) is not None and roles(mongo, "admin", clone) is None
    assert roles(mongo, db, clone) == roles(mongo, db, user)

    # A role given to the original after the first rotation reaches the clone at the
    # next rotation, although the clone is then the current user and not rotated.
    mongo.grant_role(user, db, "dbAdmin", db)
    service.rotate(handler, arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == user
    assert roles(mongo, db, clone) == roles(mongo, db, user)
    assert ("dbAdmin", db) in (roles(mongo, db, clone) or set())
    assert mongo.can_login(user, value(sm_client, arn, "AWSCURRENT")["password"], db)
    assert mongo.can_login(clone, value(sm_client, arn, "AWSPREVIOUS")["password"], db)


@pytest.mark.parametrize(
    ("host", "tls", "documentdb"),
    [
        ("docs.cluster-abc.eu-west-1.docdb.amazonaws.com", True, True),
        ("mongo.internal", True, False),
        ("mongo.internal", False, False),
    ],
)
def test_connection_options(host: str, tls: bool, documentdb: bool, tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("placeholder")
    login = Login(
        host,
        27017,
        "admin",
        "app",
        "pw-123456",
        TlsPolicy(tls, str(bundle) if tls else None),
        5,
        30,
        "AWSCURRENT",
    )
    options = client_options(login)
    assert is_documentdb(host) is documentdb
    # DocumentDB needs TLS and no retryable writes; rotation never needs them anyway.
    assert options["retryWrites"] is False and options["directConnection"] is True
    assert options["tls"] is tls and (options.get("tlsCAFile") == str(bundle)) is tls
    assert (options["serverSelectionTimeoutMS"], options["socketTimeoutMS"]) == (5000, 30000)
    assert options["authSource"] == "admin"


@pytest.mark.parametrize("host", ["::1", "[::1]", "fe80::1%eth0", "fe80::1%25eth0", "mongo.internal"])
def test_the_client_connects_to_the_address_the_secret_names(host: str) -> None:
    """PyMongo's own reading of the host option (no server): an IPv6 address is
    bracketed, its zone kept as written (PyMongo decodes '%25' in brackets)."""
    from pymongo.uri_parser import split_hosts

    login = Login(host, 27017, "admin", "app", "pw-123456", TlsPolicy(False, None), 5, 30, "AWSCURRENT")
    assert split_hosts(client_options(login)["host"], 27017) == [(host.strip("[]").lower(), 27017)]
