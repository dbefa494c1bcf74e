"""The preflight on Redis: what each way of rotating needs, asked with ACL DRYRUN, and
nothing changed on the server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.operator.test_preflight import preflight
from tests.redis.conftest import make_account

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.redis_server import RedisServer
    from devtools.service import RotationService


@pytest.mark.parametrize("with_master", [False, True], ids=["self", "master"])
def test_preflight_finds_what_each_way_needs(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    with_master: bool,
) -> None:
    account = make_account(redis_server, sm_client, service, with_master=with_master)
    before = redis_server.getuser(account.user)
    report = preflight(handler, account.arn)
    assert report["ok"] is True, report
    assert report["strategy"] == ("dual-passwords" if with_master else "single-user")
    assert [c["held"] for c in report["capabilities"]] == [True], report
    assert redis_server.getuser(account.user) == before


def test_preflight_finds_a_user_that_may_not_set_its_passwords(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    rules = ("~app:*", "+@read", "+ping", "+acl|dryrun")
    account = make_account(redis_server, sm_client, service, with_master=False, rules=rules)
    report = preflight(handler, account.arn)
    assert report["ok"] is False
    (capability,) = report["capabilities"]
    assert capability["held"] is False and "masterarn" in capability["detail"], capability
