"""The Lambda image build killed half way (a CI time-out, a killed test run)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.lambda_image import SCRATCH_PREFIX, ImageUnavailable, find_python
from devtools.scratch import reclaim_stale
from tests.attack3.procfs import cmdline, descendants

ROOT = Path(__file__).resolve().parents[2]


def _mounts_below(prefix: str, pid: int | str = "self") -> list[str]:
    """Mount points under ``prefix`` as process ``pid`` sees them (its mount namespace)."""
    try:
        with open(f"/proc/{pid}/mounts") as mounts:
            return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    except OSError:
        return []


def test_a_killed_image_build_leaves_debootstrap_running_and_proc_mounted(tmp_path: Path) -> None:
    """devtools.lambda_image runs every command of the build (debootstrap first) in PID
    and mount namespaces that die with it: killed with SIGKILL (an OOM kill, a CI
    time-out), no debootstrap goes on installing, and the /proc and /sys it mounted in
    the root never were visible outside its namespace, so nothing stays mounted under
    /tmp (where a later `rm -rf /tmp/*` would descend into them). The killed build's
    scratch dir stays, and the next build removes it (it holds a record naming a dead
    owner). The build's cache goes to a temp XDG_CACHE_HOME here, so the machine's
    cached image is untouched. (Attack round 3 found debootstrap running and /proc
    mounted.)"""
    try:
        find_python()
    except ImageUnavailable as reason:
        pytest.skip(str(reason))
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("building the image needs root and debootstrap")
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.lambda_image"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    scratch = ""
    mounted: list[str] = []
    deadline = time.monotonic() + 300
    ours: set[int] = set()
    while time.monotonic() < deadline and process.poll() is None:
        ours |= descendants(process.pid)
        for pid in ours:
            found = re.search(r"(/tmp/lambda-root-[^/ ]+)/root", cmdline(pid))
            scratch = found.group(1) if found else scratch
        # The build's commands run in a mount namespace of their own: look through theirs.
        mounted = [m for pid in ours for m in _mounts_below(f"{scratch}/", pid)] if scratch else []
        if mounted:
            break
        time.sleep(0.2)
    if not mounted:
        process.kill()
        process.wait()
        for pid in ours:
            if cmdline(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        pytest.skip("the build did not reach debootstrap's mounts (no mirror reachable?)")
    process.kill()  # the build this test started, by its PID
    process.wait(timeout=10)
    time.sleep(3)
    running = {pid: cmdline(pid)[:60] for pid in ours if cmdline(pid)}
    still_mounted = _mounts_below(f"{scratch}/")
    # Clean up what the killed build left: its processes (by PID), mounts and dir.
    leftovers = set(running)
    for pid in running:
        leftovers |= descendants(pid)  # what debootstrap started after the kill
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    for point in sorted(_mounts_below(f"{scratch}/"), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left_dir = Path(scratch).exists()
    reclaimed = reclaim_stale(SCRATCH_PREFIX)  # what the next build does first
    if not _mounts_below(f"{scratch}/"):
        shutil.rmtree(scratch, ignore_errors=True)
    assert not running and not still_mounted, (
        f"after the build was killed: still running {sorted(running.values())}, still mounted {still_mounted}"
    )
    assert left_dir, "the killed build's scratch dir was gone already: the reclaiming is not tested"
    assert Path(scratch) in reclaimed, "the next build does not reclaim the dead build's dir"
