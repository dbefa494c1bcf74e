"""What a container builds once is kept out of the collector's sight."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.coldstart import long_lived, rotation_handler
from common.handler import RotationFunction
from tests.fake_engine import FakeDatabase, FakeEngine

ROOT = Path(__file__).resolve().parents[2]


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


def test_a_warm_freeze_makes_no_garbage_permanent() -> None:
    """Once something is frozen, long_lived() collects before freezing again: the
    cycles dropped since (a failed invocation's client, exception and frames) are freed,
    not frozen for the container's life."""
    with long_lived():
        kept = Node()  # something frozen: a warm container
    gc.disable()  # no automatic collection may free the garbage first
    try:
        garbage = [Node() for _ in range(5000)]
        del garbage
        frozen_before = gc.get_freeze_count()
        with long_lived():
            pass
        assert gc.get_freeze_count() - frozen_before < 5000
    finally:
        gc.enable()
        gc.unfreeze()
    assert kept.me is kept


def test_a_warm_freeze_does_not_count_what_is_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """long_lived() never asks gc.get_freeze_count(): that walks every object ever
    frozen, and in a process that built many containers (the test suite) each call took
    seconds, enough to push the fault matrix's steps past their deadlines."""

    def count() -> int:
        raise AssertionError("gc.get_freeze_count() called")

    with long_lived():
        pass
    monkeypatch.setattr(gc, "get_freeze_count", count)
    with long_lived():
        pass


def test_a_collector_switched_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with long_lived():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_handler_builds_its_engine_with_the_collector_paused(database: FakeDatabase) -> None:
    seen: list[bool] = []

    def build_engine() -> FakeEngine:
        seen.append(gc.isenabled())
        return FakeEngine(database)

    handler = rotation_handler(build_engine)
    assert seen == [False]
    assert gc.isenabled()
    assert isinstance(handler, RotationFunction)
    assert isinstance(handler.engine, FakeEngine)


# Every rotation function's package, as the handlers are: a new one is covered unasked.
PACKAGES = sorted(app.parent.name for app in (ROOT / "rotators").glob("*/app.py"))

# Run in a new interpreter: a finder first on sys.meta_path notes whether the collector
# was on when the engine module is imported, then the handler module is imported as
# Lambda does.
WATCHED_IMPORT = """
import gc, json, sys
package = sys.argv[1]
collector_on_at_engine_import = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == f"rotators.{package}.engine":
            collector_on_at_engine_import.append(gc.isenabled())
        return None  # the ordinary finders import it

sys.meta_path.insert(0, Watch())
app = __import__(f"rotators.{package}.app", fromlist=["lambda_handler"])
lazy = {"boto3", "psycopg2", "pymysql", "pymongo", "redshift_connector", "redis"}
print(json.dumps({
    "collector_on": collector_on_at_engine_import,
    "engine_module": type(app.lambda_handler.engine).__module__,
    "loaded": sorted(lazy & set(sys.modules)),
}))
"""


def test_every_rotation_package_is_found() -> None:
    assert {"postgresql", "mysql", "mongodb", "redshift", "redis"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_handler_module_builds_its_engine_uncollected_and_lazily(package: str) -> None:
    """As Lambda does: the engine module is imported once, inside rotation_handler with
    the collector paused (an app.py importing it at module level, or building its
    handler another way, shows [True]); boto3 and the database drivers wait for the
    first invocation and connection."""
    result = subprocess.run(
        [sys.executable, "-c", WATCHED_IMPORT, package],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    assert seen["collector_on"] == [False]
    assert seen["engine_module"] == f"rotators.{package}.engine"
    assert seen["loaded"] == []
