"""Attack round 7: PostgreSQL sessions whose string syntax is not the default
(``standard_conforming_strings = off``, ``backslash_quote = on``, set per role as an old
application might need) with role names holding a backslash and a quote, single user and
alternating users (the clone's settings are copied from the original's), real server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg2 import sql

from rotators.postgresql.engine import PostgresEngine
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import handler_for, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


def test_backslash_names_under_non_standard_strings_rotate_both_ways(
    postgres: PostgresServer,
    database: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Held: two alternating rotations and a single-user one, every role set to
    ``standard_conforming_strings = off``; a decoy role whose name differs only in the
    escaping keeps its password."""
    tail = unique("")[-6:]
    user, decoy = f"a\\'b{tail}", f"a''b{tail}"
    master, master_password = f"m\\x{tail}", new_password()
    password, decoy_password = new_password(), new_password()
    postgres.create_master(master, master_password)
    postgres.create_user(user, password)
    postgres.create_user(decoy, decoy_password)
    for role in (master, user, decoy):
        postgres.execute(
            sql.SQL("ALTER ROLE {} SET standard_conforming_strings = off").format(sql.Identifier(role))
        )
        postgres.execute(sql.SQL("ALTER ROLE {} SET backslash_quote = on").format(sql.Identifier(role)))
    postgres.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(user))
    )
    handler = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file)
    master_arn = store_secret(
        sm_client,
        service,
        unique("m"),
        pg_secret(postgres, master, master_password, database),
        rotation=False,
    )
    pair = store_secret(
        sm_client, service, unique("p"), pg_secret(postgres, user, password, database, masterarn=master_arn)
    )
    service.rotate(handler, pair)
    service.rotate(handler, pair)
    current = value(sm_client, pair, "AWSCURRENT")
    assert current["username"] == user
    assert postgres.can_login(user, current["password"], database)
    single_user, single_password = f"s\\'{tail}", new_password()
    postgres.create_user(single_user, single_password)
    postgres.execute(
        sql.SQL("ALTER ROLE {} SET standard_conforming_strings = off").format(sql.Identifier(single_user))
    )
    single = store_secret(
        sm_client, service, unique("s"), pg_secret(postgres, single_user, single_password, database)
    )
    service.rotate(handler, single)
    assert postgres.can_login(single_user, value(sm_client, single, "AWSCURRENT")["password"], database)
    assert postgres.can_login(decoy, decoy_password, database)
