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


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        # May change users but not persist them the way this server does (its ACL file):
        # a restart would bring the old password back. The rule names the one command due.
        (
            ("+acl|setuser", "+acl|getuser", "+acl|dryrun", "+config|get", "+info", "+config|rewrite"),
            "persisted with ACL SAVE",
        ),
        # May not even ask ACL DRYRUN: the same rule probes the rights itself.
        (("+config|get",), "NOPERM"),
    ],
    ids=["no-persistence", "no-dryrun"],
)
def test_create_secret_and_the_preflight_apply_one_rule(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    rules: tuple[str, ...],
    reason: str,
) -> None:
    """createSecret refuses exactly what the preflight reports missing, in its words."""
    from common.errors import PermissionDeniedError
    from devtools.service import LambdaContext

    account = make_account(
        redis_server, sm_client, service, with_master=False, rules=("~app:*", "+@read", "+ping", *rules)
    )
    report = preflight(handler, account.arn)
    (capability,) = report["capabilities"]
    assert capability["held"] is False and reason in capability["detail"], capability
    before = redis_server.getuser(account.user)
    request = service.start(account.arn)
    with pytest.raises(PermissionDeniedError) as refused:
        handler(request.event("createSecret"), LambdaContext())
    assert capability["detail"] in str(refused.value)
    assert "add a master secret (masterarn)" in str(refused.value)
    assert redis_server.getuser(account.user) == before
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=account.arn, VersionId=request.token)
