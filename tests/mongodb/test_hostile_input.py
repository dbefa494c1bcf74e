"""Hostile input and failures on MongoDB: a host PyMongo would read as a URI or cannot
parse, a database name it cannot use, and open() closing its client when the command
after connecting fails (NUL bytes and CA bundles for every engine:
tests/scenarios/test_hostile_input.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from common.engine import Login
from common.errors import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseOperationError,
    RotationError,
    SecretFormatError,
)
from common.tls import TlsPolicy
from devtools.mongo_peer import MongoPeer
from rotators.mongodb.engine import MongoEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for
from tests.hostile_input import refused_at_create
from tests.mongodb.test_mongodb import mongo_secret

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mongo_peer import MongoServer
    from devtools.service import RotationService


@pytest.fixture
def handler(sm_client: SecretsManagerClient, mongo: MongoServer) -> RotationFunction[Any]:
    return handler_for(MongoEngine(), sm_client, DB_CA_BUNDLE=mongo.ca_file)


@pytest.fixture
def app_user(mongo: MongoServer) -> tuple[str, str, str]:
    user, password, db = unique("app"), new_password(), unique("db")
    mongo.create_user(user, password, db)
    return user, password, db


@pytest.fixture
def peer() -> Iterator[MongoPeer]:
    """A peer of this test's own, whose commands it may make fail."""
    server = MongoPeer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("key", "hostile", "error", "message"),
    [
        # PyMongo would read it as a URI and apply its options: TLS checks off.
        (
            "host",
            "mongodb://127.0.0.1/?tlsInsecure=true&evil=1",
            SecretFormatError,
            "key 'host' is a path or URI",
        ),
        # PyMongo would read it as a Unix socket file.
        ("host", "mongodb-27017.sock", SecretFormatError, "key 'host' is a path or URI"),
        # PyMongo would take what follows ':' for a port (refused by the host rule).
        (
            "host",
            "127.0.0.1:evil",
            SecretFormatError,
            "key 'host' has a ':' but is not an IPv6 address",
        ),
        (
            "dbname",
            "shop.orders",
            ConfigurationError,
            "key 'dbname' is not a MongoDB database name: database names cannot contain the character '.'",
        ),
    ],
)
def test_what_pymongo_would_misread_is_a_configuration_error(
    mongo: MongoServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    caplog: pytest.LogCaptureFixture,
    app_user: tuple[str, str, str],
    key: str,
    hostile: str,
    error: type[RotationError],
    message: str,
) -> None:
    user, password, db = app_user
    body = mongo_secret(mongo, user, password, db) | {key: hostile}
    refused_at_create(handler, service, sm_client, caplog, body, error, message, hidden=password)
    assert mongo.can_login(user, password, db)


def wait_for_connections(peer: MongoPeer, expected: int) -> int:
    deadline = time.monotonic() + 5
    while peer.open_connections != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return peer.open_connections


def test_open_closes_its_client_when_the_command_after_connecting_fails(peer: MongoPeer) -> None:
    user, password = unique("app"), new_password()
    peer.create_user(user, password, "admin")
    login = Login(
        peer.host, peer.port, "admin", user, password, TlsPolicy(True, peer.ca_file), 5, 5, "AWSCURRENT"
    )
    with MongoEngine().connect(login):
        assert peer.open_connections > 0  # the peer sees a client's connections
    assert wait_for_connections(peer, 0) == 0

    peer.failing_commands["ping"] = 8000
    with pytest.raises(DatabaseConnectionError, match=r"\(AWSCURRENT\): ping failed on purpose"):
        MongoEngine().open(login)
    assert wait_for_connections(peer, 0) == 0


def test_a_failing_command_reports_the_servers_reason(peer: MongoPeer) -> None:
    master, master_password = unique("admin"), new_password()
    peer.create_master(master, master_password)
    login = Login(
        peer.host, peer.port, "admin", master, master_password, TlsPolicy(True, peer.ca_file), 5, 5, "master"
    )
    engine = MongoEngine()
    with engine.connect(login) as connection:
        peer.failing_commands["usersinfo"] = 8000
        with pytest.raises(DatabaseOperationError) as raised:
            engine.set_alternate_user(
                connection,
                original="app",
                clone="app_clone",
                user="app_clone",
                password="Pw-1234567",
                database="db",
                current=login,
            )
    assert str(raised.value) == "could not look up 'app': 8000: usersInfo failed on purpose"
