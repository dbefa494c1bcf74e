"""MariaDB-specific behaviour against the real server: the real client, host parts, TLS
requirements, grant options, roles, revokes and name limits."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from common.engine import Login
from common.errors import SecretFormatError
from common.tls import TlsPolicy
from devtools.service import LambdaContext
from rotators.mysql.engine import MySQLEngine
from tests.conftest import new_password, unique
from tests.helpers import store_secret, value
from tests.mysql.conftest import maria_secret, mariadb_client

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


def grants_of(server: MariaDBServer, user: str, host: str) -> set[str]:
    """SHOW GRANTS lines (grants, TLS requirement, default role) with the account and the
    password hash taken out, so that two accounts compare equal when they hold the same."""
    return {
        re.sub(r" IDENTIFIED BY PASSWORD '[^']*'", "", str(line)).replace(f"`{user}`@`{host}`", "<account>")
        for (line,) in server.execute("SHOW GRANTS FOR %s@%s", (user, host))
    }


def test_single_user_proven_by_the_mariadb_client(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    user, password = unique("app"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s REQUIRE SSL", (user, password))
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, password))
    service.rotate(handler, arn)
    new = value(sm_client, arn, "AWSCURRENT")["password"]
    accepted = mariadb_client(mariadb, user, new, "SELECT CURRENT_USER()")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == f"{user}@%"
    refused = mariadb_client(mariadb, user, password, "SELECT 1")
    assert refused.returncode != 0
    assert "Access denied" in refused.stderr


def test_alternating_users_mirror_hosts_tls_grant_options_roles_and_revokes(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    master_arn: str,
) -> None:
    user, password, db, role = unique("app"), new_password(), unique("db"), unique("reader")
    clone = user + "_clone"
    mariadb.execute(f"CREATE DATABASE `{db}`")
    mariadb.execute(f"CREATE TABLE `{db}`.t (v int)")
    mariadb.execute(f"CREATE ROLE `{role}`")
    mariadb.execute(f"GRANT SELECT ON `{db}`.t TO `{role}`")
    # Granting a role needs its ADMIN OPTION, which a master user has for roles it made.
    master = value(sm_client, master_arn, "AWSCURRENT")["username"]
    mariadb.execute(f"GRANT `{role}` TO %s@'%%' WITH ADMIN OPTION", (master,))
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s REQUIRE SSL", (user, password))
    mariadb.execute("CREATE USER %s@'10.0.0.%%' IDENTIFIED BY %s REQUIRE X509", (user, password))
    mariadb.execute("CREATE USER %s@'localhost' IDENTIFIED BY %s", (user, password))
    mariadb.execute(f"GRANT SELECT, INSERT, UPDATE ON `{db}`.* TO %s@'%%' WITH GRANT OPTION", (user,))
    mariadb.execute(f"GRANT SELECT ON `{db}`.* TO %s@'10.0.0.%%'", (user,))
    mariadb.execute(f"GRANT `{role}` TO %s@'%%'", (user,))
    mariadb.execute(f"SET DEFAULT ROLE `{role}` FOR %s@'%%'", (user,))
    body = maria_secret(mariadb, user, password, dbname=db, masterarn=master_arn)
    arn = store_secret(sm_client, service, user, body)

    def assert_clone_matches() -> None:
        for host in ("%", "10.0.0.%", "localhost"):
            assert grants_of(mariadb, clone, host) == grants_of(mariadb, user, host), host
        rows = mariadb.execute(
            "SELECT Host, ssl_type, default_role FROM mysql.user WHERE User IN (%s, %s) ORDER BY Host, User",
            (user, clone),
        )
        by_host: dict[str, list[tuple[Any, ...]]] = {}
        for host, ssl_type, default_role in rows:
            by_host.setdefault(str(host), []).append((ssl_type, default_role))
        assert all(len(pair) == 2 and pair[0] == pair[1] for pair in by_host.values()), by_host

    service.rotate(handler, arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == clone
    assert_clone_matches()
    # The clone can hand on what it was given WITH GRANT OPTION (AWS's sample drops it and
    # its second rotation fails).
    current = value(sm_client, arn, "AWSCURRENT")
    session = mariadb.connect_as(clone, current["password"], db)
    with session.cursor() as cursor:
        cursor.execute("SELECT CURRENT_ROLE()")
        assert cursor.fetchall() == ((role,),)
        cursor.execute("GRANT SELECT ON t TO %s@'10.0.0.%%'", (user,))
    session.close()

    # Grants given and revoked after the first rotation reach the clone at the next one.
    extra_table = unique("later")
    mariadb.execute(f"CREATE TABLE `{db}`.`{extra_table}` (v int)")
    mariadb.execute(f"GRANT DELETE ON `{db}`.`{extra_table}` TO %s@'%%'", (user,))
    mariadb.execute(f"REVOKE UPDATE ON `{db}`.* FROM %s@'%%'", (user,))
    mariadb.execute("DROP USER %s@'localhost'", (user,))
    service.rotate(handler, arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == user
    # The host part the original left goes at the clone's turn: during the original's,
    # the clone was AWSCURRENT and its credentials logged in there.
    left = "SELECT Host FROM mysql.user WHERE User = %s AND Host = 'localhost'"
    assert mariadb.execute(left, (clone,)) == [("localhost",)]
    for host in ("%", "10.0.0.%"):
        assert grants_of(mariadb, clone, host) == grants_of(mariadb, user, host), host
    service.rotate(handler, arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == clone
    assert mariadb.execute(left, (clone,)) == []
    for host in ("%", "10.0.0.%"):
        assert grants_of(mariadb, clone, host) == grants_of(mariadb, user, host), host


def test_thirty_character_user_fits_mariadb_but_not_mysql(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    master_arn: str,
) -> None:
    user, password = "u" + unique("x" * 20)[:29], new_password()
    user = user[:30]
    assert len(user) == 30
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    # Something beyond USAGE, which the clone's testSecret proof requires.
    mariadb.execute("GRANT SELECT ON mysql.help_topic TO %s@'%%'", (user,))
    arn = store_secret(sm_client, service, user, maria_secret(mariadb, user, password, masterarn=master_arn))
    service.rotate(handler, arn)
    assert value(sm_client, arn, "AWSCURRENT")["username"] == user + "_clone"

    as_mysql = store_secret(
        sm_client,
        service,
        "as-mysql",
        maria_secret(mariadb, user, password, engine="mysql", masterarn=master_arn),
    )
    request = service.start(as_mysql)
    with pytest.raises(SecretFormatError, match="must fit in 32 characters for alternating users on 'mysql'"):
        handler(request.event("createSecret"), LambdaContext())


def test_ssl_false_means_plaintext_and_tls_means_verified(mariadb: MariaDBServer) -> None:
    user, password = unique("plain"), new_password()
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))

    def cipher(tls: TlsPolicy) -> str:
        login = Login(mariadb.host, mariadb.port, None, user, password, tls, 5, 5, "AWSCURRENT")
        with MySQLEngine().connect(login) as connection, connection.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            return str(cursor.fetchall()[0][1])

    assert cipher(TlsPolicy(enabled=False)) == ""
    assert cipher(TlsPolicy(enabled=True, ca_file=mariadb.ca_file)) != ""


def test_new_passwords_never_reach_the_general_log(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    master_arn: str,
) -> None:
    log = mariadb.root / "general.log"
    mariadb.execute("SET GLOBAL general_log_file = %s", (str(log),))
    mariadb.execute("SET GLOBAL general_log = 1")
    try:
        user, password, db = unique("logged"), new_password(), unique("db")
        mariadb.create_database(db)
        mariadb.create_user(user, password, db)
        single = store_secret(sm_client, service, user, maria_secret(mariadb, user, password))
        service.rotate(handler, single)
        current = value(sm_client, single, "AWSCURRENT")
        alternating = store_secret(sm_client, service, f"{user}-alt", current | {"masterarn": master_arn})
        service.rotate(handler, alternating)  # creates the clone
        service.rotate(handler, alternating)  # sets the original's password as the master
    finally:
        mariadb.execute("SET GLOBAL general_log = 0")
    text = log.read_text(errors="replace")
    assert "SET PASSWORD = '*" in text and "IDENTIFIED BY PASSWORD '*" in text
    # Every password a rotation generated (the first one was set by this test, in clear).
    rotated = {
        "single": value(sm_client, single, "AWSCURRENT")["password"],
        "clone": value(sm_client, alternating, "AWSPREVIOUS")["password"],
        "original by the master": value(sm_client, alternating, "AWSCURRENT")["password"],
    }
    assert [name for name, secret in rotated.items() if secret in text] == []
