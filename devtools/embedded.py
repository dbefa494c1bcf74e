"""The embedded default: a throwaway PostgreSQL and a local Secrets Manager endpoint.

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

from devtools.ports import free_port
from devtools.postgres import PostgresServer
from devtools.service import RotationService, behave_like_aws

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

REGION = "us-east-1"


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


@dataclass
class Embedded:
    """A running embedded environment; ``env`` is what a function process needs."""

    server: PostgresServer
    endpoint: str
    client: SecretsManagerClient
    service: RotationService
    env: dict[str, str]

    def user_secret(self, user: str, strategy: str = "single", dbname: str = "postgres") -> str:
        """Create a database user with a random password and its secret (rotation
        enabled); for ``alternating`` also a master user with CREATEROLE and its secret."""
        password = secrets.token_urlsafe(24)
        self.server.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
        if dbname != "postgres":
            self.server.execute(f'CREATE DATABASE "{dbname}" OWNER "{user}"')
        body: dict[str, Any] = {
            "engine": "postgres",
            "host": self.server.host,
            "port": self.server.port,
            "username": user,
            "password": password,
            "dbname": dbname,
        }
        if strategy == "alternating":
            admin, admin_password = f"{user}_admin", secrets.token_urlsafe(24)
            self.server.execute(f'CREATE ROLE "{admin}" LOGIN CREATEROLE PASSWORD %s', (admin_password,))
            master = {**body, "username": admin, "password": admin_password, "dbname": "postgres"}
            body["masterarn"] = self.client.create_secret(
                Name=f"{user}/master", SecretString=json.dumps(master)
            )["ARN"]
        arn = self.client.create_secret(Name=f"{user}/credentials", SecretString=json.dumps(body))["ARN"]
        self.service.enable_rotation(arn)
        return arn

    def current(self, arn: str, label: str = "AWSCURRENT") -> dict[str, Any]:
        response = self.client.get_secret_value(SecretId=arn, VersionStage=label)
        result: dict[str, Any] = json.loads(response["SecretString"])
        return result


@contextmanager
def embedded() -> Iterator[Embedded]:
    """Start both servers and point this process's AWS settings at the local endpoint."""
    import boto3

    server = PostgresServer().start()
    try:
        with local_secrets_manager() as endpoint:
            env = {
                "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "DB_CA_BUNDLE": server.ca_file,
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            }
            os.environ.update(env)
            client = boto3.client("secretsmanager", region_name=REGION)
            yield Embedded(server, endpoint, client, RotationService(region=REGION), env)
    finally:
        server.stop()
