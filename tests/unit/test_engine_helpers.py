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
