"""Attack round 7: MySQL 8 dual passwords (issue 13) with ``password_require_current=ON``
(a documented MySQL 8 hardening setting): the retry of a setSecret that died after its
``RETAIN CURRENT PASSWORD`` statement. Statements as sent (no MySQL 8 runs here): the
server's answers are MySQL 8's documented errors."""

from __future__ import annotations

import pytest

from common.errors import RotationError
from rotators.mysql.engine import MySQLEngine
from tests.unit.test_mysql_dialect import MYSQL_8, pymysql_like
from tests.unit.test_mysql_dual_passwords import ADD, PRIMARY, RefusingConnection


def test_a_retry_under_password_require_current_completes() -> None:
    """Severity: medium-low (no lockout: AWSCURRENT stays the secondary; but the rotation
    can never complete again, and repair's 'discard' leads to the same state).

    Server state: primary = the pending password (the first attempt's statement ran),
    secondary = AWSCURRENT. MySQL 8 answers REPLACE <secondary> with 3891 and a change of
    one's own password without REPLACE with 3892 when password_require_current is ON.
    Expected: the engine sees the pending password is already primary (e.g. REPLACE <new>
    without RETAIN, which keeps the secondary) and succeeds. Actual: 3892 raised."""
    connection = RefusingConnection(
        MYSQL_8,
        {
            ADD: (3891, "Incorrect current password. Specify the correct password which has to be replaced."),
            PRIMARY: (
                3892,
                "Current password needs to be specified in the REPLACE clause in order to change it.",
            ),
        },
    )
    try:
        kept = MySQLEngine().add_password(
            pymysql_like(connection), user="app", keep="cur-Pass-1", new="new-Pass-2"
        )
    except RotationError as error:
        pytest.fail(f"the retry failed: {error}")
    assert kept is True
