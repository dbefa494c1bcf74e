"""Lambda handler: ``rotators.mysql.app.lambda_handler``."""

from __future__ import annotations

from common.coldstart import long_lived

with long_lived():
    from common.handler import RotationFunction
    from rotators.mysql.engine import MySQLEngine

lambda_handler = RotationFunction(MySQLEngine())
