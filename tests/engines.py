"""One harness per engine, so that the rotation scenarios run against every real server.

The server classes of ``devtools`` make users, databases and master users; a harness
adds the engine, its handler module, and how a real client proves a login.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from tests.conftest import new_password, unique
from tests.helpers import store_secret

if TYPE_CHECKING:
    import pytest
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.engine import Engine
    from devtools.mariadb import MariaDBServer
    from devtools.mongo_peer import MongoServer
    from devtools.postgres import PostgresServer
    from devtools.redis_server import RedisServer
    from devtools.redshift import RedshiftStandIn
    from devtools.service import RotationService


class Harness(ABC):
    """What the scenarios need from an engine and its throwaway server."""

    name: str
    app_module: str
    server: PostgresServer | MariaDBServer | MongoServer | RedshiftStandIn | RedisServer
    engine: Engine[Any]
    #: Whether the single user's previous password still logs in after a rotation (the
    #: server holds two passwords), until the next rotation.
    keeps_previous_password: bool = False
    #: The fault matrix's stricter rule for servers whose users hold two passwords in every
    #: strategy: ``AWSCURRENT`` itself logs in after every sequence (no single-user window
    #: in which only ``AWSPENDING`` does).
    current_always_logs_in: bool = False

    @property
    def engine_key(self) -> str:
        return self.server.engine_key

    @abstractmethod
    def set_password(self, user: str, password: str, dbname: str) -> None:
        """Change a password behind the rotation's back, as an administrator."""

    def probe(self, connection: Any) -> int:
        """One request of an application on ``connection``: 1 when it worked."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return int(cursor.fetchone()[0])

    def can_login(self, user: str, password: str, dbname: str) -> bool:
        """Whether a real client logs in over verified TLS; False only for refused credentials."""
        return self.server.can_login(user, password, dbname)

    def create_master(self, user: str, password: str) -> None:
        self.server.create_master(user, password)

    def new_user(self) -> tuple[str, str, str]:
        """A fresh user with a random password in a database of its own."""
        user, password, dbname = unique("app"), new_password(), unique("db")
        self.server.create_database(dbname)
        self.server.create_user(user, password, dbname)
        return user, password, dbname

    def secret(self, user: str, password: str, dbname: str, **extra: Any) -> dict[str, Any]:
        return {
            "engine": self.engine_key,
            "host": self.server.host,
            "port": self.server.port,
            "username": user,
            "password": password,
            "dbname": dbname,
            **extra,
        }


class PostgresHarness(Harness):
    name, app_module = "postgresql", "rotators.postgresql.app"

    def __init__(self, server: PostgresServer) -> None:
        from rotators.postgresql.engine import PostgresEngine

        self.server = self.pg = server
        self.engine = PostgresEngine()

    def set_password(self, user: str, password: str, dbname: str) -> None:
        self.pg.execute(f'ALTER ROLE "{user}" PASSWORD %s', (password,))


class MariaDBHarness(Harness):
    name, app_module = "mariadb", "rotators.mysql.app"

    def __init__(self, server: MariaDBServer) -> None:
        from rotators.mysql.engine import MySQLEngine

        self.server = self.maria = server
        self.engine = MySQLEngine()

    def set_password(self, user: str, password: str, dbname: str) -> None:
        self.maria.execute("SET PASSWORD FOR %s@'%%' = PASSWORD(%s)", (user, password))


class MongoHarness(Harness):
    name, app_module = "mongodb", "rotators.mongodb.app"

    def __init__(self, server: MongoServer) -> None:
        from rotators.mongodb.engine import MongoEngine

        self.server = self.mongo = server
        self.engine = MongoEngine()

    def set_password(self, user: str, password: str, dbname: str) -> None:
        self.mongo.set_password(user, password, dbname)

    def probe(self, connection: Any) -> int:
        return int(connection.admin.command("ping")["ok"])


class RedshiftHarness(Harness):
    name, app_module = "redshift", "rotators.redshift.app"

    def __init__(self, server: RedshiftStandIn) -> None:
        from rotators.redshift.engine import RedshiftEngine

        self.server = self.redshift = server
        self.engine = RedshiftEngine()

    def set_password(self, user: str, password: str, dbname: str) -> None:
        self.redshift.execute(f'ALTER USER "{user}" PASSWORD %s', (password,))

    def probe(self, connection: Any) -> int:
        cursor = connection.cursor()
        try:
            cursor.execute("SELECT 1")
            return int(cursor.fetchone()[0])
        finally:
            cursor.close()


class RedisHarness(Harness):
    """Redis: the fault matrix and the deployment tests. The other shared scenarios do not
    run on it: a single user keeps its previous password (see tests/redis/ for its own)."""

    name, app_module = "redis", "rotators.redis.app"
    keeps_previous_password = True
    current_always_logs_in = True

    def __init__(self, server: RedisServer) -> None:
        from rotators.redis.engine import RedisEngine

        self.server = self.redis = server
        self.engine = RedisEngine()

    def set_password(self, user: str, password: str, dbname: str) -> None:
        from devtools.redis_server import password_rule

        self.redis.command("ACL", "SETUSER", user, "resetpass", password_rule(password))

    def probe(self, connection: Any) -> int:
        return int(connection.client.ping() is True)


#: Every engine with a harness: the fault matrix runs them all.
ENGINES = ("postgresql", "mariadb", "mongodb", "redshift", "redis")
#: The engines of the other shared scenarios: Redis is left out there (its own tests in
#: tests/redis cover what they check) and runs only the fault matrix.
SCENARIO_ENGINES = tuple(name for name in ENGINES if name != "redis")


def harness_named(name: str, request: pytest.FixtureRequest) -> Harness:
    """The harness of engine ``name`` (one of :data:`ENGINES`) on the session's throwaway
    server, which ``request`` starts on first use."""
    if name == "postgresql":
        return PostgresHarness(request.getfixturevalue("postgres"))
    if name == "mariadb":
        return MariaDBHarness(request.getfixturevalue("mariadb"))
    if name == "mongodb":
        return MongoHarness(request.getfixturevalue("mongo"))
    if name == "redis":
        return RedisHarness(request.getfixturevalue("redis_server"))
    return RedshiftHarness(request.getfixturevalue("redshift"))


def store_master_secret(harness: Harness, sm_client: SecretsManagerClient, service: RotationService) -> str:
    """A new master user on ``harness``'s server and its secret (rotation off); the ARN."""
    user, password = unique("admin"), new_password()
    harness.create_master(user, password)
    body = harness.secret(user, password, harness.server.admin_database)
    return store_secret(sm_client, service, user, body, rotation=False)
