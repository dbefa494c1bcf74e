"""User names SQL would choke on: always quoted, never run as SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from psycopg2 import sql

from tests.conftest import new_password, pg_secret
from tests.helpers import store_secret, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


@pytest.mark.parametrize("strategy", ["single", "alternating"])
def test_user_name_with_quotes_semicolons_and_spaces(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    database: str,
    master_arn: str,
    strategy: str,
) -> None:
    name = f"o'brien\"; DROP TABLE canary; -- {strategy}"
    password = new_password()
    postgres.create_user(name, password)
    postgres.execute("CREATE TABLE canary (v int)", dbname=database)
    postgres.execute(
        sql.SQL("GRANT SELECT ON canary TO {}")
        .format(sql.Identifier(name))
        .as_string(postgres.admin_connection()),
        dbname=database,
    )
    extra = {"masterarn": master_arn} if strategy == "alternating" else {}
    arn = store_secret(
        sm_client, service, f"odd-{strategy}", pg_secret(postgres, name, password, database, **extra)
    )
    for _ in range(2):
        service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == name
    assert can_login(postgres, name, current["password"], database)
    assert postgres.execute("SELECT count(*) FROM canary", dbname=database) == [(0,)]
    if strategy == "alternating":
        previous = value(sm_client, arn, "AWSPREVIOUS")
        assert previous["username"] == name + "_clone"
        assert can_login(postgres, previous["username"], previous["password"], database)
