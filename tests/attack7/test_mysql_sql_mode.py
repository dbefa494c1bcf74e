"""Attack round 7: the MySQL function against a MariaDB whose global ``sql_mode`` is not
the default (RDS parameter groups set ``sql_mode`` per database; ``ANSI`` and
``ANSI_QUOTES`` are documented, common settings). Real MariaDB, real rotations."""

from __future__ import annotations

import contextlib
import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import RotationError
from tests.conftest import new_password, unique
from tests.helpers import labels, store_secret, value
from tests.mysql.conftest import maria_secret

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


@contextmanager
def global_sql_mode(server: MariaDBServer, extra: str) -> Iterator[None]:
    """New sessions get ``extra`` added to the server's sql_mode; restored after."""
    ((old,),) = server.execute("SELECT @@GLOBAL.sql_mode")
    server.execute(f"SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',{extra}')")
    try:
        yield
    finally:
        server.execute("SET GLOBAL sql_mode = %s", (old,))


def _pair(
    server: MariaDBServer, sm: SecretsManagerClient, service: RotationService, master_arn: str
) -> tuple[str, str]:
    user, password, db = unique("ansi"), new_password(), unique("db")
    server.execute(f"CREATE DATABASE `{db}`")
    server.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    server.execute(f"GRANT SELECT ON `{db}`.* TO %s@'%%'", (user,))
    body = maria_secret(server, user, password, dbname=db, masterarn=master_arn)
    return user, store_secret(sm, service, user, body)


@pytest.mark.parametrize("mode", ["ANSI_QUOTES", "ANSI"])
def test_alternating_users_rotate_under_ansi_quotes(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    master_arn: str,
    mode: str,
) -> None:
    """Severity: medium (every alternating rotation on such a server fails, forever,
    with an error that sends the operator looking at grants, not at the sql_mode).

    Expected: the engine pins its own session's sql_mode (or reads double-quoted names)
    and the rotation completes; failing that, the error names sql_mode/ANSI_QUOTES.
    Actual: setSecret fails with "unexpected SHOW GRANTS line for 'u'@'%'"."""
    user, arn = _pair(mariadb, sm_client, service, master_arn)
    before = labels(sm_client, arn)
    with global_sql_mode(mariadb, mode):
        try:
            service.rotate(handler, arn)
        except RotationError as error:
            # The promise held (nothing labelled is refused): only the rotation failed.
            assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]
            assert "sql_mode" in str(error) or "ANSI" in str(error), f"unnamed cause: {error}"
            return
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == user + "_clone"
    mariadb.connect_as(current["username"], current["password"]).close()


@pytest.mark.parametrize("mode", ["NO_BACKSLASH_ESCAPES", "PIPES_AS_CONCAT,IGNORE_SPACE"])
def test_alternating_users_rotate_under_other_sql_modes(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    master_arn: str,
    mode: str,
) -> None:
    """Held: NO_BACKSLASH_ESCAPES (PyMySQL follows the server's status flag) and the other
    ANSI parts leave two alternating rotations working."""
    user, arn = _pair(mariadb, sm_client, service, master_arn)
    with global_sql_mode(mariadb, mode):
        service.rotate(handler, arn)
        service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == user
    mariadb.connect_as(current["username"], current["password"]).close()


@pytest.mark.parametrize("mode", ["NO_BACKSLASH_ESCAPES", None])
def test_ed25519_single_user_with_backslashes_and_quotes_in_passwords(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    mode: str | None,
) -> None:
    """Severity: medium (a supported-looking set-up fails at every createSecret; nothing is
    stored, nobody is locked out; the message names a Python package, not the plugin).

    Expected: an ed25519 account (its password sent as a string literal, not a hash)
    rotates to passwords made only of backslashes, quotes and alphanumerics (the
    deployment allows them: EXCLUDE_CHARACTERS), with and without NO_BACKSLASH_ESCAPES,
    each new AWSCURRENT logging in; or createSecret refuses naming the ed25519 plugin.
    Actual: UnexpectedError "RuntimeError: 'pynacl' package is required for
    ed25519_password auth method"."""
    from contextlib import nullcontext

    from rotators.mysql.engine import MySQLEngine
    from tests.helpers import handler_for

    plugins = mariadb.execute(
        "SELECT PLUGIN_NAME FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'"
    )
    if not plugins:
        mariadb.bootstrap("INSTALL SONAME 'auth_ed25519';")
    user, password = unique("ed"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED VIA ed25519 USING PASSWORD(%s)", (user, password))
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, password))
    allowed = set("\\'\"aB3")
    excluded = "".join(chr(c) for c in range(33, 127) if chr(c) not in allowed)
    handler = handler_for(
        MySQLEngine(),
        sm_client,
        DB_CA_BUNDLE=mariadb.ca_file,
        EXCLUDE_CHARACTERS=excluded,
        PASSWORD_LENGTH="40",
    )
    with global_sql_mode(mariadb, mode) if mode else nullcontext():
        for _ in range(2):
            service.rotate(handler, arn)
            current = value(sm_client, arn, "AWSCURRENT")["password"]
            assert "\\" in current or "'" in current
            mariadb.connect_as(user, current).close()


def test_the_recovery_of_an_abandoned_rotation_does_not_block_the_account(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """Severity: medium-low (needs a non-default max_password_errors; then the README's own
    recovery turns "AWSCURRENT refused" into "the account refuses every password", a
    lockout only an administrator's FLUSH PRIVILEGES ends).

    Expected: the rotation stops before the limit, naming max_password_errors, leaving the
    account usable with the password it holds; or it recovers. Actual: the account is
    blocked (error 4150) and the held password is refused."""
    from tests.operator.conftest import abandoned

    user, password = unique("lock"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, password))
    service.rotate(handler, arn)  # AWSCURRENT C (held), AWSPREVIOUS the first password
    request = abandoned(handler, service, arn, "createSecret", "setSecret", drop_pending=True)
    held = sm_client.get_secret_value(SecretId=arn, VersionId=request.token)["SecretString"]
    held_password = json.loads(held)["password"]
    ((old,),) = mariadb.execute("SELECT @@GLOBAL.max_password_errors")
    mariadb.execute("SET GLOBAL max_password_errors = 2")
    mariadb.bootstrap("FLUSH PRIVILEGES;")
    try:
        with contextlib.suppress(RotationError):
            service.rotate(handler, arn)
        current = value(sm_client, arn, "AWSCURRENT")["password"]
        usable = [p for p in (current, held_password) if _logs_in(mariadb, user, p)]
    finally:
        mariadb.execute("SET GLOBAL max_password_errors = %s", (int(old),))
        mariadb.bootstrap("FLUSH PRIVILEGES;")
    assert usable, "the account accepts neither AWSCURRENT nor the password it held: blocked"


def _logs_in(server: MariaDBServer, user: str, password: str) -> bool:
    try:
        server.connect_as(user, password).close()
    except Exception:  # noqa: BLE001 - refused or blocked
        return False
    return True
