"""Rotation-aware connections on every engine: stale caches, dropped sessions, and
credentials nobody accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from appkit.connections import RotationAwareConnection
from appkit.retrieval import PowertoolsFetcher, SecretCache
from common.errors import DatabaseLoginError
from common.settings import Settings
from devtools.service import STEPS, LambdaContext

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationService
    from tests.engines import Harness
    from tests.scenarios.conftest import Account


def connection_for(harness: Harness, client: SecretsManagerClient, arn: str) -> RotationAwareConnection[Any]:
    cache = SecretCache(PowertoolsFetcher(client), max_age=3600)  # long: only refreshes read again
    settings = Settings.from_environ({"DB_CA_BUNDLE": harness.server.ca_file})
    return RotationAwareConnection(harness.engine, arn, cache, settings=settings, reuse=False)


def test_stale_cache_is_refreshed_once_and_the_pending_window_is_served(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
) -> None:
    app = connection_for(harness, sm_client, account.arn)
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
    app = connection_for(harness, sm_client, account.arn)
    app.reuse = True
    assert app.run(harness.probe) == 1
    session = app._session
    harness.engine.close(session)  # as a server restart or a killed session would
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
