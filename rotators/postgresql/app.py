"""Lambda handler: ``rotators.postgresql.app.lambda_handler``."""

from __future__ import annotations

from common.coldstart import long_lived

with long_lived():
    from common.handler import RotationFunction
    from rotators.postgresql.engine import PostgresEngine

lambda_handler = RotationFunction(PostgresEngine())
