"""One harness per engine, so that the rotation scenarios run against every real server.

A harness knows how to make users, databases and a master user on its server, and how
a real client proves a login; the scenarios in ``tests/scenarios`` use nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol

from tests.conftest import create_role, new_password, unique

if TYPE_CHECKING:
    from common.engine import Engine
    from devtools.mariadb import MariaDBServer
    from devtools.postgres import PostgresServer


class DatabaseServer(Protocol):
    host: str
    port: int

    @property
    def ca_file(self) -> str: ...

    def failed_logins(self) -> int: ...


class Harness(ABC):
    """What the scenarios need from an engine and its throwaway server."""

    name: str
    engine_key: str
    app_module: str

    def __init__(self, server: DatabaseServer, engine: Engine[Any]) -> None:
        self.server = server
        self.engine = engine

    @abstractmethod
    def create_database(self, dbname: str) -> None: ...

    @abstractmethod
    def create_user(self, user: str, password: str, dbname: str) -> None:
        """A user that may use everything in ``dbname``."""

    @abstractmethod
    def create_master(self, user: str, password: str) -> None:
        """A user with the rights of a managed database's master user."""

    @abstractmethod
    def set_password(self, user: str, password: str) -> None:
        """Change a password behind the rotation's back, as an administrator."""

    @abstractmethod
    def can_login(self, user: str, password: str, dbname: str) -> bool:
        """Whether a real client logs in over verified TLS; False only for refused credentials."""

    def new_user(self) -> tuple[str, str, str]:
        """A fresh user with a random password in a database of its own."""
        user, password, dbname = unique("app"), new_password(), unique("db")
        self.create_database(dbname)
        self.create_user(user, password, dbname)
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
    name, engine_key, app_module = "postgresql", "postgres", "rotators.postgresql.app"

    def __init__(self, server: PostgresServer) -> None:
        from rotators.postgresql.engine import PostgresEngine

        super().__init__(server, PostgresEngine())
        self.pg = server

    def create_database(self, dbname: str) -> None:
        self.pg.execute(f'CREATE DATABASE "{dbname}"')

    def create_user(self, user: str, password: str, dbname: str) -> None:
        create_role(self.pg, user, password)
        self.pg.execute(f'ALTER DATABASE "{dbname}" OWNER TO "{user}"')

    def create_master(self, user: str, password: str) -> None:
        create_role(self.pg, user, password, "CREATEROLE")

    def set_password(self, user: str, password: str) -> None:
        self.pg.execute(f'ALTER ROLE "{user}" PASSWORD %s', (password,))

    def can_login(self, user: str, password: str, dbname: str) -> bool:
        import psycopg2

        try:
            self.pg.connect_as(user, password, dbname).close()
        except psycopg2.OperationalError as error:
            if "password authentication failed" in str(error):
                return False
            raise
        return True


class MariaDBHarness(Harness):
    name, engine_key, app_module = "mariadb", "mariadb", "rotators.mysql.app"

    def __init__(self, server: MariaDBServer) -> None:
        from rotators.mysql.engine import MySQLEngine

        super().__init__(server, MySQLEngine())
        self.maria = server

    def create_database(self, dbname: str) -> None:
        self.maria.execute(f"CREATE DATABASE `{dbname}`")

    def create_user(self, user: str, password: str, dbname: str) -> None:
        self.maria.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        self.maria.execute(f"GRANT ALL PRIVILEGES ON `{dbname}`.* TO %s@'%%'", (user,))

    def create_master(self, user: str, password: str) -> None:
        # Like an RDS master user: every privilege, grantable.
        self.maria.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        self.maria.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,))

    def set_password(self, user: str, password: str) -> None:
        self.maria.execute("SET PASSWORD FOR %s@'%%' = PASSWORD(%s)", (user, password))

    def can_login(self, user: str, password: str, dbname: str) -> bool:
        import pymysql

        try:
            self.maria.connect_as(user, password, dbname).close()
        except pymysql.err.OperationalError as error:
            if error.args and error.args[0] == 1045:
                return False
            raise
        return True
