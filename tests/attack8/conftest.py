"""Attack round 8: fixtures shared with the MySQL tests."""

from tests.mysql.conftest import handler, master_arn

__all__ = ["handler", "master_arn"]
