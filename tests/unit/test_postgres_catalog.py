"""How a stored PostgreSQL role setting is read back (pure: no server)."""

from __future__ import annotations

import pytest

from rotators.postgresql.catalog import settings_by_role, split_list


@pytest.mark.parametrize(
    ("stored", "elements"),
    [
        ("public", ["public"]),
        ('a, "B c", public', ["a", "B c", "public"]),
        ('"App ""x"", y", public', ['App "x", y', "public"]),
        ('"$user", public', ["$user", "public"]),
        ('""', [""]),
    ],
)
def test_a_stored_list_splits_into_its_elements(stored: str, elements: list[str]) -> None:
    assert split_list(stored) == elements


def test_settings_are_keyed_by_role_database_and_name() -> None:
    rows = [
        ("app", None, "search_path=a, b"),
        ("app", "db1", "work_mem=5MB"),
        ("app_clone", None, "role=app"),
    ]
    assert settings_by_role(rows) == {
        "app": {(None, "search_path"): "a, b", ("db1", "work_mem"): "5MB"},
        "app_clone": {(None, "role"): "app"},
    }
