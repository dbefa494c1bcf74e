"""Attack round 4 (G): ElastiCache and MemoryDB users rotated through the service's API
(rotators/redis/managed.py), on the suite's model of the users (devtools/managed_users.py)
with the throwaway Redis as the data plane. Each test states what the project promises;
a failing test is a finding."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import RotationError
from devtools.managed_users import DataPlane, add_cluster, user_of
from devtools.ports import free_port
from devtools.service import STEPS, LambdaContext
from rotators.redis.engine import RedisEngine
from tests.conftest import new_password, unique
from tests.helpers import handler_for, store_secret, value
from tests.redis.test_managed import clients, new_user, serve_on

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.redis_server import RedisServer
    from devtools.service import RotationService


def run_all_steps(handler: RotationFunction[Any], service: RotationService, arn: str) -> list[str]:
    """Every step in order, as a caller that goes on regardless; the failures' texts."""
    request = service.start(arn)
    failures: list[str] = []
    for step in STEPS:
        try:
            handler(request.event(step), LambdaContext())
        except RotationError as error:
            failures.append(f"{step}: {error}")
    return failures


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
def test_a_secret_naming_another_endpoint_takes_the_user_over(
    kind: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    redis_server: RedisServer,
) -> None:
    """Severity: high (account takeover; the README promises "a secret holding a guessed
    password for a user in CacheUserArns cannot take it over").

    The victim is a user of a cluster (its data plane records what the service applies).
    Whoever may write a secret for this function names the victim's ARN and user name, a
    password of their choosing, and ``host``/``port`` of a Redis they run where a user of
    the same name has that password. open() logs in at the secret's host and never checks
    that it is one of the user's clusters (the endpoint the API lists is used only when
    the secret names none), so "the current password is proven by a login" proves nothing
    about the victim, and setSecret calls ModifyUser/UpdateUser with [pending, guess].

    Expected: createSecret refuses (the named endpoint is not the user's cluster), the
    victim keeps exactly its own password. Was: the victim's passwords became
    [pending, guess]: its owner's password dropped (lockout) and the attacker's working.

    Held now (r14b-fixes): a secret's ``host`` must be an endpoint the service lists for
    the user; every step refuses another, and the victim keeps its one password."""
    name, real = unique("victim"), new_password()
    key, user_arn = new_user(kind, name, real)
    applied: list[list[str]] = []
    # The victim's real cluster (another VPC: this function cannot reach it).
    add_cluster(kind, key, DataPlane("127.0.0.1", free_port(), lambda _user, pw: applied.append(pw)))
    guess = new_password()
    redis_server.create_user(name, guess, None, f"~{name}:*", "+ping")  # the attacker's own server
    body = {
        "user_arn": user_arn,
        "username": name,
        "password": guess,
        "host": redis_server.host,
        "port": redis_server.port,
    }
    arn = store_secret(sm_client, service, unique("cache"), json.dumps(body))
    failures = run_all_steps(handler, service, arn)
    victim = user_of(kind, key)
    # Compared as facts, never as values: a failing assertion must not print a password.
    held = {"count": len(victim.passwords), "owner's kept": real in victim.passwords}
    held["attacker's accepted"] = guess in victim.passwords
    assert held == {"count": 1, "owner's kept": True, "attacker's accepted": False}, (
        f"steps that failed: {[f.split(':')[0] for f in failures]}"
    )
    assert applied == []


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
def test_a_user_in_several_groups_is_proven_at_a_reachable_cluster(
    kind: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    redis_server: RedisServer,
) -> None:
    """Severity: low (availability; pushes operators to MANAGED_USER_STATUS_ONLY).

    A user in two user groups / ACLs: the first one's cluster is out of the function's
    reach (another VPC), the second one's is reachable. endpoint() returns the first
    endpoint it finds and open() never tries another, so createSecret refuses ("no login
    can prove the password ... set MANAGED_USER_STATUS_ONLY=true") although a login at
    the second cluster would prove it. With the opt-in set, the rotation goes on checked
    by status only, unproven, while a proof was at hand.

    Expected: the rotation completes, proven by a login at the reachable cluster.
    Was: createSecret refused.

    Held now: without ``host``, each endpoint the service lists is tried in turn until one
    answers (only a network failure moves on; a refused password or a TLS failure stops),
    the one that answered last in the container first."""
    name, password = unique("app"), new_password()
    key, user_arn = new_user(kind, name, password)
    add_cluster(kind, key, DataPlane("127.0.0.1", free_port()))  # unreachable
    serve_on(redis_server, kind, key, name, password)
    body = {"user_arn": user_arn, "username": name, "password": password}
    arn = store_secret(sm_client, service, unique("cache"), json.dumps(body))
    failures = run_all_steps(handler, service, arn)
    assert failures == []
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    assert user_of(kind, key).passwords == [current, password], "passwords not [pending, current]"
    accepted = redis_server.can_login(name, current)  # a bool: a failure prints no password
    assert accepted


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
def test_a_refused_password_at_a_listed_endpoint_stops_the_search(
    kind: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    redis_server: RedisServer,
) -> None:
    """Held: trying each listed endpoint moves on only past a network failure. The first
    cluster answers and refuses the secret's password (its node holds another one), the
    second would accept it: createSecret refuses, nothing is stored and the user's
    passwords are not changed; the refusal is an answer, never skipped for a friendlier
    node."""
    from devtools.redis_server import RedisServer

    name, password = unique("app"), new_password()
    key, user_arn = new_user(kind, name, password)
    redis_server.create_user(name, new_password(), None, "~app:*", "+ping")
    add_cluster(kind, key, DataPlane(redis_server.host, redis_server.port))  # answers: refused
    friendly = RedisServer("aclfile").start()
    try:
        serve_on(friendly, kind, key, name, password)  # would accept
        body = {"user_arn": user_arn, "username": name, "password": password}
        arn = store_secret(sm_client, service, unique("cache"), json.dumps(body))
        request = service.start(arn)
        with pytest.raises(RotationError, match="could not log in"):
            handler(request.event("createSecret"), LambdaContext())
        held = user_of(kind, key).passwords == [password]  # a bool: a failure prints no password
        assert held, "the user's passwords changed"
    finally:
        friendly.stop()


