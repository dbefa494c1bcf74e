"""The secret's JSON schema (AWS's documented format) and its validation.

A secret version is a JSON object with at least ``engine``, ``host``, ``username``
and ``password``; ``port``, ``dbname``, ``masterarn``, ``ssl`` and ``ca_bundle`` are
optional, and every other key is carried across rotations untouched. ``host`` names a
server reached over TCP (a DNS name or IP address, see ``host_problem``), for every
engine. ``user_arn`` means something to the Redis function's engines only (AWS's
ElastiCache format: a managed user, which may lack ``engine`` and ``host``); in any other
engine's secret it is someone else's key, kept and ignored.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from common.errors import SecretFormatError
from common.redaction import register

_REQUIRED_STRINGS = ("engine", "host", "username", "password")
#: AWS's ElastiCache rotation format names the user by ARN, with neither engine nor host.
_USER_ARN_SERVICES = frozenset({"elasticache", "memorydb"})
#: The ``engine`` values whose secrets may name a managed user by ``user_arn`` (the Redis
#: function's). To every other engine the key belongs to someone else.
_USER_ARN_ENGINES = frozenset({"redis", "valkey", *_USER_ARN_SERVICES})


@dataclass(frozen=True)
class DatabaseSecret:
    """One parsed secret version.

    ``raw`` is the whole JSON object as stored, so that a rotation can write it back
    with only the credentials changed. ``where`` names the version (its label or id)
    for error messages. ``host`` is stripped, an IPv6 address without brackets
    (:func:`ipv6_address`).
    """

    engine: str
    host: str
    username: str
    password: str = field(repr=False)
    port: int | None
    dbname: str | None
    masterarn: str | None
    ssl: bool | None
    ca_bundle: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    where: str = ""
    user_arn: str | None = None

    def __post_init__(self) -> None:
        register(self.password)

    @classmethod
    def from_json(cls, text: str | None, where: str) -> DatabaseSecret:
        """Parse and validate a secret version; ``where`` names it in errors."""
        if text is None:
            raise SecretFormatError(f"secret version {where} has no SecretString")
        return cls.from_dict(parse_object(text, where), where)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> DatabaseSecret:
        """Validate an already decoded secret version."""
        register(raw.get("password") if isinstance(raw.get("password"), str) else None)
        engine = raw.get("engine")
        managed = engine is None or (isinstance(engine, str) and engine.strip().lower() in _USER_ARN_ENGINES)
        user_arn = _optional_string(raw, "user_arn", where) if managed else None
        defaults = _service_user_defaults(user_arn, where) if user_arn else {}
        for key in _REQUIRED_STRINGS:
            if key not in raw and key in defaults:
                continue
            value = raw.get(key)
            if value is None:
                raise SecretFormatError(f"secret version {where} lacks required key '{key}'")
            if not isinstance(value, str) or not value:
                raise SecretFormatError(f"secret version {where}: key '{key}' must be a non-empty string")
        host = str(raw.get("host", defaults.get("host"))).strip()
        if "host" in raw:
            problem = host_problem(host)
            if problem:
                raise SecretFormatError(f"secret version {where}: key 'host' {problem}")
            host = ipv6_address(host) or host  # the raw object (stored) keeps the brackets
        return cls(
            engine=str(raw.get("engine", defaults.get("engine"))).strip().lower(),
            host=host,
            username=raw["username"],
            password=raw["password"],
            port=_port(raw.get("port"), where),
            dbname=_optional_string(raw, "dbname", where),
            masterarn=_optional_string(raw, "masterarn", where),
            ssl=_ssl_flag(raw.get("ssl"), where),
            ca_bundle=_optional_string(raw, "ca_bundle", where),
            raw=dict(raw),
            where=where,
            user_arn=user_arn,
        )

    def with_credentials(self, username: str, password: str, where: str) -> DatabaseSecret:
        """This version with only ``username`` and ``password`` replaced; every other key,
        known or not, is kept as stored."""
        updated = dict(self.raw)
        updated["username"] = username
        updated["password"] = password
        return DatabaseSecret.from_dict(updated, where)

    def to_json(self) -> str:
        """The JSON to store: the raw object, so unknown keys survive."""
        return json.dumps(self.raw)


def parse_object(text: str, where: str) -> dict[str, Any]:
    """A secret's SecretString as a JSON object; errors name ``where``, never the text.
    A ``password`` key, if any, is registered for redaction before anything else."""
    try:
        value = json.loads(text)
    except ValueError:
        # The decoder's message quotes the text around the fault: never echo it.
        raise SecretFormatError(f"secret version {where} is not valid JSON") from None
    if not isinstance(value, dict):
        raise SecretFormatError(f"secret version {where} is not a JSON object")
    if isinstance(value.get("password"), str):
        register(value["password"])
    return value


def host_problem(host: str) -> str | None:
    """Why ``host`` (stripped) cannot name a server reached over TCP, or None if it can.

    A host is a DNS name or an IP address. Anything a driver would read as something
    else is refused, since each such reading ends on a local socket: libpq takes an empty
    host, one starting with '/' (a directory) or '@' (an abstract socket), or an empty
    item of a comma-separated list, as a Unix socket, where it ignores ``sslmode`` and the
    server may trust local users without a password; PyMongo takes a name ending in
    '.sock' as a socket file, and a '/' as part of a URI whose options apply. Whitespace
    and control characters are never part of a name. A ':' belongs to an IPv6 address
    only (bare or in brackets, :func:`ipv6_address`): ``db:5432`` would be a name no
    resolver finds (libpq, PyMySQL, redis-py) or a port that overrides ``port``
    (PyMongo). The result names the problem, never the value, and reads after "key
    'host' "."""
    has = "a ':'" if ":" in host else "brackets"
    problems = (
        (not host, "is blank"),
        ("\x00" in host, "contains a NUL byte"),
        (
            any(char.isspace() or unicodedata.category(char) == "Cc" for char in host),
            "contains whitespace or a control character",
        ),
        (
            "/" in host or host.startswith("@") or host.lower().endswith(".sock"),
            "is a path or URI (drivers read one as a local socket, where TLS does not apply)",
        ),
        ("," in host, "lists more than one host"),
        (
            any(char in host for char in ":[]") and ipv6_address(host) is None,
            f"has {has} but is not an IPv6 address (a port goes in key 'port', never in 'host')",
        ),
    )
    for found, problem in problems:
        if found:
            return f"{problem}: a host is a DNS name or IP address"
    return None


