"""What a new container builds once: kept out of the garbage collector's sight.

A cold start allocates some hundred thousand objects (modules, classes, functions,
botocore's service model) that live as long as the container. The cyclic collector
would scan them again and again while they are being built, and with boto3 loaded one
full collection costs ~15 ms; which import happens to trigger it depends on the
allocation count, not on what is imported. Building them with the collector paused and
then freezing them (``gc.freeze``: moved to a generation no collection scans) removes
that cost from the cold start and from every later collection in the warm container.
Garbage created meanwhile (a few reference cycles from import machinery) is kept for
the container's life: a few kilobytes.

Every rotation function's ``app.py`` is one :func:`rotation_handler` call, so that each
builds its handler this way: this module imports nothing else at module level.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from common.engine import ConnectionT, Engine
    from common.handler import RotationFunction


#: Whether this process has frozen anything yet. A flag of ours, not
#: ``gc.get_freeze_count()``: that walks the whole permanent generation, one node per
#: object ever frozen (in a long-lived process with many containers, such as the test
#: suite's, seconds a call).
_frozen = [False]


@contextmanager
def long_lived() -> Iterator[None]:
    """Run the block with the cyclic collector paused, then freeze what exists.

    Once something is frozen (a warm container), garbage is collected before freezing
    again: a collection then scans only what came after the first freeze (cheap), and
    the earlier invocations' garbage (a dropped client, an exception and its frames) is
    never made permanent. The first freeze skips it: that collection would scan the
    whole cold start, the cost this module exists to avoid."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if _frozen[0]:
            gc.collect()
        gc.freeze()
        _frozen[0] = True
    finally:
        if was_enabled:
            gc.enable()


def rotation_handler(build_engine: Callable[[], Engine[ConnectionT]]) -> RotationFunction[ConnectionT]:
    """The Lambda handler of a rotation function, for the engine ``build_engine()`` builds.

    The rotation core and ``build_engine`` run with the collector paused (:func:`long_lived`):
    ``build_engine`` should import its engine module in its body, so that the import is paid
    here, once, and out of the collector's sight. Boto3 and drivers stay unimported (the
    handler builds its client on the first invocation, engines import drivers on connect).
    """
    with long_lived():
        from common.handler import RotationFunction

        return RotationFunction(build_engine())
