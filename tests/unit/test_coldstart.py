"""What a container builds once is kept out of the collector's sight."""

from __future__ import annotations

import gc

import pytest

from common.coldstart import long_lived


class Node:
    """A container object the cyclic collector tracks."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def collector_enabled() -> None:
    gc.enable()


def test_the_block_runs_uncollected_and_what_it_built_is_frozen() -> None:
    frozen_before = gc.get_freeze_count()
    with long_lived():
        assert not gc.isenabled()
        built = [Node() for _ in range(100)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(built)


def test_the_collector_is_back_on_after_a_failed_block() -> None:
    with pytest.raises(ImportError), long_lived():
        raise ImportError("no such module")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with long_lived():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
