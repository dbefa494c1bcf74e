"""Lambda handler: ``rotators.redshift.app.lambda_handler``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.coldstart import rotation_handler

if TYPE_CHECKING:
    from rotators.redshift.engine import RedshiftEngine


def build_engine() -> RedshiftEngine:
    from rotators.redshift.engine import RedshiftEngine

    return RedshiftEngine()


lambda_handler = rotation_handler(build_engine)
