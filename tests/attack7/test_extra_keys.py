"""Attack round 7: keys the secret format does not own. DESIGN.md section 2 and the README
promise that "any other key in the secret must be preserved" and that the functions are a
drop-in for AWS's: a key another tool put in a PostgreSQL or MySQL secret must not stop
its rotation. ``user_arn`` became meaningful for the Redis function only (ElastiCache and
MemoryDB users); real PostgreSQL server and rotations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from rotators.postgresql.engine import PostgresEngine
from tests.conftest import new_password, pg_secret, unique
from tests.helpers import handler_for, labels, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.postgres import PostgresServer
    from devtools.service import RotationService


@pytest.mark.xfail(
    strict=True,
    reason="finding A7-2: a PostgreSQL secret carrying an unrelated 'user_arn' key (an IAM "
    "user's ARN put there by another tool) is refused by every step: the key is validated as "
    "an ElastiCache/MemoryDB user ARN for every engine, so the secret can never rotate",
)
def test_postgres_secret_with_an_iam_user_arn_key_rotates(
    postgres: PostgresServer,
    database: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Severity: medium (a secret that AWS's function rotates is refused by this one:
    not a drop-in; the same key stops appkit from reading the secret).

    Expected: the PostgreSQL function ignores ``user_arn`` (it keeps it) and rotates.
    Actual: SecretFormatError "key 'user_arn' must be an ElastiCache or MemoryDB user ARN"."""
    user, password = unique("keys"), new_password()
    postgres.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
    extra = {"user_arn": "arn:aws:iam::123456789012:user/app-deployer"}
    arn = store_secret(sm_client, service, user, pg_secret(postgres, user, password, database, **extra))
    handler = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file)
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["password"] != password
    assert current["user_arn"] == extra["user_arn"]
    assert "AWSPENDING" not in labels(sm_client, arn)


@pytest.mark.xfail(
    strict=True,
    reason="finding A7-2b: a PostgreSQL alternating-users secret carrying an ElastiCache "
    "'user_arn' (a cache user the same application uses) is refused as 'a managed "
    "(ElastiCache or MemoryDB) user rotates without a master secret', a Redis rule applied "
    "to PostgreSQL",
)
def test_postgres_pair_with_a_cache_user_arn_key_rotates(
    postgres: PostgresServer,
    database: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Severity: low (a clear refusal, but for the wrong engine's reason).

    Expected: the PostgreSQL function rotates the pair and keeps the key.
    Actual: SecretFormatError naming a managed user."""
    master, master_password = unique("master"), new_password()
    postgres.execute(f'CREATE ROLE "{master}" LOGIN CREATEROLE PASSWORD %s', (master_password,))
    master_arn = store_secret(
        sm_client, service, master, pg_secret(postgres, master, master_password, database), rotation=False
    )
    user, password = unique("pair"), new_password()
    postgres.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
    extra = {"user_arn": "arn:aws:elasticache:us-east-1:123456789012:user:app-cache", "masterarn": master_arn}
    arn = store_secret(sm_client, service, user, pg_secret(postgres, user, password, database, **extra))
    handler = handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file)
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == user + "_clone"
    assert current["user_arn"] == extra["user_arn"]
