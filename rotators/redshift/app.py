"""Lambda handler: ``rotators.redshift.app.lambda_handler``."""

from __future__ import annotations

from common.coldstart import long_lived

with long_lived():
    from common.handler import RotationFunction
    from rotators.redshift.engine import RedshiftEngine

lambda_handler = RotationFunction(RedshiftEngine())
