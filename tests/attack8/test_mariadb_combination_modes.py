"""Attack round 8: MariaDB's combination sql_modes (ORACLE, POSTGRESQL, MSSQL, DB2,
MAXDB) each set ANSI_QUOTES again whenever they are named in a SET: removing the
ANSI_QUOTES word from the session's sql_mode leaves them, so it comes back. Real MariaDB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.errors import RotationError
from tests.attack7.test_mysql_sql_mode import _pair, global_sql_mode
from tests.conftest import new_password, unique
from tests.helpers import labels, store_secret, value
from tests.mysql.conftest import maria_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


@pytest.mark.parametrize("mode", ["ORACLE", "POSTGRESQL", "MSSQL", "DB2", "MAXDB"])
def test_alternating_users_rotate_under_combination_modes(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    master_arn: str,
    mode: str,
) -> None:
    """Severity: medium (A7's ANSI finding, fixed for ANSI and ANSI_QUOTES only: every
    alternating rotation on a MariaDB whose sql_mode has one of these documented
    compatibility modes fails forever with a message pointing at grants; the promise
    holds: AWSCURRENT is unchanged and logs in).

    Expected: the rotation completes (the clone made, AWSCURRENT logging in) or fails
    naming sql_mode / ANSI_QUOTES, AWSCURRENT unchanged.
    Actual: setSecret's DatabaseOperationError "unexpected SHOW GRANTS line for 'u'@'%'"
    (the session's SET keeps e.g. ORACLE, which MariaDB expands to ANSI_QUOTES again)."""
    user, arn = _pair(mariadb, sm_client, service, master_arn)
    before = labels(sm_client, arn)
    with global_sql_mode(mariadb, mode):
        try:
            service.rotate(handler, arn)
        except RotationError as error:
            assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]
            old = value(sm_client, arn, "AWSCURRENT")
            mariadb.connect_as(old["username"], old["password"]).close()
            assert "sql_mode" in str(error) or "ANSI" in str(error), (
                f"unnamed cause: {type(error).__name__}: {error}"
            )
            return
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == user + "_clone"
    mariadb.connect_as(current["username"], current["password"]).close()


@pytest.mark.parametrize("mode", ["ORACLE", "POSTGRESQL", "ANSI"])
def test_single_users_rotate_under_combination_modes(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    mode: str,
) -> None:
    """Held: a single user changes its own password under these modes (no grants read)."""
    user, password = unique("mode"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, password))
    with global_sql_mode(mariadb, mode):
        service.rotate(handler, arn)
        service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    mariadb.connect_as(user, current["password"]).close()
