"""A minimal Lambda runtime in a child process, standalone (standard library only), so
that it can run a built function with nothing but the function, its layer and boto3 on
the path, as ``sam local invoke`` would.

Reads one JSON event per line on stdin, invokes the handler named in argv[1]
(``module:attribute``) with a Lambda-like context, answers ``ok`` or ``error <type>``
per line on stdout (the handler's own output goes to stderr), and on end of input prints
``peak_kib <VmHWM> import_ms <handler import>``.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable


class Context:
    """The attributes of Lambda's context object that handlers read."""

    def __init__(self, function_name: str = "rotation-function", timeout_s: int = 60) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def peak_rss_kib() -> int:
    """This process's peak resident memory (what Lambda bills against its memory size).

    Read from VmHWM: ``ru_maxrss`` survives ``execve`` on Linux, so a child forked from
    a large parent would report the parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def answers_apart() -> TextIO:
    """The stream for answers (the original stdout); the handler's own output (Powertools'
    log lines and metrics) goes to stderr from now on, as both go to CloudWatch Logs."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return answers


def serve(
    handler: Callable[[Any, Context], Any], name: str, answers: TextIO, note: Callable[[], str] = str
) -> None:
    """Invoke ``handler`` with each JSON event line of stdin; answer ``ok`` or
    ``error <type>`` per line, followed by what ``note`` returns (nothing by default)."""
    for line in sys.stdin:
        try:
            handler(json.loads(line), Context(name))
        except Exception as error:  # noqa: BLE001 - reported to the parent, which decides
            print(f"error {type(error).__name__}{note()}", file=answers, flush=True)
        else:
            print(f"ok{note()}", file=answers, flush=True)


def main() -> None:
    answers = answers_apart()
    module_name, attribute = sys.argv[1].split(":")
    started = time.perf_counter()
    handler = getattr(importlib.import_module(module_name), attribute)
    import_ms = (time.perf_counter() - started) * 1000
    serve(handler, module_name, answers)
    print(f"peak_kib {peak_rss_kib()} import_ms {import_ms:.1f}", file=answers, flush=True)


if __name__ == "__main__":
    main()
