"""Benchmark: how an alternating rotation's cost grows with what the original user holds.

Counted on the server's side, per rotation (all four steps):

* Redshift (the stand-in): a warehouse of 20 schemas with 20 tables (2 views, 1 routine),
  then with 2,000 tables, 200 views and 50 routines; statements that read privileges
  (the catalog's) and every statement, as the bridge saw them, and wall time.
* MariaDB: the original holds 50, then 500 grant lines over three host parts; statements
  the clients sent (the server's general log: one line per round trip), SHOW GRANTS and
  batches (``BEGIN NOT ATOMIC`` blocks) among them, the GRANT and REVOKE statements sent
  (inside the blocks too; counted in the text sent, so a block that fails part-way runs
  fewer), and wall time.
* MongoDB (the wire-protocol peer): the original holds 10, then 100 roles; commands the
  peer answered, and wall time.

The first rotation creates the clone and grants it everything; later rotations find it
in line. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from devtools.mongo_peer import MongoPeer

if TYPE_CHECKING:
    from collections.abc import Callable

    from devtools.embedded import Embedded
    from devtools.mariadb import MariaDBServer
    from devtools.mongo_peer import Session


def _handler(env: Embedded) -> Any:
    from common.handler import RotationFunction
    from common.settings import Settings

    engine = importlib.import_module(env.handler_module).lambda_handler.rotator.engine
    return RotationFunction(engine, client=env.client, settings=Settings.from_environ(env.env))


def _rotations(
    env: Embedded, arn: str, rotations: int, count: Callable[[], dict[str, int]]
) -> list[tuple[float, dict[str, int]]]:
    """(wall ms, counts) per rotation; ``count`` reads the counters since its last call."""
    handler, found = _handler(env), []
    count()
    for _ in range(rotations):
        started = time.perf_counter()
        env.service.rotate(handler, arn)
        found.append(((time.perf_counter() - started) * 1000, count()))
    return found


def _report(label: str, results: list[tuple[float, dict[str, int]]]) -> None:
    first_ms, first = results[0]
    later_ms = statistics.median(ms for ms, _ in results[1:]) if len(results) > 1 else first_ms
    later = results[-1][1]
    counts = ", ".join(f"{key} {first[key]} / {later.get(key, 0)}" for key in first)
    print(f"  {label:<44} {first_ms:>7.0f} / {later_ms:>6.0f} ms   {counts}")


def redshift(rotations: int) -> None:
    from devtools.embedded import embedded
    from devtools.redshift import RedshiftStandIn
    from rotators.redshift.catalog import reads

    print(
        "\nRedshift stand-in, alternating users, 20 schemas (first / later rotations; counts first / later)"
    )
    with embedded("redshift") as env:
        server = env.server
        assert isinstance(server, RedshiftStandIn)
        for tables, views, routines in ((20, 2, 1), (2000, 200, 50)):
            user = f"wh{tables}"
            arn = env.user_secret(user, "alternating", dbname=user)
            started = time.perf_counter()
            server.create_warehouse(user, user, schemas=20, tables=tables, views=views, functions=routines)
            built = time.perf_counter() - started
            catalog = [read.statement for read in reads(user, f"{user}_clone", master=True)]
            mark = [len(server.statements)]

            def count(catalog: list[str] = catalog, mark: list[int] = mark) -> dict[str, int]:
                since, mark[0] = mark[0], len(server.statements)
                return {
                    "privilege reads": server.count_sent(catalog, since),
                    "statements": mark[0] - since,
                }

            label = f"{tables} tables, {views} views, {routines} routines (built {built:.0f} s)"
            _report(label, _rotations(env, arn, rotations, count))


def mariadb(rotations: int, sizes: list[int], hosts: int) -> None:
    from devtools.embedded import embedded
    from devtools.mariadb import MariaDBServer

    print(f"\nMariaDB, alternating users, grant lines over {hosts} host parts")
    with embedded("mariadb") as env:
        assert isinstance(env.server, MariaDBServer)
        for grant_lines in sizes:
            _mariadb_size(env, env.server, rotations, grant_lines, hosts)


def _mariadb_size(env: Embedded, server: MariaDBServer, rotations: int, grant_lines: int, hosts: int) -> None:
    """A user whose accounts at ``hosts`` host parts hold about ``grant_lines`` lines."""
    name = f"shop{grant_lines}"
    arn = env.user_secret(name, "alternating", dbname=name)
    password = env.current(arn)["password"]
    host_parts = ["%"] + [f"10.{index}.%" for index in range(1, hosts)]
    for host in host_parts[1:]:
        server.execute("CREATE USER %s@%s IDENTIFIED BY %s", (name, host, password))
    tables = -(-grant_lines // hosts)
    for index in range(tables):
        server.execute(f"CREATE TABLE {name}.t{index} (id int)")
    for host in host_parts:
        for index in range(tables):
            server.execute(f"GRANT SELECT ON {name}.t{index} TO %s@%s", (name, host))
    lines = sum(len(server.execute("SHOW GRANTS FOR %s@%s", (name, host))) for host in host_parts)
    server.execute("SET GLOBAL log_output = 'TABLE'")
    server.execute("SET GLOBAL general_log = 1")

    def count() -> dict[str, int]:
        rows = server.execute(
            "SELECT argument FROM mysql.general_log WHERE command_type IN ('Query', 'Execute') "
            "AND user_host NOT LIKE 'admin[%%'"
        )
        server.execute("TRUNCATE mysql.general_log")
        texts = [
            row[0].decode(errors="replace") if isinstance(row[0], bytes) else str(row[0]) for row in rows
        ]
        return {
            "round trips": len(texts),
            "SHOW GRANTS": sum(text.upper().startswith("SHOW GRANTS") for text in texts),
            "batches": sum(text.upper().startswith("BEGIN NOT ATOMIC") for text in texts),
            # Statements sent (inside the blocks too): a block that fails part-way runs fewer.
            "GRANT sent": sum(len(re.findall(r"(?:^|; )GRANT ", text, re.IGNORECASE)) for text in texts),
            "REVOKE sent": sum(len(re.findall(r"(?:^|; )REVOKE ", text, re.IGNORECASE)) for text in texts),
        }

    try:
        _report(f"{lines} grant lines of the original", _rotations(env, arn, rotations, count))
    finally:
        server.execute("SET GLOBAL general_log = 0")
        server.execute("TRUNCATE mysql.general_log")


class CountingPeer(MongoPeer):
    """The MongoDB peer, counting the commands it answers by name."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: Counter[str] = Counter()

    def command(self, session: Session, command: dict[str, Any]) -> dict[str, Any]:
        self.answered[next(iter(command))] += 1
        return super().command(session, command)


