"""Attack round 7: keys the secret format does not own. DESIGN.md section 2 and the README
promise that "any other key in the secret must be preserved" and that the functions are a
drop-in for AWS's: a key another tool put in a PostgreSQL or MySQL secret must not stop
its rotation. ``user_arn`` became meaningful for the Redis function only (ElastiCache and
MemoryDB users); real PostgreSQL server and rotations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from rotators.postgresql.engine import PostgresEngine
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import handler_for, labels, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


def test_postgres_secret_with_an_iam_user_arn_key_rotates(
    postgres: PostgresServer,
    database: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Severity: medium (a secret that AWS's function rotates is refused by this one:
    not a drop-in; the same key stops appkit from reading the secret).

    Expected: the PostgreSQL function ignores ``user_arn`` (it keeps it) and rotates.
    Actual: SecretFormatError "key 'user_arn' must be an ElastiCache or MemoryDB user ARN"."""
    user, password = unique("keys"), new_password()
    postgres.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
    extra = {"user_arn": "arn:aws:iam::123456789012:user/app-deployer"}
    arn = store_secret(sm_client, service, user, pg_secret(postgres, user, password, database, **extra))
    handler = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file)
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["password"] != password
    assert current["user_arn"] == extra["user_arn"]
    assert "AWSPENDING" not in labels(sm_client, arn)


def test_postgres_pair_with_a_cache_user_arn_key_rotates(
    postgres: PostgresServer,
    database: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Severity: low (a clear refusal, but for the wrong engine's reason).

    Expected: the PostgreSQL function rotates the pair and keeps the key.
    Actual: SecretFormatError naming a managed user."""
    master, master_password = unique("master"), new_password()
    postgres.execute(f'CREATE ROLE "{master}" LOGIN CREATEROLE PASSWORD %s', (master_password,))
    master_arn = store_secret(
        sm_client, service, master, pg_secret(postgres, master, master_password, database), rotation=False
    )
    user, password = unique("pair"), new_password()
    postgres.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
    extra = {"user_arn": "arn:aws:elasticache:us-east-1:123456789012:user:app-cache", "masterarn": master_arn}
    arn = store_secret(sm_client, service, user, pg_secret(postgres, user, password, database, **extra))
    handler = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file)
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == user + "_clone"
    assert current["user_arn"] == extra["user_arn"]


@pytest.mark.parametrize("engine_name", ["postgres", "mysql"])
def test_a_database_secret_without_host_is_refused_even_with_a_user_arn(
    sm_client: SecretsManagerClient,
    service: RotationService,
    engine_name: str,
) -> None:
    """Severity: low on Lambda (nothing listens locally), medium wherever the function
    code runs beside a database (a container with a sidecar, a developer's machine with a
    socket that trusts local users): a secret meant for another server logs in to the
    local one, TLS silently off on PostgreSQL's socket.

    Expected: SecretFormatError naming 'host' at createSecret, no connection attempted.
    Actual: DatabaseConnectionError "cannot connect to :5432 ... socket
    /var/run/postgresql/.s.PGSQL.5432" (MySQL: 'localhost')."""
    from common.errors import SecretFormatError
    from devtools.service import LambdaContext
    from rotators.mysql.engine import MySQLEngine

    body = {
        "engine": engine_name,
        "user_arn": "arn:aws:elasticache:us-east-1:123456789012:user:app-cache",
        "username": "app",
        "password": new_password(),
    }
    arn = store_secret(sm_client, service, unique("nohost"), body)
    engine = PostgresEngine() if engine_name == "postgres" else MySQLEngine()
    handler = handler_for(engine, sm_client)
    request = service.start(arn)
    with pytest.raises(SecretFormatError, match="host"):
        handler(request.event("createSecret"), LambdaContext())


@pytest.mark.parametrize(
    "where",
    [
        {"user_arn": "arn:aws:elasticache:us-east-1:123456789012:user:app-cache"},
        {"host": " "},
        {"host": "\t"},
        {"host": "<the server's socket directory>"},
    ],
    ids=["user_arn-no-host", "blank-host", "tab-host", "socket-directory-host"],
)
def test_a_secret_without_host_cannot_take_over_a_local_role(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    where: dict[str, str],
) -> None:
    """Severity: medium (high wherever the function's code runs beside a PostgreSQL whose
    socket trusts local users, as the suite's own servers and Debian's packaged ``peer``
    set-ups for same-named OS users do; on Lambda nothing listens, and the step fails with
    a confusing "cannot connect to :5432" instead of naming the blank host). Also a silent
    TLS downgrade: libpq ignores sslmode on a Unix socket.

    Expected: SecretFormatError naming 'host'; the role's password unchanged.
    Actual: the rotation completes over the socket, the role gets a password the secret's
    writer now knows."""
    import os
    from pathlib import Path

    user, password = unique("local"), new_password()
    postgres.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
    # libpq's default socket directory (Debian's), leading to the suite's server socket,
    # which trusts local users as a packaged PostgreSQL does.
    default_dir = Path("/var/run/postgresql")
    if not os.access(default_dir.parent, os.W_OK):
        pytest.skip("needs root to place a socket link in libpq's default directory")
    default_dir.mkdir(exist_ok=True)
    link = default_dir / f".s.PGSQL.{postgres.port}"
    link.symlink_to(Path(str(postgres.root)) / f".s.PGSQL.{postgres.port}")
    body = {
        "engine": "postgres",
        "username": user,
        "password": "a-guess-" + new_password(),
        "dbname": "postgres",
        "port": postgres.port,
        **where,
    }
    if body.get("host") == "<the server's socket directory>":
        body["host"] = str(postgres.root)  # libpq: a host starting with '/' is a socket directory
    arn = store_secret(sm_client, service, unique("nohost"), body)
    handler = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file)
    try:
        service.rotate(handler, arn)
    except Exception:  # noqa: BLE001, S110 - a refusal is what is expected
        pass
    finally:
        link.unlink()
    assert postgres.can_login(user, password, "postgres"), "the role's password was changed"
