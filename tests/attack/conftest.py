"""Fixtures of the attack regression tests: the PostgreSQL function, user and master secret
(built as tests/postgresql builds them), and a redaction registry that no test leaks into
the next (a hostile password registered by one test must not shape another's logs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.postgresql.conftest import AppUser, create_app_user, create_master_secret, postgres_handler

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    from common import redaction

    saved = dict(redaction._registered)
    yield
    redaction._registered.clear()
    redaction._registered.update(saved)
    redaction._pattern = None


@pytest.fixture
def handler(sm_client: SecretsManagerClient, postgres: PostgresServer) -> RotationFunction[Any]:
    """The PostgreSQL rotation function, trusting the throwaway server's CA."""
    return postgres_handler(sm_client, postgres)


@pytest.fixture
def app_user(
    postgres: PostgresServer, database: str, sm_client: SecretsManagerClient, service: RotationService
) -> AppUser:
    """A PostgreSQL user with a single-user secret (rotation enabled), owning its database."""
    return create_app_user(postgres, database, sm_client, service)


@pytest.fixture
def master_arn(postgres: PostgresServer, sm_client: SecretsManagerClient, service: RotationService) -> str:
    """A PostgreSQL master secret for a CREATEROLE non-superuser, as on Amazon RDS."""
    return create_master_secret(postgres, sm_client, service)
