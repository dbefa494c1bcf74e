"""The embedded default: a throwaway database server (PostgreSQL by default, or MariaDB)
and a local Secrets Manager endpoint.

Shared by the local runner and the benchmark, so both rotate the same kind of secret.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devtools.mariadb import MariaDBServer
from devtools.mongo_peer import MongoPeer
from devtools.ports import free_port
from devtools.postgres import PostgresServer
from devtools.redshift import RedshiftStandIn
from devtools.service import RotationService, behave_like_aws

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

REGION = "us-east-1"
#: engine name -> (server class, handler module).
ENGINES: dict[
    str, tuple[type[PostgresServer] | type[MariaDBServer] | type[MongoPeer] | type[RedshiftStandIn], str]
] = {
    "postgresql": (PostgresServer, "rotators.postgresql.app"),
    "mariadb": (MariaDBServer, "rotators.mysql.app"),
    "mongodb": (MongoPeer, "rotators.mongodb.app"),
    "redshift": (RedshiftStandIn, "rotators.redshift.app"),
}


@contextmanager
def local_secrets_manager() -> Iterator[str]:
    """moto's server in this process on a free loopback port; yields its URL."""
    from moto.server import ThreadedMotoServer

    behave_like_aws()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def function_environment(endpoint: str, ca_file: str) -> dict[str, str]:
    """What a function process needs to use the local endpoint and trust the server."""
    return {
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "DB_CA_BUNDLE": ca_file,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
    }


@dataclass
class Embedded:
    """A running embedded environment; ``env`` is what a function process needs."""

    server: PostgresServer | MariaDBServer | MongoPeer | RedshiftStandIn
    handler_module: str
    endpoint: str
    client: SecretsManagerClient
    service: RotationService
    env: dict[str, str]

    def user_secret(self, user: str, strategy: str = "single", dbname: str | None = None) -> str:
        """Create a database user with a random password (owning ``dbname`` when given) and
        its secret, rotation enabled; for ``alternating`` also a master user and its secret."""
        password = secrets.token_urlsafe(24)
        if dbname is not None:
            self.server.create_database(dbname)
        self.server.create_user(user, password, dbname)
        body: dict[str, Any] = {
            "engine": self.server.engine_key,
            "host": self.server.host,
            "port": self.server.port,
            "username": user,
            "password": password,
        }
        if dbname is not None:
            body["dbname"] = dbname
        if strategy == "alternating":
            admin, admin_password = f"{user}_admin", secrets.token_urlsafe(24)
            self.server.create_master(admin, admin_password)
            master = {
                **body,
                "username": admin,
                "password": admin_password,
                "dbname": self.server.admin_database,
            }
            body["masterarn"] = self.client.create_secret(
                Name=f"{self.server.engine_key}/{user}/master", SecretString=json.dumps(master)
            )["ARN"]
        arn = self.client.create_secret(
            Name=f"{self.server.engine_key}/{user}/credentials", SecretString=json.dumps(body)
        )["ARN"]
        self.service.enable_rotation(arn)
        return arn

    def current(self, arn: str, label: str = "AWSCURRENT") -> dict[str, Any]:
        response = self.client.get_secret_value(SecretId=arn, VersionStage=label)
        result: dict[str, Any] = json.loads(response["SecretString"])
        return result


@contextmanager
def embedded(engine: str = "postgresql") -> Iterator[Embedded]:
    """Start both servers and point this process's AWS settings at the local endpoint."""
    import boto3

    server_class, handler_module = ENGINES[engine]
    server = server_class().start()
    try:
        with local_secrets_manager() as endpoint:
            env = function_environment(endpoint, server.ca_file)
            os.environ.update(env)
            client = boto3.client("secretsmanager", region_name=REGION)
            yield Embedded(server, handler_module, endpoint, client, RotationService(region=REGION), env)
    finally:
        server.stop()
