"""Lambda handler: ``rotators.mongodb.app.lambda_handler``."""

from __future__ import annotations

from common.coldstart import long_lived

with long_lived():
    from common.handler import RotationFunction
    from rotators.mongodb.engine import MongoEngine

lambda_handler = RotationFunction(MongoEngine())
