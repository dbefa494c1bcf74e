"""Alternating users act only on the accounts the secret proved (regression tests of an
attack, branch ``attack1``). ``app@'%'`` and ``app@'10.9.9.9'`` are different accounts
with their own passwords and privileges: the master user once set the password of every
``app@<host>`` and gave the clone an account at each with that account's privileges."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devtools.service import LambdaContext
from rotators.mysql.engine import MySQLEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, store_secret, value
from tests.mysql.conftest import maria_secret, mariadb_client
from tests.mysql.test_charset import client_accepts

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService

ADMIN_HOST = "10.9.9.9"


def accounts(mariadb: MariaDBServer, user: str) -> dict[str, tuple[Any, ...]]:
    """``user``'s accounts: host -> (plugin, authentication string)."""
    rows = mariadb.execute(
        "SELECT Host, plugin, authentication_string FROM mysql.user WHERE User = %s", (user,)
    )
    return {str(host): (plugin, stored) for host, plugin, stored in rows}


def test_master_does_not_touch_an_account_the_secret_did_not_prove(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    master_arn: str,
) -> None:
    handler = handler_for(MySQLEngine(), sm_client, DB_CA_BUNDLE=mariadb.ca_file)
    user, password, other_password = unique("app"), new_password(), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    dbname = unique("db")
    mariadb.execute(f"CREATE DATABASE `{dbname}`")
    mariadb.execute(f"GRANT SELECT ON `{dbname}`.* TO %s@'%%'", (user,))
    # A different, privileged account of the same name, for an admin host only.
    mariadb.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, ADMIN_HOST, other_password))
    mariadb.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s", (user, ADMIN_HOST))
    before = accounts(mariadb, user)[ADMIN_HOST]
    arn = store_secret(
        sm_client, service, unique("acct"), maria_secret(mariadb, user, password, masterarn=master_arn)
    )
    service.rotate(handler, arn)  # AWSCURRENT: the clone
    clone = value(sm_client, arn, "AWSCURRENT")
    assert clone["username"] == user + "_clone"
    assert client_accepts(mariadb, clone["username"], clone["password"])
    service.rotate(handler, arn)  # AWSCURRENT: the original again
    current = value(sm_client, arn, "AWSCURRENT")
    assert client_accepts(mariadb, user, current["password"])
    assert set(accounts(mariadb, user + "_clone")) == {"%"}
    assert accounts(mariadb, user)[ADMIN_HOST] == before


def test_host_parts_sharing_the_password_are_all_mirrored_after_a_stale_admin_account(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    master_arn: str,
) -> None:
    """Host parts created with the secret's password follow it (the original's turn and
    the clone's), beside an account of the same name that has another password."""
    handler = handler_for(MySQLEngine(), sm_client, DB_CA_BUNDLE=mariadb.ca_file)
    user, password = unique("app"), new_password()
    dbname = unique("db")
    mariadb.execute(f"CREATE DATABASE `{dbname}`")
    for host in ("%", "localhost"):
        mariadb.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, password))
        mariadb.execute(f"GRANT SELECT ON `{dbname}`.* TO %s@%s", (user, host))
    mariadb.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, ADMIN_HOST, new_password()))
    before = accounts(mariadb, user)[ADMIN_HOST]
    arn = store_secret(
        sm_client, service, unique("hosts"), maria_secret(mariadb, user, password, masterarn=master_arn)
    )
    service.rotate(handler, arn)
    assert set(accounts(mariadb, user + "_clone")) == {"%", "localhost"}
    # An administrator adds a host part with the original's password hash.
    stored = accounts(mariadb, user)["%"][1]
    mariadb.execute("CREATE USER %s@'10.0.0.%%' IDENTIFIED BY PASSWORD %s", (user, stored))
    service.rotate(handler, arn)  # the original's turn: every host part sharing its hash
    original = accounts(mariadb, user)
    assert original["%"] == original["localhost"] == original["10.0.0.%"] != original[ADMIN_HOST]
    assert original[ADMIN_HOST] == before
    service.rotate(handler, arn)  # the clone's turn follows every proved host part
    assert set(accounts(mariadb, user + "_clone")) == {"%", "localhost", "10.0.0.%"}