def mongodb(rotations: int, sizes: list[int]) -> None:
    from devtools import embedded as embedded_module

    print("\nMongoDB peer, alternating users")
    server_class, handler = embedded_module.ENGINES["mongodb"]
    embedded_module.ENGINES["mongodb"] = (CountingPeer, handler)
    try:
        with embedded_module.embedded("mongodb") as env:
            server = env.server
            assert isinstance(server, CountingPeer)
            for roles in sizes:
                name = f"shop{roles}"
                arn = env.user_secret(name, "alternating", dbname=name)
                for index in range(roles - len(server.roles_of(name, name) or set())):
                    server.grant_role(name, name, f"reader{index:03}", name)

                def count() -> dict[str, int]:
                    answered = dict(server.answered)
                    server.answered.clear()
                    management = ("usersInfo", "createUser", "updateUser", "connectionStatus")
                    return {
                        "commands": sum(answered.values()),
                        "user management": sum(answered.get(name, 0) for name in management),
                    }

                held = len(server.roles_of(name, name) or set())
                _report(f"{held} roles of the original", _rotations(env, arn, rotations, count))
    finally:
        embedded_module.ENGINES["mongodb"] = (server_class, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rotations", type=int, default=3)
    parser.add_argument("--grant-lines", type=int, action="append", help="default: 50 and 500")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--roles", type=int, action="append", help="default: 10 and 100")
    parser.add_argument("--engine", choices=("redshift", "mariadb", "mongodb"), action="append")
    args = parser.parse_args(argv)
    from common.observability import logger

    logger.setLevel("WARNING")
    chosen = args.engine or ["redshift", "mariadb", "mongodb"]
    if "redshift" in chosen:
        redshift(args.rotations)
    if "mariadb" in chosen:
        mariadb(args.rotations, args.grant_lines or [50, 500], args.hosts)
    if "mongodb" in chosen:
        mongodb(args.rotations, args.roles or [10, 100])
    return 0


if __name__ == "__main__":
    sys.exit(main())
