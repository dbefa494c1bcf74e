"""Non-ASCII passwords on MariaDB, judged by the real ``mariadb`` client: the function
logs in with what the client logs in with, and a password it sets logs in with both.

The server checks a login against the bytes a password was hashed from; the client
sends UTF-8 and ``PASSWORD(?)`` hashes the connection's (utf8mb4) bytes. PyMySQL, left
to itself, sends a password as Latin-1: refused for ``é``, a UnicodeEncodeError holding
the password for ``€``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common import redaction
from common.engine import Login
from common.errors import DatabaseLoginError, SecretFormatError
from common.tls import TlsPolicy
from rotators.mysql.engine import MySQLEngine
from tests.conftest import unique
from tests.helpers import store_secret, value
from tests.hostile_input import refused_at_create
from tests.mysql.conftest import maria_secret, mariadb_client

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService

NON_ASCII = {
    "latin-1": "Pässwörd-é-1x",
    "outside latin-1": "Pass€word-ß-2",
    "outside the BMP": "P😀ss-wörd-3",
}


def login(server: MariaDBServer, user: str, password: str, label: str = "AWSCURRENT") -> Login:
    return Login(server.host, server.port, None, user, password, TlsPolicy(True, server.ca_file), 5, 5, label)


def client_accepts(server: MariaDBServer, user: str, password: str) -> bool:
    """The mariadb client's verdict, checked to be a login verdict and not another failure."""
    result = mariadb_client(server, user, password, "SELECT CURRENT_USER()")
    assert result.returncode == 0 or "Access denied" in result.stderr, result.stderr
    return result.returncode == 0


def engine_accepts(server: MariaDBServer, user: str, password: str) -> bool:
    try:
        with MySQLEngine().connect(login(server, user, password)) as connection:
            MySQLEngine().verify_session(connection)
    except DatabaseLoginError:
        return False
    return True


@pytest.mark.parametrize("kind", NON_ASCII)
def test_a_non_ascii_current_password_rotates_and_a_non_ascii_new_one_logs_in(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    kind: str,
) -> None:
    user, password = unique("utf"), NON_ASCII[kind]
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    assert client_accepts(mariadb, user, password)
    assert engine_accepts(mariadb, user, password)

    # A rotation logs in with the non-ASCII password (createSecret, setSecret).
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, password))
    service.rotate(handler, arn)
    rotated = value(sm_client, arn, "AWSCURRENT")["password"]
    assert client_accepts(mariadb, user, rotated)
    assert not client_accepts(mariadb, user, password)

    # The engine sets a non-ASCII password (the hashed SET PASSWORD path): both clients
    # log in with it, and the server hashed exactly what the function computed.
    with MySQLEngine().connect(login(mariadb, user, rotated)) as connection:
        MySQLEngine().change_own_password(connection, login(mariadb, user, rotated), password + "-new")
    assert client_accepts(mariadb, user, password + "-new")
    assert engine_accepts(mariadb, user, password + "-new")
    assert not engine_accepts(mariadb, user, rotated)


def test_the_master_sets_non_ascii_passwords_for_both_users(mariadb: MariaDBServer) -> None:
    master, master_password = unique("admin"), NON_ASCII["outside latin-1"] + "-m"
    mariadb.create_master(master, master_password)
    user = unique("app")
    clone = user + "_clone"
    mariadb.create_database(user)
    mariadb.create_user(user, "Ascii-start-123", user)
    engine = MySQLEngine()
    with engine.connect(login(mariadb, master, master_password, "master")) as connection:
        # CREATE USER for the clone, then ALTER USER for the original, both by the master.
        engine.set_alternate_user(
            connection,
            original=user,
            clone=clone,
            user=clone,
            password=NON_ASCII["latin-1"],
            database=None,
            current=login(mariadb, user, "Ascii-start-123"),
        )
        engine.set_alternate_user(
            connection,
            original=user,
            clone=clone,
            user=user,
            password=NON_ASCII["outside the BMP"],
            database=None,
            current=login(mariadb, clone, NON_ASCII["latin-1"]),
        )
    for name, password in ((clone, NON_ASCII["latin-1"]), (user, NON_ASCII["outside the BMP"])):
        assert client_accepts(mariadb, name, password), name
        assert engine_accepts(mariadb, name, password), name


@pytest.fixture
def isolated_redaction() -> Iterator[None]:
    """The process's redaction registry as it was before the test: a value that breaks
    the redactor must not break every later test of the session."""
    saved = redaction._registered.copy()
    try:
        yield
    finally:
        redaction._registered.clear()
        redaction._registered.update(saved)
        redaction._pattern = None


@pytest.mark.usefixtures("isolated_redaction")
def test_a_password_no_server_can_receive_is_named_not_echoed(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A lone surrogate ("\ud800" in the JSON) has no UTF-8 form: the old code raised a
    # UnicodeEncodeError whose repr held the whole password.
    body = maria_secret(mariadb, unique("app"), "evil-pass-\ud800-word")
    refused_at_create(
        handler,
        service,
        sm_client,
        caplog,
        body,
        SecretFormatError,
        "AWSCURRENT secret's key 'password' is not valid Unicode text",
    )
