"""Attack round 8: MariaDB's ``max_password_errors`` counts refused logins in a row per
account on the server, across sessions, steps and containers; the rotation's stop short
of the limit counts only the refused logins of the step it is in. Real MariaDB."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from common.errors import RotationError
from devtools.service import LambdaContext
from tests.attack7.test_mysql_sql_mode import _logs_in
from tests.conftest import new_password, unique
from tests.helpers import store_secret, value
from tests.mysql.conftest import maria_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


def test_a_retried_set_secret_does_not_block_the_account(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """Severity: medium (needs a non-default max_password_errors and a password set
    behind the rotation's back; then the step Secrets Manager retries blocks the account
    for every application, even those logging in with the password the server holds,
    until an administrator's FLUSH PRIVILEGES).

    One warm container (one handler) learns the limit (3) in a rotation that recovered
    (the server held AWSPREVIOUS); then an operator sets a password of their own on the
    server. createSecret stops after 2 refused logins (AWSCURRENT, AWSPREVIOUS), as
    designed: the server's count is 2. Secrets Manager retries createSecret: its first
    login (AWSCURRENT, "always tried") is the third refusal in a row.

    Expected: the retry stops before logging in (the count left by the earlier attempt
    counts), and the operator's password, which the server holds, still logs in. Actual: the account is
    blocked; the held password is refused (error 4150)."""
    user, first = unique("lock"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, first))
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, first))
    service.rotate(handler, arn)  # AWSCURRENT P1 (held), AWSPREVIOUS the first password
    ((old,),) = mariadb.execute("SELECT @@GLOBAL.max_password_errors")
    mariadb.execute("SET GLOBAL max_password_errors = 3")
    mariadb.bootstrap("FLUSH PRIVILEGES;")
    try:
        # The container learns the limit: the server holds AWSPREVIOUS, found after 2 refusals.
        mariadb.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, first))
        service.rotate(handler, arn)
        # An operator sets a password of their own (an emergency change; applications use it).
        held = new_password()
        mariadb.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, held))
        assert _logs_in(mariadb, user, held)
        request = service.start(arn)
        for _attempt in range(2):  # the step, then Secrets Manager's retry
            with contextlib.suppress(RotationError):
                handler(request.event("createSecret"), LambdaContext())
        usable = _logs_in(mariadb, user, held)
    finally:
        mariadb.execute("SET GLOBAL max_password_errors = %s", (int(old),))
        mariadb.bootstrap("FLUSH PRIVILEGES;")
    assert usable, "the password the server holds is refused: the account is blocked"


def test_a_stale_remembered_version_does_not_block_awscurrent(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """Severity: high (the project's rule broken: the labelled AWSCURRENT, which the
    database held when the step began, is refused afterwards - the account is blocked
    for every client until an administrator's FLUSH PRIVILEGES; needs a non-default
    max_password_errors of 2 and an operator fixing the password mid-rotation).

    createSecret finds the server holding AWSPREVIOUS (AWSCURRENT refused first) and the
    container remembers it (``Rotator.accepted``) with the limit 2. An operator then puts
    the AWSCURRENT password back on the server. setSecret tries the remembered AWSPREVIOUS
    first (refused: count 1) and stops, as designed. Secrets Manager retries setSecret:
    AWSPREVIOUS again first (refused: count 2): blocked.

    Expected: AWSCURRENT still logs in after the step and its retry (a refused remembered
    version is forgotten, or the count left by the earlier attempt is respected).
    Actual: the account is blocked; AWSCURRENT is refused (error 4150)."""
    user, first = unique("lock"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, first))
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, first))
    service.rotate(handler, arn)  # AWSCURRENT P1, AWSPREVIOUS the first password
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    ((old,),) = mariadb.execute("SELECT @@GLOBAL.max_password_errors")
    mariadb.execute("SET GLOBAL max_password_errors = 2")
    mariadb.bootstrap("FLUSH PRIVILEGES;")
    try:
        mariadb.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, first))  # restored behind its back
        request = service.start(arn)
        handler(request.event("createSecret"), LambdaContext())
        # The operator puts AWSCURRENT's password back (a fix made while the rotation runs).
        mariadb.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, current))
        assert _logs_in(mariadb, user, current)
        for _attempt in range(2):  # the step, then Secrets Manager's retry
            with contextlib.suppress(RotationError):
                handler(request.event("setSecret"), LambdaContext())
        usable = _logs_in(mariadb, user, current) or _logs_in(
            mariadb, user, value(sm_client, arn, "AWSPENDING")["password"]
        )
        still_current = value(sm_client, arn, "AWSCURRENT")["password"] == current
    finally:
        mariadb.execute("SET GLOBAL max_password_errors = %s", (int(old),))
        mariadb.bootstrap("FLUSH PRIVILEGES;")
    assert still_current
    assert usable, "neither AWSCURRENT nor AWSPENDING logs in: the account is blocked"
