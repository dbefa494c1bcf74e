"""Fixtures of attack round 4: tests/redis/test_managed.py's model of managed users (its
tables forgotten after each test) and its function, imported rather than re-declared."""

from tests.redis.test_managed import aws_users, engine, handler  # noqa: F401