def test_two_waits_fit_in_the_lambda_timeout() -> None:
    """Held now (r14b-fixes): a step's waits share one budget (``ManagedUser.deadline``;
    tests/redis/test_managed.py's ``test_set_secret_waits_at_most_one_budget_in_all``
    proves the sharing), capped at 480 s by the setting and the template alike, so a
    step's waiting fits the function's 600 s with time to spare for logins and calls.

    Changed, because its premise no longer holds: the test read "two waits of MaxValue
    each" (2 * MaxValue < Timeout); it now checks one budget (MaxValue) with a minute to
    spare, and that the engine refuses what the template would not allow.

    Was (severity low): setSecret waited up to ManagedUserWaitSeconds before ModifyUser
    and again after it; the template allowed 600 with a Timeout of 600, so a slow user
    could have Lambda kill the step mid-wait ('Task timed out') instead of the bounded,
    named failure the setting promises."""
    from pathlib import Path

    from rotators.redis.engine import MAX_USER_WAIT

    text = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    block = text.split("ManagedUserWaitSeconds:", 1)[1].split("\n\n", 1)[0]
    maximum = int(block.split("MaxValue:", 1)[1].split()[0])
    redis_fn = text.split("MANAGED_USER_WAIT_SECONDS", 1)[0].rsplit("Timeout:", 1)[1]
    timeout = int(redis_fn.split()[0])
    assert maximum + 60 <= timeout, f"a step's wait budget of {maximum} s leaves no time in {timeout} s"
    assert maximum == MAX_USER_WAIT, "the template and the engine allow different budgets"


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
def test_finish_before_set_with_a_named_host_makes_current_a_password_the_user_lacks(
    kind: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    redis_server: RedisServer,
) -> None:
    """Severity: high (lockout from one out-of-order step; same root cause as the
    takeover above: the secret's ``host`` is never tied to the user ARN).

    The operator's secret is right (the user's real password) but its ``host`` names
    another Redis where a user of that name accepts any password (``nopass``: a dev
    server, a cluster with open access). finishSecret runs before setSecret (a retry
    after a lost setSecret, a hand-driven rotation): its "proof" of the pending password
    is a login at that host, which succeeds, so proves_password is True, the status-only
    re-apply is skipped, and AWSCURRENT moves to a password the ARN's user never got.

    Expected: finishSecret refuses (as it does when the endpoint comes from the API), the
    user's AWSCURRENT stays one it holds. Was: AWSCURRENT was a password the user lacked.

    Held now (r14b-fixes): a ``host`` the service does not list for the user is refused at
    every step, createSecret first. Changed: the test called createSecret unguarded,
    assuming it succeeds; it now expects createSecret's refusal (naming the host as not an
    endpoint of the user's clusters) and still runs finishSecret regardless."""
    name, real = unique("app"), new_password()
    key, user_arn = new_user(kind, name, real)
    add_cluster(kind, key, DataPlane("127.0.0.1", free_port()))  # the user's own cluster
    redis_server.create_user(name, new_password(), None, "nopass", "+ping")
    body = {
        "user_arn": user_arn,
        "username": name,
        "password": real,
        "host": redis_server.host,
        "port": redis_server.port,
    }
    arn = store_secret(sm_client, service, unique("cache"), json.dumps(body))
    request = service.start(arn)
    refused: list[str] = []
    for step in ("createSecret", "finishSecret"):  # setSecret never ran
        try:
            handler(request.event(step), LambdaContext())
        except RotationError as error:
            refused.append(f"{step}: {error}")
    assert refused and refused[0].startswith("createSecret") and "not an endpoint" in refused[0], refused
    current = value(sm_client, arn, "AWSCURRENT")["password"]
    held = current in user_of(kind, key).passwords  # a bool: a failure prints no password
    assert held, "AWSCURRENT is a password the user does not hold"


