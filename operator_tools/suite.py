"""What the commands share about the suite and a rotation's timing, defined once.

Standard library only, so that ``status`` need not import ``doctor`` and the command's
``--help`` stays free of boto3.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The handler of each of this suite's functions, and the secret engines it serves.
SUITE_HANDLERS = {
    "rotators.postgresql.app.lambda_handler": frozenset({"postgres", "aurora-postgresql"}),
    "rotators.mysql.app.lambda_handler": frozenset({"mysql", "aurora-mysql", "mariadb"}),
    "rotators.mongodb.app.lambda_handler": frozenset({"mongo"}),
    "rotators.redshift.app.lambda_handler": frozenset({"redshift"}),
}
#: A rotation is overdue when its next rotation date passed longer ago than this
#: (Secrets Manager starts a scheduled rotation within its window, not on the second).
OVERDUE_GRACE = timedelta(days=1)
#: The steps Secrets Manager invokes the function for in one rotation.
ROTATION_STEPS = 4
#: Lambda's longest time-out: what a step may take when the function's own is unknown.
LAMBDA_MAX_TIMEOUT_S = 900
#: Beyond the steps' time-outs: Secrets Manager's scheduling of the steps between them.
ROTATING_MARGIN = timedelta(minutes=5)
#: How long ``repair --apply`` waits by default for a rotation it started.
DEFAULT_WAIT_S = 120.0

PendingState = Literal["rotating", "stuck"]


def overdue(secret: Mapping[str, Any], at: datetime) -> bool:
    """Whether a secret's (``DescribeSecret``/``ListSecrets``) rotation is overdue at ``at``."""
    next_rotation = secret.get("NextRotationDate")
    return bool(
        secret.get("RotationEnabled") and next_rotation is not None and next_rotation < at - OVERDUE_GRACE
    )


def rotating_window(timeout_s: int | None) -> timedelta:
    """How long a rotation may run: every step to its function's time-out (Lambda's
    longest when unknown), plus :data:`ROTATING_MARGIN`."""
    return ROTATION_STEPS * timedelta(seconds=timeout_s or LAMBDA_MAX_TIMEOUT_S) + ROTATING_MARGIN


def pending_state(created: datetime | None, timeout_s: int | None, at: datetime) -> PendingState:
    """A version labelled ``AWSPENDING`` (not ``AWSCURRENT``) created at ``created``: a
    rotation still within its window is "rotating"; older, or of unknown age, "stuck"."""
    if created is not None and at - created < rotating_window(timeout_s):
        return "rotating"
    return "stuck"
