"""Lambda handler: ``rotators.redis.app.lambda_handler``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.coldstart import rotation_handler

if TYPE_CHECKING:
    from rotators.redis.engine import RedisEngine


def build_engine() -> RedisEngine:
    # Users managed through ElastiCache's or MemoryDB's API need their clients.
    from common.clients import service_client
    from rotators.redis.engine import RedisEngine

    return RedisEngine(service_client)


lambda_handler = rotation_handler(build_engine)