@pytest.mark.parametrize("kind", ["elasticache", "memorydb"])
def test_status_only_does_not_treat_a_certificate_failure_as_unreachable(
    kind: str,
    sm_client: SecretsManagerClient,
    service: RotationService,
    redis_server: RedisServer,
) -> None:
    """Severity: low-medium (with the opt-in set, whoever can answer on the endpoint's
    address with any certificate turns the login proof off, silently but for a warning).

    The user's cluster is reachable and answers TLS, but with a certificate the function
    does not trust (here: no DB_CA_BUNDLE for the suite's CA; in AWS: an interposed
    server, a wrong CA bundle). connect() shapes every RedisError other than a refused
    password as "unreachable", and open() then goes on checked by status only.

    Expected: a certificate that fails verification is an answer, as a refused password
    is: the step fails naming the certificate. Was: the rotation completed unproven.

    Held now (r14b-fixes): a TLS failure stops the step in every mode, naming the
    certificate and DB_CA_BUNDLE."""
    name, password = unique("app"), new_password()
    key, user_arn = new_user(kind, name, password)
    serve_on(redis_server, kind, key, name, password)
    engine = RedisEngine(clients, poll_seconds=0.01, environ={"MANAGED_USER_STATUS_ONLY": "true"})
    handler = handler_for(engine, sm_client)  # the suite's CA is not trusted
    body = {"user_arn": user_arn, "username": name, "password": password}
    arn = store_secret(sm_client, service, unique("cache"), json.dumps(body))
    failures = run_all_steps(handler, service, arn)
    assert failures, "the rotation completed without any login proving a password"
    assert "certificate" in failures[0].lower(), failures[0]


def test_a_user_of_a_serverless_cache_is_named_as_such(
    sm_client: SecretsManagerClient, service: RotationService, handler: RotationFunction[Any]
) -> None:
    """Severity: low (availability, misleading error).

    An ElastiCache user group may serve serverless caches (DescribeUserGroups lists them
    under ``ServerlessCaches``, their endpoint comes from DescribeServerlessCaches).
    endpoint() reads only ``ReplicationGroups``, so a user of a serverless cache is
    refused with "the service lists no cluster endpoint for it" and told to turn the
    login proof off (MANAGED_USER_STATUS_ONLY) although the service does list one.

    Held: the refusal says the user's groups serve only serverless caches, whose endpoints
    the function does not look up (README, Redis section), and names the cache."""
    from devtools import managed_users

    name, password = unique("app"), new_password()
    user_id, user_arn = new_user("elasticache", name, password)
    group = unique("serverless-group").replace("_", "-")
    managed_users.USER_GROUPS[group] = {
        "UserGroupId": group,
        "Status": "active",
        "Engine": "redis",
        "UserIds": [user_id],
        "ReplicationGroups": [],
        "ServerlessCaches": ["my-serverless-cache"],
    }
    user_of("elasticache", user_id).user_group_ids.append(group)
    body = {"user_arn": user_arn, "username": name, "password": password}
    arn = store_secret(sm_client, service, unique("cache"), json.dumps(body))
    failures = run_all_steps(handler, service, arn)
    assert failures and "serverless caches (my-serverless-cache)" in failures[0], failures[:1]
