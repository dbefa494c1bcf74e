"""Free TCP ports on the loopback interface, and starting a server on one without a race.

A probed port is free only at the moment of the probe: another process (another test
session's server, on a shared machine) may bind it before our server does. Servers that
must be told their port in advance therefore start through :func:`start_on_free_port`,
which tries again on a new port when the server reports the port taken; servers we run
in-process bind port 0 and read the port the kernel gave them, which has no race at all.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

#: Each attempt loses only to a process binding the same port within a moment: a few
#: attempts make a collision that persists a sign of something else.
ATTEMPTS = 5


class PortInUseError(RuntimeError):
    """The server could not bind its port: another process took it after the probe."""


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (see the module docstring)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_on_free_port(launch: Callable[[int], T], first: int | None = None) -> T:
    """``launch(port)`` on ``first`` (or a free port); when it raises PortInUseError, again
    on a new free port, up to :data:`ATTEMPTS` times in all."""
    port = first if first is not None else free_port()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return launch(port)
        except PortInUseError:
            if attempt == ATTEMPTS:
                raise
            port = free_port()
    raise AssertionError("unreachable")  # the loop returns or raises


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening TCP socket on a port the kernel picks (read it from ``getsockname``)."""
    return socket.create_server((host, 0))
