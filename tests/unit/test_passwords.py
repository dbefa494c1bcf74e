from __future__ import annotations

import string

import pytest

from common.errors import ConfigurationError, PasswordPolicyError
from common.passwords import DEFAULT_EXCLUDED, PUNCTUATION, PasswordPolicy


def test_default_policy_is_awss_default() -> None:
    password = PasswordPolicy().generate()
    assert len(password) == 32
    assert not set(password) & set(DEFAULT_EXCLUDED)
    for characters in (string.ascii_lowercase, string.ascii_uppercase, string.digits):
        assert set(password) & set(characters)
    assert set(password) & (set(PUNCTUATION) - set(DEFAULT_EXCLUDED))


def test_passwords_differ() -> None:
    policy = PasswordPolicy()
    assert len({policy.generate() for _ in range(50)}) == 50


def test_environment_variables_are_honoured() -> None:
    policy = PasswordPolicy().with_environment(
        {
            "PASSWORD_LENGTH": "20",
            "EXCLUDE_PUNCTUATION": "true",
            "EXCLUDE_UPPERCASE": "TRUE",
            "EXCLUDE_CHARACTERS": "0123abc",
            "REQUIRE_EACH_INCLUDED_TYPE": "true",
        }
    )
    for _ in range(200):
        password = policy.generate()
        assert len(password) == 20
        assert set(password) <= set(string.ascii_lowercase + string.digits) - set("0123abc")
        assert set(password) & set(string.digits)


def test_require_each_type_holds_for_short_passwords() -> None:
    policy = PasswordPolicy(length=8, min_length=4)
    for _ in range(500):
        password = policy.generate()
        assert set(password) & set(string.ascii_lowercase)
        assert set(password) & set(string.ascii_uppercase)
        assert set(password) & set(string.digits)
        assert set(password) & set(PUNCTUATION)


def test_engine_exclusions_cannot_be_overridden() -> None:
    policy = PasswordPolicy(always_excluded="'\"").with_environment({"EXCLUDE_CHARACTERS": ""})
    assert all(not set(policy.generate()) & set("'\"") for _ in range(200))


@pytest.mark.parametrize(
    ("environ", "error", "names"),
    [
        ({"PASSWORD_LENGTH": "long"}, ConfigurationError, "PASSWORD_LENGTH"),
        ({"PASSWORD_LENGTH": "3"}, PasswordPolicyError, "PASSWORD_LENGTH"),
        ({"PASSWORD_LENGTH": "5000"}, PasswordPolicyError, "PASSWORD_LENGTH"),
        ({"EXCLUDE_NUMBERS": "maybe"}, ConfigurationError, "EXCLUDE_NUMBERS"),
        (
            {
                "EXCLUDE_NUMBERS": "true",
                "EXCLUDE_PUNCTUATION": "true",
                "EXCLUDE_UPPERCASE": "true",
                "EXCLUDE_LOWERCASE": "true",
            },
            PasswordPolicyError,
            "every character",
        ),
    ],
)
def test_bad_settings_are_named(environ: dict[str, str], error: type[Exception], names: str) -> None:
    with pytest.raises(error, match=names):
        PasswordPolicy().with_environment(environ)
