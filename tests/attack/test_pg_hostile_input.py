"""Hostile secret values against the PostgreSQL rotation function (promise 2 and 3)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from common.errors import RotationError
from devtools.service import LambdaContext
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import labels, store_secret, value
from tests.postgresql.conftest import can_login


def _rotate_expect_rotation_error(service, handler, arn):
    request = service.start(arn)
    try:
        handler(request.event("createSecret"), LambdaContext("f"))
    except RotationError as error:
        return error
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"raw {type(error).__module__}.{type(error).__name__} escaped: {error}")
    pytest.fail("createSecret accepted a hostile secret")


def test_lone_surrogate_password_poisons_logging_for_the_container(
    postgres, sm_client, service, handler, database, app_user
) -> None:
    """A JSON secret may hold a lone surrogate (valid JSON: "\\ud800"). The password is
    registered for redaction; building the mask encodes it as UTF-8 and raises, so every
    later log record of the process (any logger) raises UnicodeEncodeError."""
    body = '{"engine":"postgres","host":"%s","port":%d,"username":"u","password":"\\ud800abcdefgh","dbname":"%s"}' % (
        postgres.host, postgres.port, database)
    arn = store_secret(sm_client, service, unique("surrogate"), body)
    request = service.start(arn)
    escaped = None
    try:
        handler(request.event("createSecret"), LambdaContext("f"))
    except RotationError:
        pass
    except Exception as error:  # noqa: BLE001
        escaped = error
    # Now a healthy secret in the same warm container:
    healthy_error = None
    from common.observability import logger as step_logger

    level = step_logger.log_level
    step_logger.setLevel(logging.INFO)  # Lambda's default (POWERTOOLS_LOG_LEVEL=INFO)
    try:
        service.rotate(handler, app_user.arn)
    except Exception as error:  # noqa: BLE001
        healthy_error = error
    finally:
        step_logger.setLevel(level)
    unrelated = None
    try:
        logging.getLogger("some.app").warning("hello")
    except Exception as error:  # noqa: BLE001
        unrelated = error
    problems = []
    if escaped is not None:
        problems.append(f"raw {type(escaped).__name__} escaped createSecret: {escaped}")
    if healthy_error is not None:
        problems.append(f"a healthy secret's rotation then failed: {healthy_error!r}")
    if unrelated is not None:
        problems.append(f"an unrelated logger then raised: {unrelated!r}")
    assert not problems, problems


@pytest.mark.parametrize(
    "key,bad",
    [("password", "pw\x00rest-of-password"), ("host", "127.0.0.1\x00evil"), ("username", "u\x00ser"),
     ("dbname", "db\x00x")],
)
def test_nul_byte_in_secret_gives_project_error(postgres, sm_client, service, handler, database, key, bad) -> None:
    body = pg_secret(postgres, "nobody", new_password(), database)
    body[key] = bad
    arn = store_secret(sm_client, service, unique("nul"), body)
    before = labels(sm_client, arn)
    error = _rotate_expect_rotation_error(service, handler, arn)
    assert "rest-of-password" not in str(error)
    assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]


@pytest.mark.parametrize("strategy", ["single", "alternating"])
@pytest.mark.parametrize("name", ["app%s", "app%d_%(x)s", "pct%%user", "100%"])
def test_percent_in_user_name_rotates(postgres, sm_client, service, handler, database, master_arn, strategy, name) -> None:
    name = f"{name}{unique('')}"
    password = new_password()
    from psycopg2 import sql

    postgres.execute(
        sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password))
    )
    extra = {"masterarn": master_arn} if strategy == "alternating" else {}
    arn = store_secret(sm_client, service, unique("pct"), pg_secret(postgres, name, password, database, **extra))
    for _ in range(2):
        service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert can_login(postgres, current["username"], current["password"], database)


def test_double_percent_user_name_makes_master_alter_another_role(
    postgres, sm_client, service, handler, database, master_arn
) -> None:
    """psycopg2 %-formats the whole composed statement, quoted identifiers included: for a
    secret whose user is "v%%c", the master's statements hit the role "v%c" (someone else)."""
    from psycopg2 import sql

    tag = unique("")
    attacker, victim = f"v%%c{tag}", f"v%c{tag}"
    for name in (attacker, attacker + "_clone", victim, victim + "_clone"):
        postgres.execute(
            sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(new_password()))
        )
    arn = store_secret(
        sm_client, service, unique("deputy"),
        pg_secret(postgres, attacker, "unused-initial", database, masterarn=master_arn),
    )
    # the attacker knows its own password
    postgres.execute(
        sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(sql.Identifier(attacker), sql.Literal("Attacker-Pw-123456"))
    )
    sm_client.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps(pg_secret(postgres, attacker, "Attacker-Pw-123456", database, masterarn=master_arn)),
    )
    request = service.start(arn)
    for step in ("createSecret", "setSecret"):
        try:
            handler(request.event(step), LambdaContext("f"))
        except RotationError:
            break
    pending = json.loads(sm_client.get_secret_value(SecretId=arn, VersionId=request.token)["SecretString"])
    assert not can_login(postgres, victim + "_clone", pending["password"], database), (
        f"the master user set role {victim + '_clone'!r} (not named by the secret) to the "
        "pending password, which the secret's reader knows"
    )
    session_role = postgres.execute(
        "SELECT rolconfig FROM pg_roles WHERE rolname = %s", (victim + "_clone",)
    )
    assert session_role == [(None,)], f"victim clone's settings changed: {session_role}"
