"""Redis rotations proven by real redis-py logins over verified TLS: with and without a
master user, the previous password kept until the next rotation, ACL rules untouched,
crashes between steps, restarts, hostile names, and refused logins counted by the server."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import DatabaseConnectionError, DatabaseLoginError, PermissionDeniedError
from common.observability import logger
from devtools.certs import CertificateAuthority
from devtools.redis_server import RedisServer, rules_without_passwords
from devtools.service import STEPS, LambdaContext
from rotators.redis.acl import password_hash
from rotators.redis.engine import RedisEngine
from tests.conftest import unique
from tests.helpers import handler_for, labels, move_current, value
from tests.redis.conftest import make_account

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationService
    from tests.redis.conftest import RedisAccount


def acl_rules(server: RedisServer, user: str) -> dict[str, Any]:
    """The user's ACL less its passwords; commands as a set (a restarted server lists the
    same rules in another order)."""
    rules = rules_without_passwords(server.getuser(user))
    return rules | {"commands": sorted(rules["commands"])}


def passwords_of(server: RedisServer, user: str) -> set[str]:
    return set(server.getuser(user)["passwords"])


def test_previous_password_works_until_the_next_rotation(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: RedisAccount,
) -> None:
    rules = acl_rules(redis_server, account.user)
    refused_before = redis_server.failed_logins()
    service.rotate(handler, account.arn)
    # No refused login during the rotation: the server's own count.
    assert redis_server.failed_logins() == refused_before
    first = value(sm_client, account.arn, "AWSCURRENT")
    assert first["username"] == account.user and first["password"] != account.password
    assert redis_server.can_login(account.user, first["password"])
    assert redis_server.can_login(account.user, account.password)  # AWSPREVIOUS still works
    assert passwords_of(redis_server, account.user) == {
        password_hash(first["password"]),
        password_hash(account.password),
    }

    service.rotate(handler, account.arn)
    second = value(sm_client, account.arn, "AWSCURRENT")
    assert redis_server.can_login(account.user, second["password"])
    assert redis_server.can_login(account.user, first["password"])
    assert not redis_server.can_login(account.user, account.password)  # the one before: gone
    assert redis_server.failed_logins() == refused_before + 1  # that one probe, nothing else
    assert acl_rules(redis_server, account.user) == rules
    assert {k: v for k, v in second.items() if k != "password"} == {
        k: v for k, v in value(sm_client, account.arn, "AWSPREVIOUS").items() if k != "password"
    }


def test_each_step_twice(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: RedisAccount,
) -> None:
    request = service.start(account.arn)
    for step in STEPS:
        handler(request.event(step), LambdaContext())
        handler(request.event(step), LambdaContext())
    assert labels(sm_client, account.arn)["AWSCURRENT"] == request.token
    current = value(sm_client, account.arn, "AWSCURRENT")
    assert redis_server.can_login(account.user, current["password"])
    assert redis_server.can_login(account.user, account.password)


@pytest.mark.parametrize("completed_steps", [1, 2, 3])
def test_crash_between_steps_never_refuses_awscurrent(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: RedisAccount,
    completed_steps: int,
) -> None:
    request = service.start(account.arn)
    for step in STEPS[:completed_steps]:
        handler(request.event(step), LambdaContext())
    # The function dies here: AWSCURRENT still logs in, whatever step was done.
    assert redis_server.can_login(account.user, value(sm_client, account.arn, "AWSCURRENT")["password"])
    retry = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=redis_server.ca_file)
    for step in STEPS:
        retry(request.event(step), LambdaContext())
    assert labels(sm_client, account.arn)["AWSCURRENT"] == request.token
    assert redis_server.can_login(account.user, value(sm_client, account.arn, "AWSCURRENT")["password"])
    assert redis_server.can_login(account.user, account.password)


def test_crash_inside_finish_between_label_moves(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: RedisAccount,
) -> None:
    request = service.start(account.arn)
    for step in STEPS[:3]:
        handler(request.event(step), LambdaContext())
    old = move_current(sm_client, account.arn, request.token)
    assert redis_server.can_login(account.user, value(sm_client, account.arn, "AWSCURRENT")["password"])
    handler(request.event("finishSecret"), LambdaContext())
    assert labels(sm_client, account.arn) == {"AWSCURRENT": request.token, "AWSPREVIOUS": old}


def test_a_user_that_may_not_set_its_passwords_is_told_to_add_a_master(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    account = make_account(
        redis_server, sm_client, service, with_master=False, rules=("~app:*", "+@read", "+@write")
    )
    request = service.start(account.arn)
    with pytest.raises(PermissionDeniedError, match=r"add a master secret \(masterarn\)"):
        handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=account.arn, VersionId=request.token)
    assert passwords_of(redis_server, account.user) == {password_hash(account.password)}


HOSTILE_NAME = "o'brien\"*?[x]>#!<%{app}\\;--"
ODD_RULES = (
    "~{app}:*",
    "%R~read:*",
    "%W~write:[ab]?*",
    "resetchannels",
    "&news.*",
    "&chan[12]",
    "+@read",
    "+@write",
    "-@dangerous",
    "+config|get",
    "+ping",
    "(+get ~selector:* &sel*)",
    "(+set %W~w:*)",
)


@pytest.mark.parametrize("with_master", [False, True], ids=["self", "master"])
def test_hostile_name_and_odd_patterns_survive_rotation_and_restart(
    sm_client: SecretsManagerClient, service: RotationService, with_master: bool
) -> None:
    server = RedisServer("aclfile").start()
    try:
        rules = (
            ODD_RULES if with_master else (*ODD_RULES, "+acl|setuser", "+acl|getuser", "+acl|save", "+info")
        )
        account = make_account(
            server, sm_client, service, with_master=with_master, user=HOSTILE_NAME, rules=rules
        )
        before = acl_rules(server, HOSTILE_NAME)
        handler = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=server.ca_file)
        service.rotate(handler, account.arn)
        service.rotate(handler, account.arn)
        server.restart()
        current = value(sm_client, account.arn, "AWSCURRENT")
        assert server.can_login(HOSTILE_NAME, current["password"])
        assert server.can_login(HOSTILE_NAME, value(sm_client, account.arn, "AWSPREVIOUS")["password"])
        assert not server.can_login(HOSTILE_NAME, account.password)
        assert acl_rules(server, HOSTILE_NAME) == before
    finally:
        server.stop()


@pytest.fixture(params=["aclfile", "config"])
def own_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    server = RedisServer(request.param).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("with_master", [False, True], ids=["self", "master"])
def test_a_restarted_server_accepts_the_new_password(
    own_server: RedisServer, sm_client: SecretsManagerClient, service: RotationService, with_master: bool
) -> None:
    account = make_account(own_server, sm_client, service, with_master=with_master)
    handler = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=own_server.ca_file)
    service.rotate(handler, account.arn)
    own_server.restart()
    assert own_server.can_login(account.user, value(sm_client, account.arn, "AWSCURRENT")["password"])
    assert own_server.can_login(account.user, account.password)


def test_a_crash_between_the_change_and_the_save_is_saved_by_the_retry(
    own_server: RedisServer, sm_client: SecretsManagerClient, service: RotationService
) -> None:
    account = make_account(own_server, sm_client, service, with_master=True)
    handler = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=own_server.ca_file)
    request = service.start(account.arn)
    handler(request.event("createSecret"), LambdaContext())
    pending = value(sm_client, account.arn, "AWSPENDING")["password"]
    # setSecret's ACL SETUSER ran, then the function died before ACL SAVE / CONFIG REWRITE.
    own_server.command("ACL", "SETUSER", account.user, "#" + password_hash(pending))
    for step in STEPS[1:]:
        handler(request.event(step), LambdaContext())
    own_server.restart()
    assert own_server.can_login(account.user, pending)
    assert own_server.can_login(account.user, account.password)


def test_untrusted_ca_is_refused_and_nothing_is_lost(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: RedisAccount,
    tmp_path: Path,
) -> None:
    other = CertificateAuthority.create(tmp_path, "other-ca")
    handler = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=str(other.cert_path))
    refused_before = redis_server.failed_logins()
    request = service.start(account.arn)
    with pytest.raises(DatabaseConnectionError, match="certificate verify failed"):
        handler(request.event("createSecret"), LambdaContext())
    assert redis_server.failed_logins() == refused_before
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=account.arn, VersionId=request.token)


def test_plaintext_is_never_tried_against_a_tls_server(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
) -> None:
    """``"ssl": false`` means plaintext only; this server speaks TLS only: a clear failure."""
    account = make_account(redis_server, sm_client, service, with_master=False)
    body = value(sm_client, account.arn, "AWSCURRENT") | {"ssl": False}
    from tests.helpers import store_secret

    arn = store_secret(sm_client, service, unique("plaintext"), body)
    request = service.start(arn)
    with pytest.raises(DatabaseConnectionError):
        handler(request.event("createSecret"), LambdaContext())


def test_finish_right_after_create_moves_nothing(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: RedisAccount,
) -> None:
    """finishSecret out of order: the pending password is not on the server yet, so no
    label moves and AWSCURRENT keeps working."""
    before = labels(sm_client, account.arn)
    request = service.start(account.arn)
    handler(request.event("createSecret"), LambdaContext())
    with pytest.raises(DatabaseLoginError):
        handler(request.event("finishSecret"), LambdaContext())
    assert labels(sm_client, account.arn)["AWSCURRENT"] == before["AWSCURRENT"]
    assert redis_server.can_login(account.user, account.password)


def test_an_abandoned_rotation_is_cleaned_up_by_the_next(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: RedisAccount,
) -> None:
    """An operator cancels a rotation after setSecret (AWSPENDING removed): its password,
    on no label any more, goes at the next rotation's setSecret; AWSCURRENT never stops."""
    abandoned = service.start(account.arn)
    handler(abandoned.event("createSecret"), LambdaContext())
    handler(abandoned.event("setSecret"), LambdaContext())
    orphan = value(sm_client, account.arn, "AWSPENDING")["password"]
    sm_client.update_secret_version_stage(
        SecretId=account.arn, VersionStage="AWSPENDING", RemoveFromVersionId=abandoned.token
    )
    assert redis_server.can_login(account.user, account.password)
    service.rotate(handler, account.arn)
    current = value(sm_client, account.arn, "AWSCURRENT")["password"]
    assert passwords_of(redis_server, account.user) == {
        password_hash(current),
        password_hash(account.password),
    }
    assert not redis_server.can_login(account.user, orphan)


def test_no_password_in_any_line_happy_or_failing(
    redis_server: RedisServer,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = io.StringIO()  # the lines as Lambda would ship them
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    accounts = [make_account(redis_server, sm_client, service, with_master=m) for m in (False, True)]
    for account in accounts:
        service.rotate(handler, account.arn)
        service.rotate(handler, account.arn)
    refused = make_account(redis_server, sm_client, service, with_master=False, rules=("~app:*", "+@read"))
    request = service.start(refused.arn)
    with pytest.raises(PermissionDeniedError) as raised:
        handler(request.event("createSecret"), LambdaContext())
    sensitive = [refused.password, request.rotation_token]
    for account in accounts:
        sensitive += [account.password, value(sm_client, account.arn, "AWSCURRENT")["password"]]
        sensitive.append(value(sm_client, account.arn, "AWSPREVIOUS")["password"])
        if account.master_arn:
            sensitive.append(value(sm_client, account.master_arn, "AWSCURRENT")["password"])
    printed = lines.getvalue() + str(raised.value)
    assert "rotation step done" in printed and "rotation step failed" in printed
    assert not [s for s in sensitive if s in printed]
