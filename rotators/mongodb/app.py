"""Lambda handler: ``rotators.mongodb.app.lambda_handler``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.coldstart import rotation_handler

if TYPE_CHECKING:
    from rotators.mongodb.engine import MongoEngine


def build_engine() -> MongoEngine:
    from rotators.mongodb.engine import MongoEngine

    return MongoEngine()


lambda_handler = rotation_handler(build_engine)
