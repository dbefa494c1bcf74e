"""A killed run's scratch dir (a Docker daemon's data root, a Lambda image build's root)
is removed by the next run, mounts below it first; nothing not provably a dead run's is
touched. Real dirs and a real tmpfs mount (root)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devtools.processes import process_identity
from devtools.scratch import OWNERS, mounts_below, owned_scratch_dir, reclaim_stale

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def prefix() -> Iterator[str]:
    """A prefix no other run uses; whatever the test left under it is removed."""
    chosen = f"scratch-test-{secrets.token_hex(4)}-"
    yield chosen
    for left in Path(tempfile.gettempdir()).glob(f"{chosen}*"):
        for point in mounts_below(left):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        if left.is_symlink() or left.is_file():
            left.unlink()
        else:
            shutil.rmtree(left, ignore_errors=True)


def _dead_identity() -> str:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    identity = process_identity(child.pid)
    child.kill()  # the child this test started, by its PID
    child.wait()
    assert identity is not None
    return identity


def _left_by_a_dead_run(prefix: str) -> Path:
    directory = owned_scratch_dir(prefix)
    (directory / OWNERS).write_text(_dead_identity() + "\n")
    (directory / "data").mkdir()
    return directory


def test_a_dead_runs_dir_is_removed_a_live_ones_kept(prefix: str) -> None:
    dead = _left_by_a_dead_run(prefix)
    live = owned_scratch_dir(prefix)  # recorded as this process's
    assert reclaim_stale(prefix) == [dead]
    assert not dead.exists()
    assert live.is_dir()


def test_a_dir_without_a_record_is_never_touched(prefix: str) -> None:
    unrecorded = Path(tempfile.mkdtemp(prefix=prefix))
    assert reclaim_stale(prefix) == []
    assert unrecorded.is_dir()


def test_a_symlink_to_a_dead_runs_dir_is_not_followed(prefix: str, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / OWNERS).write_text(_dead_identity() + "\n")
    (elsewhere / "keep").write_text("kept\n")
    link = Path(tempfile.gettempdir()) / f"{prefix}link"
    link.symlink_to(elsewhere)
    assert reclaim_stale(prefix) == []
    assert (elsewhere / "keep").read_text() == "kept\n"


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="mounting needs root")
def test_what_is_mounted_below_a_dead_runs_dir_is_unmounted_first(prefix: str, tmp_path: Path) -> None:
    """rmtree would descend into a mount (a bind mount of real data, /proc): the mount is
    detached first, and what it showed is left whole."""
    dead = _left_by_a_dead_run(prefix)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("kept\n")
    subprocess.run(["mount", "--bind", str(outside), str(dead / "data")], check=True)
    assert mounts_below(dead) == [str(dead / "data")]
    assert reclaim_stale(prefix) == [dead]
    assert not dead.exists()
    assert (outside / "keep").read_text() == "kept\n"
