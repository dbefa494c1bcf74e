"""Fixtures of the attack regression tests: the PostgreSQL function, user and master secret
(tests/postgresql's own, imported), and a redaction registry that no test leaks into
the next (a hostile password registered by one test must not shape another's logs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

# The PostgreSQL fixtures, shared rather than re-declared (pytest collects imported fixtures).
from tests.postgresql.conftest import app_user, handler, master_arn  # noqa: F401

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    from common import redaction

    saved = dict(redaction._registered)
    yield
    redaction._registered.clear()
    redaction._registered.update(saved)
    redaction._pattern = None
