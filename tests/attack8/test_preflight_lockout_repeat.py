"""Attack round 8: the preflight promises that its refused logins never risk blocking
the account (README: "a refused login is the preflight's only side effect, and it never
risks blocking the account"). MariaDB's count runs across invocations. Real MariaDB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.errors import AccountBlockedError
from devtools.service import LambdaContext
from tests.attack7.test_mysql_sql_mode import _logs_in
from tests.conftest import new_password, unique
from tests.helpers import store_secret
from tests.mysql.conftest import maria_secret
from tests.operator.test_preflight import outcomes, preflight

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


def test_running_the_preflight_twice_does_not_block_the_account(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """Severity: medium (the operator's diagnostic tool, run twice - as anyone does when a
    rotation fails - blocks the account for the applications using the password the
    server holds, until an administrator's FLUSH PRIVILEGES; needs a non-default
    max_password_errors and a password no version holds, the very case doctor is for).

    The server holds a password no version holds (an operator's emergency change). The
    first preflight stops after 2 refused logins (AWSCURRENT, AWSPREVIOUS): count 2 of 3.
    The second preflight's first login (AWSCURRENT, "always tried") is the third.

    Expected: the account still accepts the password it holds. Actual: blocked; the
    second report says AWSCURRENT "refused", then AWSPREVIOUS "unreachable" (error 4150,
    the block, reported as the server being unreachable, not as a lockout)."""
    user, first = unique("lock"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, first))
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, first))
    service.rotate(handler, arn)  # AWSCURRENT and AWSPREVIOUS
    held = new_password()
    mariadb.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, held))
    ((old,),) = mariadb.execute("SELECT @@GLOBAL.max_password_errors")
    mariadb.execute("SET GLOBAL max_password_errors = 3")
    mariadb.bootstrap("FLUSH PRIVILEGES;")
    try:
        first_report = preflight(handler, arn)
        second_report = preflight(handler, arn)
        usable = _logs_in(mariadb, user, held)
    finally:
        mariadb.execute("SET GLOBAL max_password_errors = %s", (int(old),))
        mariadb.bootstrap("FLUSH PRIVILEGES;")
    assert first_report["ok"] is False and second_report["ok"] is False
    assert usable, "the password the server holds is refused: two preflights blocked the account"


def test_a_blocked_account_is_reported_as_blocked(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """MariaDB's error 4150 (the account blocked after max_password_errors refused logins)
    is neither a refused login nor an unreachable server: the preflight reports the login
    "blocked" and says FLUSH PRIVILEGES unblocks it; a step fails with AccountBlockedError
    saying the same, and tries no other version (each would be refused as well)."""
    user, first = unique("lock"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, first))
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, first))
    ((old,),) = mariadb.execute("SELECT @@GLOBAL.max_password_errors")
    mariadb.execute("SET GLOBAL max_password_errors = 1")
    mariadb.bootstrap("FLUSH PRIVILEGES;")
    try:
        assert not _logs_in(mariadb, user, new_password())  # the one refused login: blocked
        report = preflight(handler, arn)
        with pytest.raises(AccountBlockedError, match="FLUSH PRIVILEGES") as raised:
            handler(service.start(arn).event("createSecret"), LambdaContext())
    finally:
        mariadb.execute("SET GLOBAL max_password_errors = %s", (int(old),))
        mariadb.bootstrap("FLUSH PRIVILEGES;")
    assert outcomes(report)["AWSCURRENT"] == "blocked"
    check = next(c for c in report["checks"] if c["check"] == "database login")
    assert check["ok"] is False and "FLUSH PRIVILEGES" in check["fix"]
    assert first not in str(raised.value) and first not in str(report)
