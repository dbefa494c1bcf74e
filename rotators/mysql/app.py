"""Lambda handler: ``rotators.mysql.app.lambda_handler``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.coldstart import rotation_handler

if TYPE_CHECKING:
    from rotators.mysql.engine import MySQLEngine


def build_engine() -> MySQLEngine:
    from rotators.mysql.engine import MySQLEngine

    return MySQLEngine()


lambda_handler = rotation_handler(build_engine)
