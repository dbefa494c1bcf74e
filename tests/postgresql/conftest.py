"""Fixtures for tests against the real throwaway PostgreSQL server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from rotators.postgresql.engine import PostgresEngine
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import handler_for, store_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


def can_login(postgres: PostgresServer, user: str, password: str, dbname: str = "postgres") -> bool:
    """Whether the server accepts these credentials over verified TLS."""
    return postgres.can_login(user, password, dbname)


@dataclass
class AppUser:
    """A database user of one test, its database and its secret."""

    name: str
    password: str
    dbname: str
    arn: str = ""
    secrets: list[str] = field(default_factory=list)


def postgres_handler(sm_client: SecretsManagerClient, postgres: PostgresServer) -> RotationFunction[Any]:
    """The PostgreSQL rotation function as a container builds it, trusting the server's CA."""
    return handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file)


def create_app_user(
    postgres: PostgresServer, database: str, sm_client: SecretsManagerClient, service: RotationService
) -> AppUser:
    """A user with a single-user secret (rotation enabled) that owns ``database``."""
    user = AppUser(unique("app"), new_password(), database)
    postgres.create_user(user.name, user.password)
    postgres.execute(f'ALTER DATABASE "{database}" OWNER TO "{user.name}"')
    body = pg_secret(postgres, user.name, user.password, database, dbClusterIdentifier="cluster-1", team="x")
    user.arn = store_secret(sm_client, service, user.name, body)
    return user


def create_master_secret(
    postgres: PostgresServer, sm_client: SecretsManagerClient, service: RotationService
) -> str:
    """A master secret (rotation off) for a non-superuser with CREATEROLE, as on Amazon RDS."""
    name, password = unique("admin"), new_password()
    postgres.create_master(name, password)
    return store_secret(
        sm_client, service, name, pg_secret(postgres, name, password, "postgres"), rotation=False
    )


@pytest.fixture
def handler(sm_client: SecretsManagerClient, postgres: PostgresServer) -> RotationFunction[Any]:
    return postgres_handler(sm_client, postgres)


@pytest.fixture
def app_user(
    postgres: PostgresServer, database: str, sm_client: SecretsManagerClient, service: RotationService
) -> AppUser:
    """A user with a single-user secret (rotation enabled) in a database of its own."""
    return create_app_user(postgres, database, sm_client, service)


@pytest.fixture
def master_arn(postgres: PostgresServer, sm_client: SecretsManagerClient, service: RotationService) -> str:
    """A master secret for a non-superuser with CREATEROLE, as on Amazon RDS."""
    return create_master_secret(postgres, sm_client, service)
