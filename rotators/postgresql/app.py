"""Lambda handler: ``rotators.postgresql.app.lambda_handler``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.coldstart import rotation_handler

if TYPE_CHECKING:
    from rotators.postgresql.engine import PostgresEngine


def build_engine() -> PostgresEngine:
    from rotators.postgresql.engine import PostgresEngine

    return PostgresEngine()


lambda_handler = rotation_handler(build_engine)
