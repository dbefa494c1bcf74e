"""Starting a server on a free port retries when another process took the port first."""

from __future__ import annotations

import pytest

from devtools.ports import ATTEMPTS, PortInUseError, free_port, start_on_free_port


def test_a_taken_port_is_replaced_by_another() -> None:
    tried: list[int] = []

    def launch(port: int) -> int:
        tried.append(port)
        if len(tried) < 3:
            raise PortInUseError(f"port {port} is taken")
        return port

    first = free_port()
    assert start_on_free_port(launch, first) == tried[-1]
    assert tried[0] == first and len(tried) == 3


def test_it_gives_up_after_a_few_attempts() -> None:
    tried: list[int] = []

    def launch(port: int) -> int:
        tried.append(port)
        raise PortInUseError("taken")

    with pytest.raises(PortInUseError):
        start_on_free_port(launch)
    assert len(tried) == ATTEMPTS


def test_other_failures_are_not_retried() -> None:
    tried: list[int] = []

    def launch(port: int) -> int:
        tried.append(port)
        raise RuntimeError("the server cannot start")

    with pytest.raises(RuntimeError, match="cannot start"):
        start_on_free_port(launch)
    assert len(tried) == 1
