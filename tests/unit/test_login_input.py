"""Login refuses what no driver can send (NUL bytes, text that is not valid Unicode), for
every engine, naming the key and never the value; the one driver-error shaper."""

from __future__ import annotations

import pytest

from common.engine import DriverErrors, Login, first_line
from common.errors import (
    DatabaseOperationError,
    PermissionDeniedError,
    SecretFormatError,
    VerificationError,
)
from common.redaction import register
from common.tls import TlsPolicy


def login(**change: str | None) -> Login:
    fields: dict[str, object] = {
        "host": "db.example.internal",
        "port": 5432,
        "dbname": "app",
        "username": "app",
        "password": "Pw-valid-123456",
        "tls": TlsPolicy(enabled=False),
        "connect_timeout": 5,
        "statement_timeout": 5,
        "label": "AWSCURRENT",
    }
    fields.update(change)
    return Login(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["host", "username", "password", "dbname"])
def test_a_nul_byte_is_refused_naming_the_key(key: str) -> None:
    with pytest.raises(
        SecretFormatError, match=f"AWSCURRENT secret's key '{key}' contains a NUL byte"
    ) as raised:
        login(**{key: "before\x00evil-after"})
    assert "evil" not in str(raised.value) and "evil" not in repr(raised.value)


@pytest.mark.parametrize("key", ["host", "username", "password", "dbname"])
def test_text_that_is_not_unicode_is_refused_naming_the_key(key: str) -> None:
    # A lone surrogate: what json.loads makes of "\ud800"; encoding it raises an error
    # whose repr holds the whole value.
    with pytest.raises(SecretFormatError, match=f"key '{key}' is not valid Unicode text") as raised:
        login(**{key: "evil-\ud800-after"})
    assert "evil" not in str(raised.value) and raised.value.__cause__ is None


def test_ordinary_non_ascii_text_and_no_dbname_are_accepted() -> None:
    accepted = login(username="zoë", password="pässwörd-€-😀", dbname=None)
    assert accepted.password == "pässwörd-€-😀"


def reason(error: Exception) -> tuple[object | None, str | None]:
    return getattr(error, "code", None), getattr(error, "text", None)


class FakeDriverError(Exception):
    def __init__(self, code: object, text: str | None) -> None:
        super().__init__("statement: ALTER ROLE x PASSWORD 'hash-in-the-statement'")
        self.code, self.text = code, text


ERRORS = DriverErrors(reason, denied={"42501"})


def test_a_driver_error_becomes_an_operation_error_with_code_and_message_only() -> None:
    with pytest.raises(DatabaseOperationError) as raised, ERRORS.operation("change the password of 'app'"):
        raise FakeDriverError("25006", "cannot execute ALTER ROLE in a read-only transaction")
    assert type(raised.value) is DatabaseOperationError
    assert str(raised.value) == (
        "could not change the password of 'app': 25006: cannot execute ALTER ROLE in a read-only transaction"
    )
    assert isinstance(raised.value.__cause__, FakeDriverError)


def test_a_refused_privilege_is_permission_denied_with_an_optional_hint() -> None:
    with pytest.raises(PermissionDeniedError, match="could not read: 42501: permission denied"):
        with ERRORS.operation("read"):
            raise FakeDriverError("42501", "permission denied")
    with pytest.raises(PermissionDeniedError, match="^could not read: grant it the role$"):
        with ERRORS.operation("read", denied_hint="grant it the role"):
            raise FakeDriverError("42501", "permission denied")


def test_registered_secrets_are_masked_and_a_bare_error_is_named_by_its_class() -> None:
    register("Sekret-in-message-1")
    with pytest.raises(DatabaseOperationError, match=r"could not x: 1: bad \*\*\* here"):
        with ERRORS.operation("x"):
            raise FakeDriverError(1, "bad Sekret-in-message-1 here")
    with pytest.raises(DatabaseOperationError, match="^could not x: KeyError$"):
        with ERRORS.operation("x"):
            raise KeyError("whatever")


def test_our_own_errors_pass_through_unchanged() -> None:
    with pytest.raises(VerificationError, match="^mine$"), ERRORS.operation("x"):
        raise VerificationError("mine")


def test_first_line() -> None:
    assert first_line(ValueError("\n  first\nsecond")) == "first"
    assert first_line(ValueError("")) == "ValueError"


@pytest.mark.parametrize("host", ["", "/var/run/postgresql", "@socket", "db,", "db x"])
def test_a_login_never_reaches_a_local_socket(host: str) -> None:
    """Whatever gave the host (a secret, RDS): no driver may fall back to a Unix socket."""
    with pytest.raises(SecretFormatError, match="AWSCURRENT secret's key 'host' .*DNS name or IP address"):
        login(host=host)


def test_only_a_managed_users_login_waits_for_its_engine_to_find_the_host() -> None:
    arn = "arn:aws:elasticache:us-east-1:123456789012:user:app"
    assert login(host="", user_arn=arn).host == ""
    with pytest.raises(SecretFormatError, match="key 'host'"):
        login(host="/var/run/postgresql", user_arn=arn)
