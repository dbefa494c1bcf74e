"""The fake database the unit tests of the protocol drive."""

from __future__ import annotations

import pytest

from tests.fake_engine import HOST, FakeDatabase


@pytest.fixture
def database() -> FakeDatabase:
    return FakeDatabase(host=HOST, passwords={"app": "initial-Pass-1", "admin": "master-Pass-1"})
