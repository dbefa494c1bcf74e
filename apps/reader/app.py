"""Example application function: reads from PostgreSQL with a rotated secret.

It uses the application layer only (``appkit`` and the engine's session code): the
secret is read and checked once at initialisation (``prime``) and cached per container
(``SECRETS_MAX_AGE`` seconds, default 300); the session is reused across warm
invocations, each request one transaction of its own. When a rotation changes the
password, the next new session meets a refused login and reads the secret again
(AWSCURRENT, then AWSPENDING during a single-user rotation) instead of failing until the
cache expires. Configuration: ``DB_SECRET_ID`` (the secret's ARN or name, or its
Parameter Store reference ``/aws/reference/secretsmanager/<name>``), plus the rotators'
own ``DB_CA_BUNDLE`` and time-outs.
"""

from __future__ import annotations

import os
from typing import Any

from appkit.connections import RotationAwareConnection
from appkit.retrieval import SecretCache
from rotators.postgresql.engine import PostgresEngine

database = RotationAwareConnection(PostgresEngine(), os.environ["DB_SECRET_ID"], SecretCache())
database.prime()


def _now(connection: Any) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, now()::text")
        user, now = cursor.fetchone()
    return {"user": str(user), "now": str(now)}


def lambda_handler(event: dict[str, Any], context: object = None) -> dict[str, str]:
    """Answers with the database user and the time, through the rotation-aware session
    (a read: safe to run again if the kept session broke under it)."""
    return database.run(_now, retry=True)
