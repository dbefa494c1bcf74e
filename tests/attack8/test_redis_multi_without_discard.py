"""Attack round 8: the Redis self-service probe (MULTI, queued command, DISCARD) for a
user that may run MULTI but not DISCARD. Real Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devtools.redis_server import RedisServer
from rotators.redis.engine import RedisEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, labels, store_secret, value
from tests.operator.test_preflight import preflight
from tests.redis.conftest import redis_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.service import RotationService


def _user_without_discard(
    server: RedisServer, sm: SecretsManagerClient, service: RotationService
) -> tuple[str, str]:
    user, password = unique("app"), new_password()
    rules = [f"~{user}:*", "+@read", "+ping", "+acl|setuser", "+acl|getuser", "+config|get", "+info"]
    rules += ["+config|rewrite", "+acl|save", "+multi", "+exec"]  # MULTI yes, DISCARD no
    server.create_user(user, password, None, *rules)
    return user, store_secret(sm, service, unique("secret"), redis_secret(server, user, password))


def test_preflight_names_a_refused_discard(sm_client: SecretsManagerClient, service: RotationService) -> None:
    """Severity: low/medium (the preflight, the operator's first tool, crashes instead of
    reporting; nothing is changed).

    Expected: the preflight returns a report (the capability held, refused naming DISCARD,
    or "not checked"). Actual: see the xfail (an exception out of the probe's finally)."""
    server = RedisServer("config").start()
    try:
        _user, arn = _user_without_discard(server, sm_client, service)
        handler: Any = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=server.ca_file)
        report = preflight(handler, arn)
        (capability,) = report["capabilities"]
        assert capability["held"] is not True or "DISCARD" in capability["detail"], capability
    finally:
        server.stop()


def test_rotation_of_a_user_without_discard(
    sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """Severity: medium (a user with every right a rotation uses - ACL SETUSER, ACL
    GETUSER, INFO, CONFIG REWRITE/ACL SAVE - but not DISCARD can never be rotated; every
    createSecret fails as an *unexpected* error with a traceback; nothing labelled is
    refused. Not new today: at d705720 the persistence probe already used MULTI/DISCARD
    and fails the same way; today's change routes ACL SETUSER through it too).

    Expected: the rotation completes (the user may set its passwords and persist them),
    or fails with a permission error naming DISCARD, AWSCURRENT still logging in.
    Actual: UnexpectedError "NoPermissionError: this user has no permissions to run the
    'discard' command" from ``_queued_then_discarded``'s finally, at every createSecret."""
    from common.errors import RotationError, UnexpectedError

    server = RedisServer("config").start()
    try:
        user, arn = _user_without_discard(server, sm_client, service)
        before = labels(sm_client, arn)
        handler: Any = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=server.ca_file)
        try:
            service.rotate(handler, arn)
        except RotationError as error:
            assert not isinstance(error, UnexpectedError), f"{type(error).__name__}: {error}"
            assert "discard" in str(error).lower(), f"unnamed cause: {error}"
            assert labels(sm_client, arn)["AWSCURRENT"] == before["AWSCURRENT"]
        current = value(sm_client, arn, "AWSCURRENT")
        server.connect_as(user, current["password"]).close()
    finally:
        server.stop()


def test_a_session_left_in_multi_is_never_reused(
    sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """Fix of A8-1: after the probe's refused DISCARD, the session still in MULTI is
    closed; the next command runs on a new session (authenticated as before), not queued
    in a transaction that never runs (``PING`` would answer QUEUED there), and the
    capability is "not checked", naming DISCARD."""
    from rotators.redis.dataplane import may_change, ping

    server = RedisServer("config").start()
    try:
        user, arn = _user_without_discard(server, sm_client, service)
        password = value(sm_client, arn, "AWSCURRENT")["password"]
        client = server.connect_as(user, password)
        try:
            capability = may_change(client, user, user, "set its own passwords")
            assert capability.held is None, capability
            assert "DISCARD" in capability.detail and capability.detail.startswith("not checked"), capability
            assert ping(client) is True  # a new session: PONG, not QUEUED
            assert isinstance(client.execute_command("ACL GETUSER", user), dict)  # type: ignore[no-untyped-call]
        finally:
            client.close()
    finally:
        server.stop()
