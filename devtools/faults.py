"""Throwaway servers that can be stopped or killed mid-rotation and started again.

The ordinary throwaway servers trade durability for speed (``fsync`` off): an abrupt stop
then loses committed password changes, and a test of the rotator would measure the
harness. These subclasses turn durability on once started, and add :meth:`halt` (a
clean-but-immediate stop, or SIGKILL) and :meth:`resume` on the same data directory.
"""

from __future__ import annotations

import signal
import time
from typing import Literal

from devtools.mariadb import MariaDBServer
from devtools.postgres import PostgresServer
from devtools.processes import stop_child

Halt = Literal["stop", "kill"]


class DurablePostgres(PostgresServer):
    """PostgreSQL with ``fsync``, ``synchronous_commit`` and ``full_page_writes`` on."""

    def start(self) -> DurablePostgres:
        super().start()
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            self.execute(f"ALTER SYSTEM SET {setting} = on")
        self.execute("SELECT pg_reload_conf()")
        return self

    def halt(self, how: Halt) -> None:
        """``stop``: SIGQUIT, an immediate shutdown (no checkpoint, like a crash of the
        server); ``kill``: SIGKILL to the postmaster (its children exit when they notice)."""
        assert self._process is not None, "start() the server first"
        stop_child(self._process, timeout=60, how=signal.SIGQUIT if how == "stop" else signal.SIGKILL)
        if how == "kill":
            # Orphaned backends keep the shared memory until they exit.
            time.sleep(0.3)

    def resume(self) -> None:
        """Start the server again on the same data directory (crash recovery included)."""
        self._launch(self.port)


class DurableMariaDB(MariaDBServer):
    """MariaDB with InnoDB flushing its log at every commit. Accounts live in
    ``mysql.global_priv``, an Aria table that is transactional and crash-safe as it is
    (``test_durable_servers_keep_a_password_change_through_a_kill`` shows it)."""

    def start(self) -> DurableMariaDB:
        super().start()
        self.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
        # Restarts use the durable setting from the start.
        self.command = [
            "--innodb-flush-log-at-trx-commit=1"
            if arg.startswith("--innodb-flush-log-at-trx-commit")
            else arg
            for arg in self.command
        ]
        return self

    def halt(self, how: Halt) -> None:
        """``stop``: SIGTERM (a clean shutdown); ``kill``: SIGKILL."""
        assert self._process is not None, "start() the server first"
        stop_child(self._process, timeout=60, how=signal.SIGTERM if how == "stop" else signal.SIGKILL)

    def resume(self) -> None:
        """Start ``mariadbd`` again with the command line it was started with."""
        self.spawn()
        self._wait_until_ready(timeout=60)
