"""Benchmark of dual-password rotation: figures printed, never asserted.

``make bench`` prints Redis's Secrets Manager calls, refused logins, wall time, import
time and memory beside the other engines (``devtools/bench.py``: its ``single`` is a user
setting its own passwords, its ``alternating`` a master user giving the same user two).
This adds what only dual passwords have:

* Redis: the commands one rotation sends to the server, by command (the server's own
  ``INFO commandstats``), for each way;
* MySQL 8 dual passwords: the statements one setSecret session sends on each path (the
  happy path, the retry after a crash, an account without ``APPLICATION_PASSWORD_ADMIN``)
  against MySQL 5.7's single password, counted on a recording stand-in (no MySQL 8 runs
  here; the statements themselves are pinned by tests/unit/test_mysql_dual_passwords.py).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from devtools.embedded import Embedded
    from devtools.redis_server import RedisServer


class CountingConnection:
    """A PyMySQL stand-in: counts statements, refuses those in ``refuse`` with an error number."""

    def __init__(self, version: str, refuse: dict[str, int] | None = None) -> None:
        self.version = version
        self.refuse = refuse or {}
        self.sent: list[str] = []

    def get_server_info(self) -> str:
        return self.version

    @contextmanager
    def cursor(self) -> Iterator[CountingConnection]:
        yield self

    def execute(self, statement: str, params: Any = None) -> None:
        import pymysql

        self.sent.append(statement)
        if statement in self.refuse:
            raise pymysql.err.OperationalError(self.refuse[statement], "refused")

    def fetchall(self) -> list[tuple[Any, ...]]:
        return []


def mysql_statements() -> dict[str, int]:
    """Statements of one single-user setSecret session, by path."""
    from common.engine import Login
    from common.tls import TlsPolicy
    from rotators.mysql.dialect import Server
    from rotators.mysql.engine import MySQLEngine

    engine = MySQLEngine()
    login = Login("db", 3306, None, "app", "current", TlsPolicy(False), 5, 5, "AWSCURRENT")
    add = Server.parse("8.0.36").add_own_password()

    def session(version: str, refuse: dict[str, int] | None = None) -> int:
        connection: Any = CountingConnection(version, refuse)
        if not engine.add_password(connection, user="app", keep="current", new="pending"):
            engine.change_own_password(connection, login, "pending")
        return len(connection.sent)

    return {
        "MySQL 8, two passwords": session("8.0.36"),
        "MySQL 8, retry after a crash": session("8.0.36", {add: 3891}),
        "MySQL 8, no APPLICATION_PASSWORD_ADMIN": session("8.0.36", {add: 1227}),
        "MySQL 5.7, one password": session("5.7.44"),
    }


def command_counts(server: RedisServer) -> Counter[str]:
    """Calls per command so far, from the server's ``INFO commandstats``."""
    stats = server.command("INFO", "commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()})


def redis_commands(env: Embedded, strategy: str) -> Counter[str]:
    """What one rotation sends to the Redis server, less what measuring it costs."""
    import importlib

    from common.handler import RotationFunction
    from common.settings import Settings
    from devtools.redis_server import RedisServer

    assert isinstance(env.server, RedisServer)
    engine = importlib.import_module(env.handler_module).lambda_handler.rotator.engine
    handler = RotationFunction(engine, client=env.client, settings=Settings.from_environ(env.env))
    arn = env.user_secret(f"commands_{strategy}", strategy)
    first = command_counts(env.server)
    overhead = command_counts(env.server) - first
    before = command_counts(env.server)
    env.service.rotate(handler, arn)
    return command_counts(env.server) - before - overhead


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)

    from common.observability import logger
    from devtools.embedded import embedded

    logger.setLevel("ERROR")  # figures only (the fallback path logs a warning by design)
    with embedded("redis") as env:
        commands = {
            "own passwords": redis_commands(env, "single"),
            "master user": redis_commands(env, "alternating"),
        }
    print("\nredis: commands one rotation sends to the server (INFO commandstats)")
    for who, counted in commands.items():
        listed = ", ".join(f"{name} {count}" for name, count in sorted(counted.items()))
        print(f"  {who:<15} {counted.total():>3}: {listed}")
    print("\nmysql: statements sent by one single-user setSecret session")
    for path, count in mysql_statements().items():
        print(f"  {path:<40} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
