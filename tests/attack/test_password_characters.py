"""Passwords made mostly of the characters AWS excludes by default (quotes, backslash,
space, slash, at-sign), as a deployment that narrows EXCLUDE_CHARACTERS gets them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from common.passwords import PUNCTUATION
from rotators.postgresql.engine import PostgresEngine
from tests.helpers import handler_for, value
from tests.postgresql.conftest import can_login

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.postgresql.conftest import AppUser

NASTY = "'\"\\ /@"


@pytest.mark.parametrize("lower", ["false", "true"])
def test_postgres_rotates_with_nasty_punctuation(
    postgres: PostgresServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    app_user: AppUser,
    lower: str,
) -> None:
    """Three rotations whose passwords hold some of those characters (with or without
    lower-case letters) each leave AWSCURRENT logging in."""
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
