"""Benchmark of dual-password rotation: figures printed, never asserted.

* Redis: Secrets Manager calls per rotation, logins refused by the server (its ACL LOG)
  and wall time, for a user that sets its own passwords and for one given them by a
  master user (no clone in either case);
* MySQL 8 dual passwords: the statements one setSecret session sends on each path (the
  happy path, the retry after a crash, an account without ``APPLICATION_PASSWORD_ADMIN``)
  against MySQL 5.7's single password, counted on a recording stand-in (no MySQL 8 runs
  here; the statements themselves are pinned by tests/unit/test_mysql_dual_passwords.py).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rotations", type=int, default=20)
    args = parser.parse_args(argv)

    from common.observability import logger
    from devtools.bench import rotation_figures
    from devtools.embedded import embedded

    logger.setLevel("ERROR")  # figures only (the fallback path logs a warning by design)
    print(f"\nDual passwords: {args.rotations} rotations per strategy; moto's server as Secrets Manager")
    with embedded("redis") as env:
        figures = {
            "own passwords": rotation_figures(env, "single", args.rotations),
            "master user": rotation_figures(env, "alternating", args.rotations),
        }
    print("\nredis (the previous password works until the next rotation; no clone)")
    print(
        f"  {'who sets them':<15} {'SM calls: 1st / later / cold':<30} {'refused logins':<16} wall median/max"
    )
    for strategy, f in figures.items():
        calls = f"{f['first'].total()} / {f['later'].total()} / {f['cold']}"
        wall = f"{f['median_ms']:.0f} / {f['max_ms']:.0f} ms"
        print(f"  {strategy:<15} {calls:<30} {f['refused']:<16} {wall}")
    print("\nmysql: statements sent by one single-user setSecret session")
    for path, count in mysql_statements().items():
        print(f"  {path:<40} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
