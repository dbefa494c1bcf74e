"""Attack round 8: alternating-user rotations whose grants name databases, tables and
users with quote characters inside the backticks. Real MariaDB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import new_password, unique
from tests.helpers import store_secret, value
from tests.mysql.conftest import maria_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.mariadb import MariaDBServer
    from devtools.service import RotationService


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@pytest.mark.parametrize("odd", ['q"x', "b`x", "s'x", "p\\x", 'a"`b'])
def test_the_clone_gets_grants_on_odd_names(
    mariadb: MariaDBServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    master_arn: str,
    odd: str,
) -> None:
    """The clone gets exactly the user's grants, whatever the quotes in the names."""
    user, password = unique("gq") + odd, new_password()
    db = unique("db") + odd
    mariadb.execute(f"CREATE DATABASE {_ident(db)}")
    mariadb.execute(f"CREATE TABLE {_ident(db)}.{_ident('t' + odd)} (i INT)")
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    mariadb.execute(f"GRANT SELECT ON {_ident(db)}.* TO %s@'%%'", (user,))
    mariadb.execute(f"GRANT INSERT ON {_ident(db)}.{_ident('t' + odd)} TO %s@'%%'", (user,))
    body = maria_secret(mariadb, user, password, dbname=db, masterarn=master_arn)
    arn = store_secret(sm_client, service, unique("secret"), body)
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")
    assert current["username"] == user + "_clone"

    def grants(name: str) -> list[str]:
        rows = mariadb.execute(f"SHOW GRANTS FOR {_ident(name)}@'%'")
        return sorted(str(row[0]).split(" TO ")[0] for row in rows if "USAGE" not in str(row[0]))

    assert grants(user + "_clone") == grants(user)
    mariadb.connect_as(current["username"], current["password"]).close()
