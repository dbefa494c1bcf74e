"""A minimal Lambda runtime in a child process, for honest memory figures.

Reads one JSON event per line on stdin, invokes the handler named in argv[1]
(``module:attribute``), answers ``ok`` or ``error <type>`` per line, and on end of
input prints the process's peak resident memory in KiB and the handler's import time.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time


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


def main() -> None:
    module_name, attribute = sys.argv[1].split(":")
    started = time.perf_counter()
    handler = getattr(importlib.import_module(module_name), attribute)
    import_ms = (time.perf_counter() - started) * 1000
    from devtools.service import LambdaContext

    for line in sys.stdin:
        try:
            handler(json.loads(line), LambdaContext())
        except Exception as error:  # noqa: BLE001 - reported to the parent, which decides
            print(f"error {type(error).__name__}", flush=True)
        else:
            print("ok", flush=True)
    peak_kib = peak_rss_kib()
    print(f"peak_kib {peak_kib} import_ms {import_ms:.1f}", flush=True)


if __name__ == "__main__":
    main()
