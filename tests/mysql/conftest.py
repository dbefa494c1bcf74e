"""Fixtures for tests against the real throwaway MariaDB server."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from rotators.mysql.engine import MySQLEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, store_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


def maria_secret(server: MariaDBServer, user: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "engine": "mariadb",
        "host": server.host,
        "port": server.port,
        "username": user,
        "password": password,
        **extra,
    }


def mariadb_client(
    server: MariaDBServer, user: str, password: str, query: str
) -> subprocess.CompletedProcess[str]:
    """The real command-line client, TLS verified against the server's CA."""
    return subprocess.run(
        [
            "mariadb",
            "--no-defaults",
            "-h",
            server.host,
            "-P",
            str(server.port),
            "-u",
            user,
            f"--ssl-ca={server.ca_file}",
            "--ssl-verify-server-cert",
            "-N",
            "-e",
            query,
        ],
        env={**os.environ, "MYSQL_PWD": password},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def handler(sm_client: SecretsManagerClient, mariadb: MariaDBServer) -> RotationFunction[Any]:
    return handler_for(MySQLEngine(), sm_client, DB_CA_BUNDLE=mariadb.ca_file)


@pytest.fixture
def master_arn(mariadb: MariaDBServer, sm_client: SecretsManagerClient, service: RotationService) -> str:
    """Like an RDS master user: every privilege, grantable."""
    user, password = unique("admin"), new_password()
    mariadb.create_master(user, password)
    return store_secret(sm_client, service, user, maria_secret(mariadb, user, password), rotation=False)
