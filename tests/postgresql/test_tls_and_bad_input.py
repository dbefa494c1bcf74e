"""TLS is verified and never downgraded; bad input is named and loses nothing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from common.engine import Login
from common.errors import (
    DatabaseConnectionError,
    DatabaseLoginError,
    SecretFormatError,
    SecretMismatchError,
    TlsConfigurationError,
)
from common.tls import TlsPolicy
from devtools.certs import CertificateAuthority
from devtools.service import LambdaContext
from rotators.postgresql.engine import PostgresEngine
from tests.conftest import pg_secret
from tests.helpers import store_secret, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.postgresql.conftest import AppUser


def login(postgres: PostgresServer, user: AppUser, tls: TlsPolicy, host: str | None = None) -> Login:
    return Login(
        host=host or postgres.host,
        port=postgres.port,
        dbname=user.dbname,
        username=user.name,
        password=user.password,
        tls=tls,
        connect_timeout=5,
        statement_timeout=5,
        label="AWSCURRENT",
    )


def ssl_in_use(postgres: PostgresServer, user: AppUser, tls: TlsPolicy) -> bool:
    with PostgresEngine().connect(login(postgres, user, tls)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        row = cursor.fetchone()
        assert row is not None
        return bool(row[0])


def test_tls_by_default_and_plaintext_only_when_asked(postgres: PostgresServer, app_user: AppUser) -> None:
    assert ssl_in_use(postgres, app_user, TlsPolicy(enabled=True, ca_file=postgres.ca_file))
    assert not ssl_in_use(postgres, app_user, TlsPolicy(enabled=False))


def test_wrong_ca_is_refused(postgres: PostgresServer, app_user: AppUser, tmp_path: Path) -> None:
    other = CertificateAuthority.create(tmp_path, "other-ca")
    tls = TlsPolicy(enabled=True, ca_file=str(other.cert_path))
    with pytest.raises(DatabaseConnectionError, match="certificate verify failed"):
        with PostgresEngine().connect(login(postgres, app_user, tls)):
            pass


def test_system_trust_store_does_not_trust_a_private_ca(postgres: PostgresServer, app_user: AppUser) -> None:
    with pytest.raises(DatabaseConnectionError, match="certificate verify failed"):
        with PostgresEngine().connect(login(postgres, app_user, TlsPolicy(enabled=True))):
            pass


def test_certificate_for_another_name_is_refused(postgres: PostgresServer, app_user: AppUser) -> None:
    tls = TlsPolicy(enabled=True, ca_file=postgres.ca_file)
    with pytest.raises(DatabaseConnectionError, match='does not match host name "localhost"'):
        with PostgresEngine().connect(login(postgres, app_user, tls, host="localhost")):
            pass


def test_refused_password_is_a_login_error(postgres: PostgresServer, app_user: AppUser) -> None:
    wrong = Login(
        **{**login(postgres, app_user, TlsPolicy(True, postgres.ca_file)).__dict__, "password": "nope-123456"}
    )
    with (
        pytest.raises(
            DatabaseLoginError, match=f"refused the AWSCURRENT credentials for user '{app_user.name}'"
        ),
        PostgresEngine().connect(wrong),
    ):
        pass


def test_missing_ca_bundle_is_named(postgres: PostgresServer, app_user: AppUser) -> None:
    secret_body = pg_secret(
        postgres, app_user.name, app_user.password, app_user.dbname, ca_bundle="/no/such.pem"
    )
    from common.secret import DatabaseSecret

    secret = DatabaseSecret.from_dict(secret_body, "AWSCURRENT")
    with pytest.raises(TlsConfigurationError, match="'/no/such.pem' named by the secret's 'ca_bundle' key"):
        TlsPolicy.for_secret(secret, None)
    plain = DatabaseSecret.from_dict({**secret_body, "ca_bundle": None}, "AWSCURRENT")
    with pytest.raises(TlsConfigurationError, match="named by DB_CA_BUNDLE"):
        TlsPolicy.for_secret(plain, "/no/other.pem")


def test_secret_ca_bundle_key_wins_over_environment(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    app_user: AppUser,
    tmp_path: Path,
) -> None:
    from tests.helpers import handler_for

    other = CertificateAuthority.create(tmp_path, "other-ca")
    handler = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=str(other.cert_path))
    body = pg_secret(postgres, app_user.name, app_user.password, app_user.dbname, ca_bundle=postgres.ca_file)
    arn = store_secret(sm_client, service, "own-ca", body)
    service.rotate(handler, arn)
    assert can_login(
        postgres, app_user.name, value(sm_client, arn, "AWSCURRENT")["password"], app_user.dbname
    )


@pytest.mark.parametrize(
    ("current_text", "error", "message"),
    [
        ("not json at all", SecretFormatError, "is not valid JSON"),
        (json.dumps(["a", "list"]), SecretFormatError, "is not a JSON object"),
        (
            '{"engine": "postgres", "username": "u", "password": "p-123456"}',
            SecretFormatError,
            "lacks required key 'host'",
        ),
        (
            '{"engine": "mysql", "host": "h", "username": "u", "password": "p-123456"}',
            SecretFormatError,
            "engine 'mysql'",
        ),
    ],
)
def test_bad_current_secret_is_named_and_nothing_is_written(
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    current_text: str,
    error: type[Exception],
    message: str,
) -> None:
    arn = store_secret(sm_client, service, "bad", current_text)
    request = service.start(arn)
    with pytest.raises(error, match=message) as raised:
        handler(request.event("createSecret"), LambdaContext())
    assert "p-123456" not in str(raised.value)
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": "localhost"}, "AWSPENDING version is for localhost"),
        ({"username": "postgres"}, "AWSPENDING version is for user 'postgres'"),
    ],
)
def test_pending_for_another_host_or_user_is_refused(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    app_user: AppUser,
    change: dict[str, str],
    message: str,
) -> None:
    request = service.start(app_user.arn)
    pending = value(sm_client, app_user.arn, "AWSCURRENT") | {"password": "Pending-pass-9"} | change
    sm_client.put_secret_value(
        SecretId=app_user.arn,
        ClientRequestToken=request.token,
        SecretString=json.dumps(pending),
        VersionStages=["AWSPENDING"],
    )
    with pytest.raises(SecretMismatchError, match=message) as raised:
        handler(request.event("setSecret"), LambdaContext())
    assert "Pending-pass-9" not in str(raised.value)
    assert can_login(postgres, app_user.name, app_user.password, app_user.dbname)
    assert not can_login(postgres, "postgres", "Pending-pass-9")