#: An IPv6 zone (``fe80::1%eth0``): an interface name or index, nothing more (no '%',
#: which PyMongo decodes in a bracketed host).
_ZONE = re.compile(r"[A-Za-z0-9_.-]+")


def ipv6_address(host: str) -> str | None:
    """The IPv6 address ``host`` writes, with its zone if any (``fe80::1%eth0``), without
    the brackets a URL puts around it (``[::1]`` is ``::1``); None when it is not one.

    Drivers differ on brackets: libpq, PyMySQL and redis-py take the bare address and
    resolve ``[::1]`` as a DNS name; PyMongo needs the brackets. So a secret may write
    either, the parsed secret holds the bare address (:class:`DatabaseSecret` ``host``),
    and the MongoDB engine brackets it again."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    address, percent, zone = text.partition("%")
    if percent and not _ZONE.fullmatch(zone):
        return None
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return None
    return text


_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


def _service_user_defaults(user_arn: str, where: str) -> dict[str, str]:
    """``engine`` and ``host`` for a secret in AWS's ElastiCache format (``user_arn``,
    ``username``, ``password``): the service from the ARN, and no endpoint, so that the
    user is reached through the service's API only. Keys the secret has win."""
    parts = user_arn.split(":")
    service = parts[2] if len(parts) > 5 and parts[0] == "arn" else ""
    # The region goes into a client's endpoint: only a region's shape is accepted.
    region = parts[3] if len(parts) > 5 else ""
    if service not in _USER_ARN_SERVICES or not _REGION.fullmatch(region):
        raise SecretFormatError(
            f"secret version {where}: key 'user_arn' must be an ElastiCache or MemoryDB user ARN"
        )
    return {"engine": service, "host": ""}


def _optional_string(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SecretFormatError(f"secret version {where}: key '{key}' must be a string")
    return value


def _port(value: object, where: str) -> int | None:
    if value is None or value == "":
        return None
    # AWS's console stores the port as a number, many users store it as a string.
    if isinstance(value, bool):
        raise SecretFormatError(f"secret version {where}: key 'port' must be a number")
    try:
        port = int(value) if isinstance(value, (int, str)) else None
    except ValueError:
        port = None
    if port is None or not 0 < port < 65536:
        raise SecretFormatError(f"secret version {where}: key 'port' must be a TCP port number")
    return port


def _ssl_flag(value: object, where: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SecretFormatError(f"secret version {where}: key 'ssl' must be true or false")
