"""Fixtures of the operator tools' tests: the scenarios' engine harnesses (every engine on
its real throwaway server), and what proves a preflight wrote nothing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3

from devtools.mariadb import MariaDBServer
from devtools.mongo_peer import MongoPeer
from devtools.mongod import MongodServer
from tests.conftest import REGION
from tests.scenarios.conftest import account, handler, harness, master_arn, strategy_arn

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationRequest, RotationService
    from tests.engines import Harness

__all__ = [
    "abandoned",
    "account",
    "database_state",
    "handler",
    "harness",
    "master_arn",
    "secret_state",
    "strategy_arn",
]


def abandoned(
    handler: RotationFunction[Any],
    service: RotationService,
    arn: str,
    *steps: str,
    drop_pending: bool = False,
) -> RotationRequest:
    """A rotation that ran ``steps`` and stopped; with ``drop_pending`` an operator then
    removed its AWSPENDING label (as AWS's CancelRotateSecret page says to)."""
    request = service.start(arn)
    for step in steps:
        handler(request.event(step), None)
    if drop_pending:
        client = boto3.client("secretsmanager", region_name=REGION)
        client.update_secret_version_stage(
            SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=request.token
        )
    return request


def database_state(harness: Harness) -> Any:
    """Every user, password hash, role membership and grant on the harness's server."""
    server = harness.server
    if isinstance(server, MariaDBServer):
        return [
            server.execute(f"SELECT * FROM mysql.{table} ORDER BY 1, 2")
            for table in ("global_priv", "db", "tables_priv", "roles_mapping")
        ]
    if isinstance(server, MongoPeer):
        with server._lock:
            return sorted(
                (key, json.dumps(user.roles, sort_keys=True), repr(user.auth_info))
                for key, user in server.users.items()
            )
    if isinstance(server, MongodServer):
        return server._admin.admin.command("usersInfo", {"forAllDBs": True}, showCredentials=True)["users"]
    return [
        server.execute(query)  # type: ignore[union-attr]
        for query in (
            "SELECT rolname, rolpassword, rolsuper, rolcreaterole, rolcanlogin FROM pg_authid ORDER BY 1",
            "SELECT setrole, setdatabase, setconfig::text FROM pg_db_role_setting ORDER BY 1, 2",
            "SELECT roleid, member, admin_option FROM pg_auth_members ORDER BY 1, 2",
            "SELECT datname, datacl::text FROM pg_database ORDER BY 1",
            "SELECT defaclrole, defaclacl::text FROM pg_default_acl ORDER BY 1",
        )
    ]


def secret_state(client: SecretsManagerClient, arn: str) -> Any:
    """Every version of a secret (labelled or not), its labels and its value."""
    versions = client.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
    state = []
    for version in sorted(versions, key=lambda v: v["VersionId"]):
        try:
            value = client.get_secret_value(SecretId=arn, VersionId=version["VersionId"]).get("SecretString")
        except client.exceptions.ResourceNotFoundException:
            value = None
        state.append((version["VersionId"], sorted(version.get("VersionStages", [])), value))
    return state
