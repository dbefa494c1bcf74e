"""Passwords made only of the characters AWS excludes by default: quotes, backslash,
space, slash, at-sign (EXCLUDE_CHARACTERS narrowed by a deployment)."""

from __future__ import annotations

import pytest

from common.passwords import PUNCTUATION
from rotators.postgresql.engine import PostgresEngine
from tests.helpers import handler_for, value
from tests.postgresql.conftest import can_login

NASTY = "'\"\\ /@"


@pytest.mark.parametrize("lower", ["false", "true"])
def test_postgres_rotates_with_nasty_punctuation(postgres, sm_client, service, app_user, lower) -> None:
    excluded = "".join(c for c in PUNCTUATION if c not in NASTY)
    handler = handler_for(
        PostgresEngine(),
        sm_client,
        DB_CA_BUNDLE=postgres.ca_file,
        EXCLUDE_CHARACTERS=excluded,
        EXCLUDE_LOWERCASE=lower,
        EXCLUDE_UPPERCASE="true",
        EXCLUDE_NUMBERS="true",
        PASSWORD_LENGTH="12",
    )
    for _ in range(3):
        service.rotate(handler, app_user.arn)
        current = value(sm_client, app_user.arn, "AWSCURRENT")
        assert any(c in NASTY for c in current["password"])
        assert can_login(postgres, current["username"], current["password"], app_user.dbname)
