"""The ``harness`` fixture: every scenario runs once per engine, on its real server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.engines import SCENARIO_ENGINES, Harness, harness_named, store_master_secret
from tests.helpers import handler_for, store_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationService


@pytest.fixture(params=SCENARIO_ENGINES)
def harness(request: pytest.FixtureRequest) -> Harness:
    return harness_named(request.param, request)


@pytest.fixture
def handler(harness: Harness, sm_client: SecretsManagerClient) -> RotationFunction[Any]:
    return handler_for(harness.engine, sm_client, DB_CA_BUNDLE=harness.server.ca_file)


@dataclass
class Account:
    """A test's database user and its secret (rotation enabled)."""

    user: str
    password: str
    dbname: str
    arn: str


@pytest.fixture
def account(harness: Harness, sm_client: SecretsManagerClient, service: RotationService) -> Account:
    user, password, dbname = harness.new_user()
    body = harness.secret(user, password, dbname, dbClusterIdentifier="cluster-1", team="payments")
    return Account(user, password, dbname, store_secret(sm_client, service, user, body))


@pytest.fixture
def master_arn(harness: Harness, sm_client: SecretsManagerClient, service: RotationService) -> str:
    return store_master_secret(harness, sm_client, service)


@pytest.fixture(params=["single", "alternating"])
def strategy_arn(
    request: pytest.FixtureRequest,
    harness: Harness,
    account: Account,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> str:
    """The account's secret for the single-user strategy, or a twin for alternating users."""
    if request.param == "single":
        return account.arn
    master = request.getfixturevalue("master_arn")
    body = harness.secret(account.user, account.password, account.dbname, masterarn=master)
    return store_secret(sm_client, service, f"{account.user}-alternating", body)
