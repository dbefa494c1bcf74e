"""A secret whose user is the master user itself (alternating users, masterarn -> the
master secret): the second rotation sets the master user's password, so the master secret
(which every other alternating secret uses) no longer logs in. Nothing refuses this."""

from __future__ import annotations

import json

from tests.conftest import pg_secret, unique
from tests.helpers import store_secret, value
from tests.postgresql.conftest import can_login


def test_a_secret_cannot_rotate_the_master_users_own_password(postgres, sm_client, service, handler, database, master_arn) -> None:
    master = value(sm_client, master_arn, "AWSCURRENT")
    arn = store_secret(
        sm_client, service, unique("self"),
        pg_secret(postgres, master["username"], master["password"], database, masterarn=master_arn),
    )
    outcomes = []
    for _ in range(2):
        try:
            service.rotate(handler, arn)
            outcomes.append("rotated")
        except Exception as error:  # noqa: BLE001
            outcomes.append(type(error).__name__)
            break
    assert can_login(postgres, master["username"], master["password"], "postgres"), (
        f"rotations {outcomes}: the master secret no longer logs in (its user's password was changed)"
    )
