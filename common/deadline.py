"""The time a rotation step has left before Lambda stops it.

Lambda kills an invocation at the function's time-out without a word in the step's log
line; a step that knows its time stops first, with a :class:`StepTimeLimitError` that says
what did not fit, and keeps :data:`SAFETY_MARGIN` to report it and return.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from common.errors import ConfigurationError, StepTimeLimitError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

#: Seconds kept back from the Lambda time-out for logging, metrics and returning.
SAFETY_MARGIN = 3.0


class Deadline:
    """What is left of a step's time: the Lambda context's remaining time less
    :data:`SAFETY_MARGIN`; unbounded without a context (tests, local runs)."""

    def __init__(self, remaining_ms: Callable[[], int] | None = None, margin: float = SAFETY_MARGIN) -> None:
        self._remaining_ms = remaining_ms
        self.margin = margin

    @classmethod
    def of(cls, context: object) -> Deadline:
        """The deadline of an invocation whose context has ``get_remaining_time_in_millis``."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return cls(remaining if callable(remaining) else None)

    @property
    def bounded(self) -> bool:
        return self._remaining_ms is not None

    def left(self) -> float:
        """Seconds the step may still spend (may be negative); infinite when unbounded."""
        if self._remaining_ms is None:
            return math.inf
        return self._remaining_ms() / 1000 - self.margin

    def require(self, seconds: float, what: str) -> None:
        """Raise StepTimeLimitError unless ``seconds`` (what ``what`` may take) fit."""
        left = self.left()
        if left < seconds:
            raise StepTimeLimitError(
                f"the step stopped before {what}: it may take {seconds:g} s and {max(left, 0):.1f} s are "
                f"left before the function's time-out (less a {self.margin:g} s margin); "
                "Secrets Manager runs the step again"
            )

    def check_settings(self, limits: Iterable[tuple[str, int]]) -> None:
        """At the start of an invocation (its remaining time is the function's time-out,
        in whole seconds): each of ``limits`` (variable, seconds) must fit in it with the
        margin, or the function is misconfigured (ConfigurationError naming the variable)."""
        if self._remaining_ms is None:
            return
        timeout = math.ceil(self._remaining_ms() / 1000)
        for name, seconds in limits:
            if seconds + self.margin > timeout:
                raise ConfigurationError(
                    f"{name} ({seconds} s) does not fit in the function's time-out ({timeout} s, less a "
                    f"{self.margin:g} s margin): lower {name} or raise the function's Timeout"
                )


#: No context: nothing is cut short.
UNBOUNDED = Deadline()
