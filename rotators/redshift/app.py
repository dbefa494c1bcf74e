"""Lambda handler: ``rotators.redshift.app.lambda_handler``."""

from __future__ import annotations

from common.handler import RotationFunction
from rotators.redshift.engine import RedshiftEngine

lambda_handler = RotationFunction(RedshiftEngine())
