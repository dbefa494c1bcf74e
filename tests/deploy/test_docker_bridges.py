"""A bridge left by a killed test run is removed by the next Docker daemon's start;
nothing that is not provably ours and unused is touched. Real interfaces (root, ``ip``)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devtools.docker_daemon import (
    BRIDGE_PREFIX,
    DaemonUnavailable,
    DockerDaemon,
    remove_stale_bridges,
)
from devtools.processes import process_identity

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]

if os.geteuid() != 0 or shutil.which("ip") is None:
    reason = "creating network interfaces needs root and ip (iproute2)"
    if os.environ.get("CI"):
        pytest.fail(f"cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode == 0


@pytest.fixture
def bridges() -> Iterator[list[str]]:
    """Names of bridges a test creates; whatever is left is deleted afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        if _exists(name):
            subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


def _bridge(bridges: list[str], prefix: str = BRIDGE_PREFIX) -> str:
    name = f"{prefix}{secrets.token_hex(4)}"[:15]
    subprocess.run(["ip", "link", "add", "name", name, "type", "bridge"], check=True)
    bridges.append(name)
    return name


def _dead_process() -> str:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    identity = process_identity(child.pid)
    child.kill()
    child.wait()
    assert identity is not None
    return identity


def test_a_bridge_whose_owners_are_gone_is_removed(tmp_path: Path, bridges: list[str]) -> None:
    stale = _bridge(bridges)
    (tmp_path / stale).write_text(f"{_dead_process()} {_dead_process()}\n")
    assert remove_stale_bridges(tmp_path) == [stale]
    assert not _exists(stale)
    assert not (tmp_path / stale).exists()


def test_a_bridge_with_one_owner_alive_is_kept(tmp_path: Path, bridges: list[str]) -> None:
    # The daemon may outlive the test process for a moment (it got SIGTERM).
    live = _bridge(bridges)
    (tmp_path / live).write_text(f"{_dead_process()} {process_identity(os.getpid())}\n")
    assert remove_stale_bridges(tmp_path) == []
    assert _exists(live)


def test_a_reused_pid_is_not_a_live_owner(tmp_path: Path, bridges: list[str]) -> None:
    stale = _bridge(bridges)
    (tmp_path / stale).write_text(f"{os.getpid()}:1\n")  # our PID, another start time
    assert remove_stale_bridges(tmp_path) == [stale]


def test_interfaces_without_a_record_or_of_another_name_are_never_touched(
    tmp_path: Path, bridges: list[str]
) -> None:
    unrecorded = _bridge(bridges)  # ours by name, but no record: maybe another tool's
    foreign = _bridge(bridges, prefix="xtbr")
    (tmp_path / foreign).write_text(f"{_dead_process()}\n")  # a record does not make it ours
    assert remove_stale_bridges(tmp_path) == []
    assert _exists(unrecorded)
    assert _exists(foreign)


def test_a_record_whose_bridge_is_gone_is_dropped(tmp_path: Path) -> None:
    record = tmp_path / f"{BRIDGE_PREFIX}{secrets.token_hex(4)}"
    record.write_text(f"{_dead_process()}\n")
    assert remove_stale_bridges(tmp_path) == []
    assert not record.exists()


# A test run that starts a daemon, prints its bridge, and waits to be killed.
KILLED_RUN = """
import time
from devtools.docker_daemon import DockerDaemon
daemon = DockerDaemon()
daemon.start()
print(daemon.bridge, daemon.process.pid, flush=True)
time.sleep(300)
"""


def test_a_run_killed_with_sigkill_leaves_a_bridge_the_next_start_removes(bridges: list[str]) -> None:
    try:
        DockerDaemon.check()
    except DaemonUnavailable as reason:
        if os.environ.get("CI"):
            pytest.fail(f"cannot run in CI: {reason}")
        pytest.skip(str(reason))
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    bridge, daemon_pid = run.stdout.readline().split()
    bridges.append(bridge)
    run.kill()
    run.wait(timeout=10)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process_identity(int(daemon_pid)) is not None:
        time.sleep(0.2)  # the daemon got SIGTERM with its parent: it stops its containers
    assert _exists(bridge)  # nobody removed it
    following = DockerDaemon()
    try:
        following.start()
        assert not _exists(bridge)
        assert _exists(following.bridge)
    finally:
        following.stop()
    assert not _exists(following.bridge)
