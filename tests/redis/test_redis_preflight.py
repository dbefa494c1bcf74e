"""The preflight on Redis: what each way of rotating needs, asked with ACL DRYRUN (or
probed in a discarded MULTI), and nothing changed on the server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from devtools.redis_server import RedisServer
from devtools.service import LambdaContext
from rotators.redis.engine import RedisEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, labels, store_secret
from tests.operator.test_preflight import preflight
from tests.redis.conftest import make_account, redis_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
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


#: The commands that write a server's users or its files.
WRITES = ("acl|setuser", "acl|save", "config|rewrite")


def writes_run(server: RedisServer) -> dict[str, int]:
    """How many times each of :data:`WRITES` has run (``INFO commandstats``: a command
    queued after ``MULTI`` and discarded never runs, so it is not counted)."""
    stats = server.command("INFO", "commandstats")
    return {command: int(stats.get(f"cmdstat_{command}", {}).get("calls", 0)) for command in WRITES}


@pytest.mark.parametrize("multi", [True, False], ids=["probed-in-multi", "no-multi"])
def test_without_acl_dryrun_the_preflight_and_create_secret_write_nothing(
    multi: bool, sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """'Reads only' (the preflight) and 'createSecret changes nothing' hold for a user that
    may not run ACL DRYRUN: ACL SETUSER and the persistence command are only queued in a
    discarded MULTI, and never run for a user that may not run MULTI either (it is then
    "not checked"). Was: ACL SETUSER ran for real, and without MULTI so did CONFIG
    REWRITE, which wrote the configuration file, persisting a setting an operator had
    changed only at run time."""
    server = RedisServer("config").start()
    try:
        user, password = unique("app"), new_password()
        rules = [f"~{user}:*", "+@read", "+ping", "+acl|setuser", "+acl|getuser", "+config|get", "+info"]
        rules += ["+config|rewrite", *(["+multi", "+discard"] if multi else [])]
        server.create_user(user, password, None, *rules)
        # An operator's temporary setting, meant to be gone at the next restart.
        server.command("CONFIG", "SET", "slowlog-max-len", "4321")
        on_disk, before, run = server.config_path.read_text(), server.getuser(user), writes_run(server)
        arn = store_secret(sm_client, service, unique("secret"), redis_secret(server, user, password))
        handler: Any = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=server.ca_file)

        (capability,) = preflight(handler, arn)["capabilities"]
        request = service.start(arn)
        handler(request.event("createSecret"), LambdaContext())

        assert writes_run(server) == run, "a write command ran"
        assert server.config_path.read_text() == on_disk, "the configuration file was rewritten"
        assert server.getuser(user) == before
        if multi:
            assert capability["held"] is True and "probed" in capability["detail"], capability
        else:
            assert capability["held"] is None and "not checked" in capability["detail"], capability
        assert labels(sm_client, arn).get("AWSPENDING") == request.token
    finally:
        server.stop()


def test_the_preflight_stops_before_the_function_s_time_out_with_a_named_error(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """The preflight keeps the invocation's deadline as a step does: a login starts only
    when the connect time-out (5 s) is left besides the 3 s margin. Was: it had no
    deadline, so logins and RDS calls could run into Lambda's time-out, which kills the
    invocation without a word."""
    from common.errors import StepTimeLimitError

    account = make_account(redis_server, sm_client, service, with_master=False)
    with pytest.raises(StepTimeLimitError, match="logging in with the AWSCURRENT credentials"):
        preflight(handler, account.arn, LambdaContext(timeout_s=7))
    assert preflight(handler, account.arn, LambdaContext(timeout_s=9))["ok"] is True
