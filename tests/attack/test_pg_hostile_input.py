"""Hostile secret values against the PostgreSQL rotation function: a lone surrogate must not
poison the process's logging, NUL bytes get the project's error, and '%' in a user name
neither breaks a rotation nor turns the master user against another role."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pytest
from psycopg2 import sql

from common.errors import RotationError
from common.observability import logger as step_logger
from devtools.service import LambdaContext
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import labels, store_secret, value
from tests.hostile_input import NUL_VALUES, refused_with_project_error
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.postgresql.conftest import AppUser


def create_role(postgres: PostgresServer, name: str, password: str) -> None:
    postgres.execute(
        sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password))
    )


def test_lone_surrogate_password_does_not_poison_logging(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    app_user: AppUser,
) -> None:
    """A JSON secret may hold a lone surrogate (valid JSON: "\\ud800"), and its password is
    registered for redaction. createSecret fails with the project's error; afterwards, in
    the same warm container, a healthy secret still rotates at Lambda's default log level
    and an unrelated logger still logs."""
    body = json.dumps(pg_secret(postgres, "u", "\ud800abcdefgh", database))
    arn = store_secret(sm_client, service, unique("surrogate"), body)
    request = service.start(arn)
    problems: list[str] = []
    try:
        handler(request.event("createSecret"), LambdaContext("f"))
    except RotationError:
        pass
    except Exception as error:  # noqa: BLE001 - any other exception is the defect under test
        problems.append(f"raw {type(error).__name__} escaped createSecret")
    level = step_logger.log_level
    step_logger.setLevel(logging.INFO)  # Lambda's default (POWERTOOLS_LOG_LEVEL=INFO)
    try:
        service.rotate(handler, app_user.arn)
    except Exception as error:  # noqa: BLE001
        problems.append(f"a healthy secret's rotation then failed with {type(error).__name__}")
    finally:
        step_logger.setLevel(level)
    try:
        logging.getLogger("some.app").warning("hello")
    except Exception as error:  # noqa: BLE001
        problems.append(f"an unrelated logger then raised {type(error).__name__}")
    assert not problems, problems
    current = value(sm_client, app_user.arn, "AWSCURRENT")
    assert can_login(postgres, current["username"], current["password"], app_user.dbname)


@pytest.mark.parametrize(("key", "hostile"), NUL_VALUES)
def test_nul_byte_in_secret_gives_project_error(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    key: str,
    hostile: str,
) -> None:
    """A NUL byte in any login key is refused with the project's error, without the text
    after the NUL, and AWSCURRENT stays."""
    body = pg_secret(postgres, "nobody", new_password(), database) | {key: hostile}
    arn = store_secret(sm_client, service, unique("nul"), body)
    before = labels(sm_client, arn)
    refused_with_project_error(handler, service, arn, "evil")
    assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]


@pytest.mark.parametrize("strategy", ["single", "alternating"])
@pytest.mark.parametrize("name", ["app%s", "app%d_%(x)s", "pct%%user", "100%"])
def test_percent_in_user_name_rotates(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
    strategy: str,
    name: str,
) -> None:
    """A user name with '%' (which psycopg2 would read as a placeholder) rotates twice with
    either strategy, and AWSCURRENT then logs in."""
    user, password = f"{name}{unique('')}", new_password()
    create_role(postgres, user, password)
    extra = {"masterarn": master_arn} if strategy == "alternating" else {}
    arn = store_secret(
        sm_client, service, unique("pct"), pg_secret(postgres, user, password, database, **extra)
    )
    for _ in range(2):
        service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert can_login(postgres, current["username"], current["password"], database)


def test_double_percent_user_name_makes_master_alter_no_other_role(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
) -> None:
    """The confused deputy: had psycopg2 %-formatted the composed statements, quoted
    identifiers included, the master's statements for a secret whose user is "v%%c" would
    hit the role "v%c" (someone else). Its clone must neither take the pending password
    (which the secret's reader knows) nor have its settings changed."""
    tag = unique("")
    attacker, victim = f"v%%c{tag}", f"v%c{tag}"
    for name in (attacker, attacker + "_clone", victim, victim + "_clone"):
        create_role(postgres, name, new_password())
    attacker_password = new_password()  # the attacker knows its own password
    postgres.execute(
        sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
            sql.Identifier(attacker), sql.Literal(attacker_password)
        )
    )
    body = pg_secret(postgres, attacker, attacker_password, database, masterarn=master_arn)
    arn = store_secret(sm_client, service, unique("deputy"), body)
    request = service.start(arn)
    for step in ("createSecret", "setSecret"):
        try:
            handler(request.event(step), LambdaContext("f"))
        except RotationError:
            break
    pending = json.loads(sm_client.get_secret_value(SecretId=arn, VersionId=request.token)["SecretString"])
    assert not can_login(postgres, victim + "_clone", pending["password"], database), (
        f"the master user set role {victim + '_clone'!r} (not named by the secret) to the pending password"
    )
    settings = postgres.execute("SELECT rolconfig FROM pg_roles WHERE rolname = %s", (victim + "_clone",))
    assert settings == [(None,)], f"the victim's clone's settings changed: {settings}"
