"""Attack round 4 (G): self-managed Redis, createSecret's capability rule (shared with the
preflight, ``dataplane.may_change``).

Now held: the rule checks the exact command the server persists its ACL with (``ACL
SAVE`` with an ACL file, ``CONFIG REWRITE`` with only a configuration file), with ``ACL
DRYRUN`` or, for a user that may not run it, probed (queued in a discarded ``MULTI``); a
user that may run neither is not checked (createSecret writes nothing) and setSecret's
``NOPERM`` names the command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.errors import RotationError
from devtools.redis_server import RedisServer
from devtools.service import LambdaContext
from rotators.redis.engine import RedisEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, labels, store_secret
from tests.redis.conftest import redis_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.service import RotationService


@pytest.mark.parametrize(
    "probe",
    [("+acl|dryrun",), ("+multi", "+discard"), ()],
    ids=["acl-dryrun", "probed-in-multi", "not-checked"],
)
def test_create_secret_accepts_a_user_that_may_not_persist_the_way_the_server_does(
    probe: tuple[str, ...],
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Held now: createSecret refuses, naming ACL SAVE, before AWSPENDING is stored. Was
    (severity medium-low (a rotation stuck at setSecret after an unpersisted in-memory
    change, instead of the clear createSecret refusal the issue asks for).

    The server keeps its users in an ACL file, so setSecret persists with ``ACL SAVE``.
    The user may change its passwords and may ``CONFIG REWRITE`` but not ``ACL SAVE``.
    may_change() accepts the user when *either* persistence command is allowed, whatever
    the server uses (with ACL DRYRUN); the probe without DRYRUN calls _persistence(),
    which only reads settings, never checks the command it picks.

    Expected: createSecret refuses, naming ACL SAVE and the master secret. Was:
    createSecret stored AWSPENDING and setSecret changed the ACL in memory, then failed
    on NOPERM for ACL SAVE (every retry the same).

    A user that may run neither ACL DRYRUN nor MULTI cannot be asked without running the
    command (CONFIG REWRITE or ACL SAVE writes): createSecret does not check it, and
    setSecret's NOPERM names ACL SAVE."""
    user, password = unique("app"), new_password()
    rules = [f"~{user}:*", "+@read", "+ping", "+acl|setuser", "+acl|getuser", "+config|get"]
    rules += ["+config|rewrite", "+info", *probe]
    redis_server.create_user(user, password, None, *rules)
    arn = store_secret(sm_client, service, unique("secret"), redis_secret(redis_server, user, password))
    handler: Any = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=redis_server.ca_file)
    request = service.start(arn)
    failures: list[str] = []
    for step in ("createSecret", "setSecret"):
        try:
            handler(request.event(step), LambdaContext())
        except RotationError as error:
            failures.append(f"{step}: {error}")
    assert failures, "the rotation went through"
    if probe:
        assert failures[0].startswith("createSecret"), f"refused only later: {failures}"
        assert "masterarn" in failures[0]
    else:
        assert failures[0].startswith("setSecret"), failures
    assert "ACL SAVE" in failures[0]
    assert labels(sm_client, arn).get("AWSPENDING") in (None, request.token)


@pytest.mark.parametrize(
    "probe",
    [("+acl|dryrun",), ("+multi", "+discard")],
    ids=["acl-dryrun", "probed-in-multi"],
)
def test_create_secret_refuses_a_user_that_may_acl_save_on_a_server_that_rewrites_its_config(
    probe: tuple[str, ...], sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """Held: the mirror case. A server with no ACL file persists with ``CONFIG REWRITE``;
    a user that may ``ACL SAVE`` but not ``CONFIG REWRITE`` is refused at createSecret,
    naming CONFIG REWRITE, on every path of the rule that asks (one that may run neither
    ACL DRYRUN nor MULTI is not checked: see the test above), before anything is stored."""
    server = RedisServer("config").start()
    try:
        user, password = unique("app"), new_password()
        rules = [f"~{user}:*", "+@read", "+ping", "+acl|setuser", "+acl|getuser", "+config|get"]
        server.create_user(user, password, None, *rules, "+acl|save", "+info", *probe)
        arn = store_secret(sm_client, service, unique("secret"), redis_secret(server, user, password))
        handler: Any = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=server.ca_file)
        request = service.start(arn)
        with pytest.raises(RotationError, match="CONFIG REWRITE") as refused:
            handler(request.event("createSecret"), LambdaContext())
        assert "ACL SAVE" not in str(refused.value).split(":")[-1]
        assert labels(sm_client, arn).get("AWSPENDING") in (None, request.token)
    finally:
        server.stop()
