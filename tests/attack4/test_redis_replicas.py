"""Attack round 4 (G): self-managed Redis with a replica. Redis never replicates ACL
users: each node keeps its own (an operator creates the user on every node, as the
ElastiCache/MemoryDB services do for their clusters). A rotation that changed one node
left the other refusing AWSCURRENT.

Now held: the engine reads ``INFO replication`` and refuses a node that is a replica or
has connected replicas, naming the nodes, the reason and the fixes, at createSecret when
the secret's user may run ``INFO``, and always in the session that changes the passwords
before it changes them; ``REDIS_ROTATE_NAMED_NODE_ONLY`` (one secret per node) rotates the
named node only, by design."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

import pytest

from common.errors import RotationError
from devtools.redis_server import RedisServer
from devtools.service import STEPS, LambdaContext
from rotators.redis.engine import RedisEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, labels, store_secret, value
from tests.redis.conftest import make_account, redis_secret

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.service import RotationService


#: An application user that may not run INFO: createSecret cannot tell from its session.
NO_INFO = ("~app:*", "+@read", "+ping")


@pytest.fixture(scope="module")
def primary_and_replica() -> Iterator[tuple[RedisServer, RedisServer]]:
    """Two throwaway servers, the second a replica of the first over TLS."""
    primary, replica = RedisServer("aclfile").start(), RedisServer("aclfile").start()
    try:
        for key, setting in (
            ("tls-replication", "yes"),
            ("masteruser", primary.admin_user),
            ("masterauth", primary.admin_password),
            ("tls-ca-cert-file", primary.ca_file),
        ):
            replica.command("CONFIG", "SET", key, setting)
        replica.command("REPLICAOF", primary.host, str(primary.port))
        deadline = time.monotonic() + 30
        while replica.command("INFO", "replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not link up"
            time.sleep(0.1)
        yield primary, replica
    finally:
        primary.stop()
        replica.stop()


@pytest.mark.parametrize("named", ["primary", "replica"])
def test_a_rotation_leaves_the_other_node_refusing_awscurrent(
    named: Literal["primary", "replica"],
    primary_and_replica: tuple[RedisServer, RedisServer],
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Held now: createSecret refuses, naming the replication (``replica``), before anything
    is stored, and neither node changes. Was (severity medium: lockout of every reader of
    the other node; no error, no warning):

    The user exists with the same password on the primary and its replica (ACL users are
    per node). The secret names one of them; the rotation runs its four steps, each
    "proven" on that node only, and AWSCURRENT moves. The engine never asks the node
    about its replication (``INFO replication``: ``role``, ``connected_slaves``), unlike
    the RDS engines, which find a reader's writer and wait for replicas.

    Expected: either the rotation refuses before anything changes, naming the replica(s),
    or every node of the replication set accepts AWSCURRENT when the labels move.
    Was: the rotation succeeded and the other node refused AWSCURRENT (a replica named
    in the secret even took the ACL change the primary never sees)."""
    primary, replica = primary_and_replica
    target, other = (primary, replica) if named == "primary" else (replica, primary)
    user, password = unique("app"), new_password()
    for node in (primary, replica):
        node.create_user(user, password)
    arn = store_secret(sm_client, service, unique("secret"), redis_secret(target, user, password))
    handler = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=target.ca_file)
    request = service.start(arn)
    refused: list[str] = []
    for step in STEPS:
        try:
            handler(request.event(step), LambdaContext())
        except RotationError as error:
            refused.append(f"{step}: {error}")
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    rotated = labels(sm_client, arn)["AWSCURRENT"] == request.token
    if not rotated:
        assert refused and "replica" in refused[0], refused
        unchanged = other.can_login(user, password) and target.can_login(user, password)
        assert unchanged, "a refused rotation changed a node"
        return
    # Booleans first: a failing assertion must not print a password.
    named_accepts, partner_accepts = target.can_login(user, current), other.can_login(user, current)
    assert named_accepts, "the named node refuses AWSCURRENT"
    assert partner_accepts, f"the {named}'s partner refuses AWSCURRENT after the rotation"


def test_the_master_path_refuses_before_changing_a_node(
    primary_and_replica: tuple[RedisServer, RedisServer],
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Held: with a master secret and a user that may not run ``INFO`` (createSecret's
    check on its session cannot tell), setSecret's master session reads the replication
    and refuses before changing anything; the labels never move and both nodes keep
    accepting the current password only."""
    primary, replica = primary_and_replica
    account = make_account(primary, sm_client, service, with_master=True, rules=NO_INFO)
    user, password, arn = account.user, account.password, account.arn
    replica.create_user(user, password, None, *NO_INFO)
    handler = handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=primary.ca_file)
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext())
    pending = value(sm_client, arn, "AWSPENDING")["password"]
    with pytest.raises(RotationError, match=r"connected replica\(s\): .*REDIS_ROTATE_NAMED_NODE_ONLY"):
        handler(request.event("setSecret"), LambdaContext())
    assert labels(sm_client, arn)["AWSCURRENT"] != request.token
    held = [(node.can_login(user, password), node.can_login(user, pending)) for node in (primary, replica)]
    assert held == [(True, False), (True, False)], "a refused setSecret changed a node"


def test_the_opt_in_rotates_the_named_node_only(
    primary_and_replica: tuple[RedisServer, RedisServer],
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Held: ``REDIS_ROTATE_NAMED_NODE_ONLY=true`` (one secret per node) rotates the named
    replica's user and leaves the primary's user as it was: the operator chose that each
    node's users have a secret of their own."""
    primary, replica = primary_and_replica
    user, password = unique("app"), new_password()
    for node in (primary, replica):
        node.create_user(user, password)
    arn = store_secret(sm_client, service, unique("secret"), redis_secret(replica, user, password))
    handler = handler_for(
        RedisEngine(environ={"REDIS_ROTATE_NAMED_NODE_ONLY": "true"}), sm_client, DB_CA_BUNDLE=replica.ca_file
    )
    service.rotate(handler, arn)
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    assert current != password
    held = (
        replica.can_login(user, current),
        primary.can_login(user, current),
        primary.can_login(user, password),
    )
    assert held == (True, False, True), held


def test_the_preflight_reports_the_replication(
    primary_and_replica: tuple[RedisServer, RedisServer],
    sm_client: SecretsManagerClient,
    service: RotationService,
) -> None:
    """Held: the preflight (read only) reports the master's capability missing on a primary
    with a replica, in the words setSecret would refuse with, and changes nothing."""
    from tests.operator.test_preflight import preflight

    primary, replica = primary_and_replica
    account = make_account(primary, sm_client, service, with_master=True, rules=NO_INFO)
    before = primary.getuser(account.user)
    report = preflight(handler_for(RedisEngine(), sm_client, DB_CA_BUNDLE=primary.ca_file), account.arn)
    assert report["ok"] is False, report
    (capability,) = report["capabilities"]
    assert capability["held"] is False, capability
    assert f"{replica.host}:{replica.port}" in capability["detail"], capability
    assert "never replicates ACL users" in capability["detail"], capability
    assert primary.getuser(account.user) == before


def test_a_bad_named_node_setting_is_named() -> None:
    """Held: a value that is not a boolean fails the step that reads it, naming the setting."""
    from common.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="REDIS_ROTATE_NAMED_NODE_ONLY"):
        _ = RedisEngine(environ={"REDIS_ROTATE_NAMED_NODE_ONLY": "sometimes"}).named_node_only
    assert RedisEngine(environ={}).named_node_only is False
