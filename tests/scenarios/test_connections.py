"""Rotation-aware connections on every engine: stale caches, dropped sessions, and
credentials nobody accepts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from appkit.connections import RotationAwareConnection
from appkit.retrieval import REFERENCE_PREFIX, PowertoolsFetcher, SecretCache
from appkit.sessions import MySQLSessions
from common.errors import DatabaseLoginError
from common.settings import Settings
from devtools.service import STEPS, LambdaContext
from tests.conftest import REGION
from tests.engines import MariaDBHarness, PostgresHarness
from tests.helpers import store_secret
from tests.scenarios.conftest import Account

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService
    from tests.engines import Harness


def connection_for(harness: Harness, client: SecretsManagerClient, arn: str) -> RotationAwareConnection[Any]:
    """``arn`` may be a Parameter Store reference (read through moto's SSM)."""
    import boto3

    fetcher = PowertoolsFetcher(client, boto3.client("ssm", region_name=REGION))
    cache = SecretCache(fetcher, max_age=3600)  # long: only refreshes read again
    settings = Settings.from_environ({"DB_CA_BUNDLE": harness.server.ca_file})
    return RotationAwareConnection(harness.engine, arn, cache, settings=settings, reuse=False)


@pytest.mark.parametrize("named_by", ["arn", "parameter-store-reference"])
def test_stale_cache_is_refreshed_once_and_the_pending_window_is_served(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
    named_by: str,
) -> None:
    secret_id = account.arn if named_by == "arn" else f"{REFERENCE_PREFIX}{account.user}"
    app = connection_for(harness, sm_client, secret_id)
    assert app.run(harness.probe) == 1
    request = service.start(account.arn)
    handler(request.event("createSecret"), LambdaContext())
    handler(request.event("setSecret"), LambdaContext())
    # The database has the pending password; AWSCURRENT still holds the refused one.
    refused_before = harness.server.failed_logins()
    assert app.run(harness.probe) == 1
    assert app.run(harness.probe) == 1  # the working credentials are remembered
    assert harness.server.failed_logins() - refused_before == 1
    for step in STEPS[2:]:
        handler(request.event(step), LambdaContext())
    assert app.run(harness.probe) == 1
    assert app.refreshes == 1


def test_a_dropped_reused_session_is_replaced(
    harness: Harness,
    sm_client: SecretsManagerClient,
    account: Account,
) -> None:
    """A kept session closed on the client side is found before any work is sent (no
    retry allowed). On MongoDB and Redshift this pins the private driver attributes
    ``appkit.sessions`` reads for want of a public flag (PyMongo ``_closed``,
    redshift_connector ``_sock``): a driver upgrade that renames them fails here."""
    app = connection_for(harness, sm_client, account.arn)
    app.reuse = True
    assert app.run(harness.probe) == 1
    session = app._session
    assert app.run(harness.probe) == 1
    assert app._session is session  # a live kept session is kept: not "broken" by mistake
    harness.engine.close(session)
    assert app.run(harness.probe) == 1
    assert app._session is not session


def test_credentials_nobody_accepts_fail_clearly_and_boundedly(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
) -> None:
    app = connection_for(harness, sm_client, account.arn)
    harness.set_password(account.user, "Changed-by-someone-1", account.dbname)
    with pytest.raises(
        DatabaseLoginError, match="refused the credentials of .* also after reading"
    ) as raised:
        app.run(harness.probe)
    assert account.password not in str(raised.value)
    fetcher_calls = app.cache.fetches.total()
    assert fetcher_calls <= 4  # current, current refreshed, pending, current once more


# --- Units of work: transactions, and work that must not run twice -------------------------


# How the drivers say that the server ended the session under a statement.
SESSION_LOST = r"(?i)terminat|lost connection|closed unexpectedly|server closed|gone away"


class Writable:
    """A table the account may write to, on a real server, and an administrator's hand
    that ends the account's sessions (and waits until the server has ended them)."""

    def __init__(self, harness: Harness, account: Account) -> None:
        self.harness, self.account = harness, account
        self.table = f"{account.dbname}.writes" if harness.name == "mariadb" else "writes"
        self._admin(f"CREATE TABLE {self.table} (n INT)")
        if harness.name == "postgresql":
            self._admin(f'GRANT ALL ON writes TO "{account.user}"')

    def _admin(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        server: Any = self.harness.server
        if self.harness.name == "postgresql":
            return list(server.execute(statement, params, dbname=self.account.dbname))
        return list(server.execute(statement, params))

    def count(self) -> int:
        return int(self._admin(f"SELECT count(*) FROM {self.table}")[0][0])

    def insert(self, connection: Any) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {self.table} VALUES (1)")
        return 1

    def end_sessions(self) -> None:
        if self.harness.name == "postgresql":
            # With a time-out the call waits until each backend has exited.
            self._admin(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s",
                (self.account.user,),
            )
            return
        for (thread_id,) in self._admin(
            "SELECT id FROM information_schema.processlist WHERE user = %s", (self.account.user,)
        ):
            self._admin(f"KILL {int(thread_id)}")
        deadline = time.monotonic() + 10
        while self._admin(
            "SELECT id FROM information_schema.processlist WHERE user = %s", (self.account.user,)
        ):
            assert time.monotonic() < deadline, "the server did not end the sessions"
            time.sleep(0.02)


@pytest.fixture(params=["postgresql", "mariadb"])
def writable(
    request: pytest.FixtureRequest, sm_client: SecretsManagerClient, service: RotationService
) -> Writable:

    harness: Harness = (
        PostgresHarness(request.getfixturevalue("postgres"))
        if request.param == "postgresql"
        else MariaDBHarness(request.getfixturevalue("mariadb"))
    )
    user, password, dbname = harness.new_user()
    arn = store_secret(sm_client, service, user, harness.secret(user, password, dbname))
    return Writable(harness, Account(user, password, dbname, arn))


def kept_connection(writable: Writable, client: SecretsManagerClient) -> RotationAwareConnection[Any]:
    """A connection that keeps its session; MySQL sessions are pinged whenever idle."""
    app = connection_for(writable.harness, client, writable.account.arn)
    app.reuse = True
    if writable.harness.name == "mariadb":
        app.sessions = MySQLSessions(ping_after=0.0)
    assert app.run(writable.harness.probe) == 1
    return app


def write_then_lose_the_session(writable: Writable, times: int = 1) -> Callable[[Any], int]:
    """Work that writes (committed: as a work that commits, or any autocommit session)
    and then loses its session to the server, the first ``times`` times it runs."""
    losses = iter(range(times))

    def work(connection: Any) -> int:
        writable.insert(connection)
        connection.commit()
        if next(losses, None) is not None:
            writable.end_sessions()
        return writable.harness.probe(connection)

    return work


def test_a_write_is_not_repeated_when_the_session_breaks_under_it(
    writable: Writable, sm_client: SecretsManagerClient
) -> None:
    app = kept_connection(writable, sm_client)
    with pytest.raises(Exception, match=SESSION_LOST):
        app.run(write_then_lose_the_session(writable))
    assert writable.count() == 1  # not run a second time
    assert app.run(writable.insert) == 1  # the next unit gets a new session
    assert writable.count() == 2


def test_retry_runs_idempotent_work_once_more_on_a_new_session(
    writable: Writable, sm_client: SecretsManagerClient
) -> None:
    app = kept_connection(writable, sm_client)
    assert app.run(write_then_lose_the_session(writable), retry=True) == 1
    assert writable.count() == 2  # the caller said the work may run again: it did, once
    with pytest.raises(Exception, match=SESSION_LOST):
        app.run(write_then_lose_the_session(writable, times=2), retry=True)  # never in a loop
    assert writable.count() == 4


def test_a_kept_session_the_server_ended_is_replaced_before_the_work_is_sent(
    writable: Writable, sm_client: SecretsManagerClient
) -> None:
    app = kept_connection(writable, sm_client)
    session = app._session
    writable.end_sessions()  # a server restart, an idle time-out, an administrator
    assert app.run(writable.insert) == 1  # no error, and no retry was allowed
    assert writable.count() == 1
    assert app._session is not session


def test_each_unit_of_work_is_a_transaction_of_its_own_on_postgresql(
    postgres: PostgresServer, sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """psycopg2 opens a transaction at the first statement: a kept session must not keep
    it (now() would stand still, and the session would hold its snapshot and locks)."""
    harness = PostgresHarness(postgres)
    user, password, dbname = harness.new_user()
    arn = store_secret(sm_client, service, user, harness.secret(user, password, dbname))
    app = connection_for(harness, sm_client, arn)
    app.reuse = True

    def now(connection: Any) -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT now()::text")
            return str(cursor.fetchone()[0])

    first = app.run(now)
    time.sleep(0.05)
    assert app.run(now) != first
    states = postgres.execute("SELECT state FROM pg_stat_activity WHERE usename = %s", (user,))
    assert states == [("idle",)]  # the kept session, not "idle in transaction"
    writable = Writable(harness, Account(user, password, dbname, arn))
    app.run(writable.insert)
    assert writable.count() == 1  # committed: another session sees it at once

    def insert_then_fail(connection: Any) -> None:
        writable.insert(connection)
        raise RuntimeError("the application's own failure")

    with pytest.raises(RuntimeError, match="own failure"):
        app.run(insert_then_fail)
    assert writable.count() == 1  # a failed unit is rolled back
