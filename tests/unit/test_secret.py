from __future__ import annotations

import json

import pytest

from common.errors import SecretFormatError
from common.secret import DatabaseSecret

BASE = {"engine": "postgres", "host": "db", "username": "app", "password": "s3cret-value-1"}


def parse(**changes: object) -> DatabaseSecret:
    body: dict[str, object] = dict(BASE)
    body.update(changes)
    return DatabaseSecret.from_json(
        json.dumps({k: v for k, v in body.items() if v is not None}), "AWSCURRENT"
    )


def test_aws_format_parses_and_keeps_unknown_keys() -> None:
    secret = parse(port="5432", dbClusterIdentifier="cluster-1", custom={"a": 1})
    assert secret.port == 5432
    replaced = secret.with_credentials("app", "n3w-password-2", "AWSPENDING")
    stored = json.loads(replaced.to_json())
    assert stored["dbClusterIdentifier"] == "cluster-1"
    assert stored["custom"] == {"a": 1}
    assert stored["port"] == "5432"  # stored exactly as the user wrote it
    assert stored["password"] == "n3w-password-2"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"host": None}, "lacks required key 'host'"),
        ({"password": 5}, "key 'password' must be a non-empty string"),
        ({"port": "http"}, "key 'port' must be a TCP port number"),
        ({"port": 70000}, "key 'port' must be a TCP port number"),
        ({"ssl": "sometimes"}, "key 'ssl' must be true or false"),
        ({"masterarn": 12}, "key 'masterarn' must be a string"),
    ],
)
def test_bad_secret_names_the_key_not_the_value(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SecretFormatError, match=message) as raised:
        parse(**changes)
    assert "s3cret-value-1" not in str(raised.value)
    assert "AWSCURRENT" in str(raised.value)


def test_not_json_never_echoes_the_text() -> None:
    with pytest.raises(SecretFormatError, match="not valid JSON") as raised:
        DatabaseSecret.from_json('{"password": "s3cret-value-1", oops}', "AWSPENDING")
    assert "s3cret-value-1" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_repr_hides_the_password() -> None:
    assert "s3cret-value-1" not in repr(parse())


@pytest.mark.parametrize(("raw", "expected"), [(True, True), ("false", False), ("TRUE", True), (None, None)])
def test_ssl_flag(raw: object, expected: bool | None) -> None:
    assert parse(ssl=raw).ssl is expected


@pytest.mark.parametrize(
    "user_arn",
    [
        "arn:aws:elasticache:not a region:123456789012:user:app",
        "arn:aws:elasticache:us-east-1.evil.example:123456789012:user:app",
        "arn:aws:s3:us-east-1:123456789012:user:app",
        "app",
    ],
)
def test_a_user_arn_that_is_not_a_managed_user_in_a_region_is_named(user_arn: str) -> None:
    with pytest.raises(SecretFormatError, match="key 'user_arn'"):
        DatabaseSecret.from_dict({"user_arn": user_arn, "username": "app", "password": "pw-123456"}, "v")


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (" ", "key 'host' is blank"),
        ("\t", "key 'host' is blank"),
        ("db .example.internal", "key 'host' contains whitespace or a control character"),
        ("db\u00a0example", "key 'host' contains whitespace or a control character"),
        ("db\x1b[31m", "key 'host' contains whitespace or a control character"),
        ("/var/run/postgresql", "key 'host' is a path or URI"),
        ("@abstract-socket", "key 'host' is a path or URI"),
        ("mongodb://db/?tlsInsecure=true", "key 'host' is a path or URI"),
        ("mongodb-27017.SOCK", "key 'host' is a path or URI"),
        ("db.example.internal,", "key 'host' lists more than one host"),
    ],
)
@pytest.mark.parametrize("engine", ["postgres", "mysql", "mongo", "redshift", "redis"])
def test_a_host_that_a_driver_reads_as_a_local_socket_is_refused_for_every_engine(
    engine: str, host: str, message: str
) -> None:
    """libpq: '', '/dir', '@name' and an empty list item are Unix sockets (sslmode
    ignored); PyMongo: '*.sock' and URIs. The error names the key and the rule."""
    with pytest.raises(SecretFormatError, match=message) as raised:
        parse(engine=engine, host=host)
    assert "DNS name or IP address" in str(raised.value)
    assert "s3cret-value-1" not in str(raised.value)


HOSTS = ["db.example.internal", " db.example.internal. ", "10.0.0.7", "::1", "fe80::1%eth0", "DB-1"]


@pytest.mark.parametrize("host", HOSTS)
def test_dns_names_and_addresses_are_hosts_and_are_stripped(host: str) -> None:
    assert parse(host=host).host == host.strip()


@pytest.mark.parametrize(("host", "address"), [("[::1]", "::1"), (" [fe80::1%eth0] ", "fe80::1%eth0")])
def test_a_bracketed_ipv6_address_is_the_bare_address_stored_as_written(host: str, address: str) -> None:
    """libpq, PyMySQL and redis-py resolve '[::1]' as a name: every engine gets the bare
    address (MongoDB brackets it again); the stored JSON keeps what the owner wrote."""
    secret = parse(host=host)
    assert secret.host == address
    assert json.loads(secret.to_json())["host"] == host


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("db.example.internal:5432", "has a ':' but is not an IPv6 address .*key 'port'"),
        ("10.0.0.5:3306", "has a ':' but is not an IPv6 address .*key 'port'"),
        ("[::1]:5432", "has a ':' but is not an IPv6 address .*key 'port'"),
        ("fe80::1%", "has a ':' but is not an IPv6 address"),
        ("fe80::1%eth0%1", "has a ':' but is not an IPv6 address"),
        ("[db.example.internal]", "has brackets but is not an IPv6 address"),
        ("[::1", "has a ':' but is not an IPv6 address"),
    ],
)
def test_a_colon_or_brackets_outside_an_ipv6_address_are_refused(host: str, message: str) -> None:
    """A port in 'host' is a name no resolver finds (libpq, PyMySQL, redis-py) or
    silently overrides 'port' (PyMongo). The error names the keys, never the value."""
    with pytest.raises(SecretFormatError, match=f"key 'host' {message}") as raised:
        parse(host=host)
    assert host.strip("[]") not in str(raised.value)


@pytest.mark.parametrize("engine", ["postgres", "aurora-mysql", "mongo", "redshift"])
def test_user_arn_is_another_tools_key_outside_the_redis_engines(engine: str) -> None:
    """Kept as stored, neither validated nor taken for a managed user, and no excuse for
    a missing host."""
    secret = parse(engine=engine, user_arn="arn:aws:iam::123456789012:user/deployer")
    assert secret.user_arn is None
    assert json.loads(secret.to_json())["user_arn"] == "arn:aws:iam::123456789012:user/deployer"
    with pytest.raises(SecretFormatError, match="lacks required key 'host'"):
        parse(engine=engine, host=None, user_arn="arn:aws:elasticache:us-east-1:123456789012:user:app")


@pytest.mark.parametrize("engine", [None, "redis", " Valkey ", "elasticache"])
def test_a_managed_user_needs_no_host(engine: str | None) -> None:
    arn = "arn:aws:elasticache:us-east-1:123456789012:user:app"
    secret = parse(engine=engine, host=None, user_arn=arn)
    assert secret.user_arn == arn and secret.host == ""
    with pytest.raises(SecretFormatError, match="key 'user_arn'"):
        parse(engine=engine, host=None, user_arn="arn:aws:iam::123456789012:user/deployer")
