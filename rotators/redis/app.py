"""Lambda handler: ``rotators.redis.app.lambda_handler``."""

from __future__ import annotations

from common.coldstart import long_lived

with long_lived():
    from common.clients import service_client
    from common.handler import RotationFunction
    from rotators.redis.engine import RedisEngine

lambda_handler = RotationFunction(RedisEngine(service_client))
