from __future__ import annotations

import pytest

from common.engine import compare_with_original
from common.errors import PermissionDeniedError, VerificationError


def denied() -> set[str]:
    raise PermissionDeniedError("could not read: 1044: access denied")


def test_privileges_are_compared_when_the_original_is_readable() -> None:
    compare_with_original({"a"}, lambda: {"a"}, user="'clone'", original="app")
    with pytest.raises(VerificationError, match="does not hold the privileges of 'app'"):
        compare_with_original({"a"}, lambda: {"a", "b"}, user="'clone'", original="app")


def test_an_unreadable_original_accepts_a_user_with_privileges_only() -> None:
    compare_with_original({"a"}, denied, user="'clone'", original="app")
    with pytest.raises(VerificationError, match="holds no privileges"):
        nothing: set[str] = set()
        compare_with_original(nothing, denied, user="'clone'", original="app")


class _FailingCursor:
    """A redshift_connector cursor whose statement the server refuses (the driver puts the
    server's error fields in ``args[0]``)."""

    description = None
    closed = False

    def __init__(self, fields: dict[str, str] | None) -> None:
        self.fields = fields

    def execute(self, statement: str, params: object = None) -> None:
        raise Exception(self.fields) if self.fields is not None else Exception()

    def close(self) -> None:
        self.closed = True


class _Connection:
    def __init__(self, cursor: _FailingCursor) -> None:
        self.last = cursor

    def cursor(self) -> _FailingCursor:
        return self.last


def test_redshift_statement_errors_are_shaped_by_the_common_driver_errors() -> None:
    """Redshift's statements go through the same DriverErrors as every other engine: a
    refusal for lack of a privilege is a PermissionDeniedError, the statement is never
    shown, and the cursor is closed."""
    from common.engine import DriverErrors
    from common.errors import DatabaseOperationError
    from rotators.redshift import engine as redshift

    assert isinstance(redshift._ERRORS, DriverErrors)
    denied = _Connection(_FailingCursor({"C": "42501", "M": "permission denied for schema team_b"}))
    with pytest.raises(PermissionDeniedError, match="^could not read privileges: 42501: permission denied"):
        redshift._run(denied, "SELECT secret_statement", (), "read privileges")
    assert denied.last.closed
    leaky = _Connection(_FailingCursor({"C": "XX000", "M": "invalid input syntax"}))
    with pytest.raises(DatabaseOperationError) as failure:
        redshift._run(leaky, "ALTER USER x PASSWORD 'md5abc'", (), "set the password of 'x'")
    assert str(failure.value) == "could not set the password of 'x': XX000: invalid input syntax"
    with pytest.raises(DatabaseOperationError, match="^could not look up 'x': Exception$"):
        redshift._run(_Connection(_FailingCursor(None)), "SELECT 1", (), "look up 'x'")
