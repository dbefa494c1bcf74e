"""Attack round 7: fixtures shared with the MySQL tests."""

from tests.mysql.conftest import handler, master_arn

__all__ = ["handler", "master_arn"]
