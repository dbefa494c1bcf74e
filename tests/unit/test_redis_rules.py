"""Redis ACL password rules, ElastiCache/MemoryDB user ARNs and AWS's ElastiCache secret
format: pure functions, no server."""

from __future__ import annotations

import hashlib

import pytest

from common.errors import SecretFormatError
from common.secret import DatabaseSecret
from devtools.redis_server import rules_without_passwords
from rotators.redis.acl import password_hash, password_rules
from rotators.redis.managed import UserArn

CURRENT, PENDING, OLDER = "current-Pass-1", "pending-Pass-2", "older-Pass-0"


def test_the_hash_is_redis_own() -> None:
    assert password_hash(CURRENT) == hashlib.sha256(CURRENT.encode()).hexdigest()


def test_adds_before_removes_and_nothing_else() -> None:
    rules = password_rules([password_hash(OLDER), password_hash(CURRENT)], [CURRENT, PENDING])
    assert rules == [f"#{password_hash(PENDING)}", f"!{password_hash(OLDER)}"]
    assert not any(rule in ("nopass", "resetpass", "reset") or rule[0] in "><" for rule in rules)
    assert not any(password in " ".join(rules) for password in (CURRENT, PENDING, OLDER))


def test_nothing_to_do_when_the_user_already_holds_exactly_those() -> None:
    held = [password_hash(PENDING), password_hash(CURRENT)]
    assert password_rules(held, [CURRENT, PENDING]) == []


def test_a_missing_current_password_is_added_back() -> None:
    assert password_rules([password_hash(OLDER)], [CURRENT, PENDING]) == [
        f"#{password_hash(CURRENT)}",
        f"#{password_hash(PENDING)}",
        f"!{password_hash(OLDER)}",
    ]


def test_rules_without_passwords() -> None:
    user = {"flags": ["on"], "passwords": ["abc"], "keys": ["~a:*"]}
    assert rules_without_passwords(user) == {"flags": ["on"], "keys": ["~a:*"]}


@pytest.mark.parametrize(
    ("arn", "service", "region", "user"),
    [
        ("arn:aws:elasticache:eu-west-1:123456789012:user:app-user", "elasticache", "eu-west-1", "app-user"),
        ("arn:aws:memorydb:us-east-2:123456789012:user/app", "memorydb", "us-east-2", "app"),
        ("arn:aws-cn:elasticache:cn-north-1:123456789012:user:u1", "elasticache", "cn-north-1", "u1"),
    ],
)
def test_user_arns(arn: str, service: str, region: str, user: str) -> None:
    parsed = UserArn.parse(arn)
    assert (parsed.service, parsed.region, parsed.user) == (service, region, user)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:elasticache:eu-west-1:123456789012:cluster:c1",
        "arn:aws:memorydb:us-east-2:123456789012:user/",
        "arn:aws:rds:us-east-1:123456789012:db:x",
        "not an arn",
    ],
)
def test_other_arns_are_refused(arn: str) -> None:
    with pytest.raises(SecretFormatError, match="user_arn"):
        UserArn.parse(arn)


def test_awss_elasticache_format_is_accepted_as_it_is() -> None:
    raw = {
        "user_arn": "arn:aws:elasticache:us-east-1:123456789012:user:app-user",
        "username": "app",
        "password": CURRENT,
    }
    secret = DatabaseSecret.from_dict(raw, "AWSCURRENT")
    assert (secret.engine, secret.host, secret.user_arn) == ("elasticache", "", raw["user_arn"])
    assert secret.with_credentials("app", PENDING, "AWSPENDING").raw == raw | {"password": PENDING}


def test_a_user_arn_of_another_service_is_refused() -> None:
    raw = {"user_arn": "arn:aws:iam::123456789012:user/app", "username": "app", "password": CURRENT}
    with pytest.raises(SecretFormatError, match="'user_arn'"):
        DatabaseSecret.from_dict(raw, "AWSCURRENT")
