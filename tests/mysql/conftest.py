"""Fixtures and helpers for tests against the real throwaway MariaDB server."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from common.engine import Login
from common.tls import TlsPolicy
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


def maria_login(server: MariaDBServer, user: str, password: str, label: str) -> Login:
    """What the engine is given to log in as ``user`` (verified TLS, the server's CA)."""
    return Login(
        server.host, server.port, None, user, password, TlsPolicy(True, server.ca_file), 5, 30, label
    )


def maria_master(server: MariaDBServer) -> Login:
    """The server's administrator as the engine's master login."""
    return maria_login(server, server.admin_user, server.admin_password, "master")


def run_many(server: MariaDBServer, statements: list[str]) -> None:
    """Setup statements on one admin session (thousands of TLS logins would be slow)."""
    connection = server.connect_as(server.admin_user, server.admin_password)
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def mirror_clone(server: MariaDBServer, user: str, password: str, engine: MySQLEngine | None = None) -> None:
    """Mirror ``user`` onto ``<user>_clone`` once, as setSecret does: on a new session of
    the server's administrator, with a new password for the clone."""
    engine = engine or MySQLEngine()
    with engine.connect(maria_master(server)) as master:
        engine.set_alternate_user(
            master,
            original=user,
            clone=user + "_clone",
            user=user + "_clone",
            password=new_password(),
            database=None,
            current=maria_login(server, user, password, "AWSCURRENT"),
        )


def mirror_once(server: MariaDBServer, setup: list[str], user: str, password: str) -> None:
    """Run ``setup``, then mirror ``user`` onto ``<user>_clone`` once."""
    run_many(server, setup)
    mirror_clone(server, user, password)


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