def test_clone_account_at_a_host_part_not_proved_is_dropped_only_at_the_clone_turn(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    master_arn: str,
) -> None:
    """``app_clone@'localhost'`` with its own password (as the master user's code once left
    it: an account at every host part) is not proved by AWSCURRENT's credentials. While the
    clone is AWSCURRENT it is left alone (setSecret once dropped it, and with a salted plugin
    it may be what AWSCURRENT logs in with); at the clone's own turn, when it would only
    keep a retired password with the original's privileges there, it is dropped."""
    handler = handler_for(MySQLEngine(), sm_client, DB_CA_BUNDLE=mariadb.ca_file)
    user, password = unique("app"), new_password()
    clone = user + "_clone"
    dbname = unique("db")
    mariadb.execute(f"CREATE DATABASE `{dbname}`")
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    mariadb.execute(f"GRANT SELECT ON `{dbname}`.* TO %s@'%%'", (user,))
    arn = store_secret(
        sm_client, service, unique("stay"), maria_secret(mariadb, user, password, masterarn=master_arn)
    )
    service.rotate(handler, arn)  # AWSCURRENT: the clone
    for name in (user, clone):
        mariadb.execute("CREATE USER %s@'localhost' IDENTIFIED BY %s", (name, new_password()))
        mariadb.execute(f"GRANT SELECT ON `{dbname}`.* TO %s@'localhost'", (name,))
    before = accounts(mariadb, clone)["localhost"], accounts(mariadb, user)["localhost"]

    service.rotate(handler, arn)  # the original's turn, with the clone AWSCURRENT
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == user
    assert client_accepts(mariadb, user, current["password"])
    assert set(accounts(mariadb, clone)) == {"%", "localhost"}
    assert (accounts(mariadb, clone)["localhost"], accounts(mariadb, user)["localhost"]) == before

    service.rotate(handler, arn)  # the clone's turn
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == clone
    assert client_accepts(mariadb, clone, current["password"])
    assert set(accounts(mariadb, clone)) == {"%"}
    assert accounts(mariadb, user)["localhost"] == before[1]


def test_set_secret_keeps_the_clone_account_awscurrent_logs_in_with_but_cannot_prove(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    master_arn: str,
) -> None:
    """Real logins: clients from 127.0.0.1 open ``app_clone@'127.0.0.1'``, whose first
    authentication method has another password and whose second has AWSCURRENT's (as a
    salted plugin, its stored string is not the password's hash: nothing proves it). The
    proved account is ``app_clone@'10.1.1.%'``. The original's setSecret must leave
    AWSCURRENT accepted from 127.0.0.1; the preflight names the accounts it cannot prove."""
    handler = handler_for(MySQLEngine(), sm_client, DB_CA_BUNDLE=mariadb.ca_file)
    user, old, password = unique("app"), new_password(), new_password()
    clone = user + "_clone"
    dbname = unique("db")
    mariadb.execute(f"CREATE DATABASE `{dbname}`")
    for name, secret in ((user, old), (clone, password)):
        mariadb.execute("CREATE USER %s@'10.1.1.%%' IDENTIFIED BY %s", (name, secret))
        mariadb.execute(
            "CREATE USER %s@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD(%s) "
            "OR mysql_native_password USING PASSWORD(%s)",
            (name, new_password(), secret),
        )
        for host in ("10.1.1.%", "127.0.0.1"):
            mariadb.execute(f"GRANT SELECT ON `{dbname}`.* TO %s@%s", (name, host))
    opened = mariadb_client(mariadb, clone, password, "SELECT CURRENT_USER()")
    assert opened.stdout.strip() == f"{clone}@127.0.0.1", opened.stderr
    arn = store_secret(
        sm_client, service, unique("salted"), maria_secret(mariadb, clone, password, masterarn=master_arn)
    )
    report = handler({"Preflight": {"SecretId": arn}}, LambdaContext("rotation-function"))
    assert report is not None
    [hosts] = [c for c in report["capabilities"] if c["what"].startswith("act on every host part")]
    assert hosts["held"] is False
    assert f"{user!r}@'127.0.0.1'" in hosts["detail"]
    assert f"{clone!r}@'127.0.0.1'" in hosts["detail"]

    request = service.start(arn)
    for step in ("createSecret", "setSecret"):
        handler(request.event(step), LambdaContext("rotation-function"))
    assert client_accepts(mariadb, clone, password)  # AWSCURRENT, from 127.0.0.1
    assert set(accounts(mariadb, clone)) == {"10.1.1.%", "127.0.0.1"}
