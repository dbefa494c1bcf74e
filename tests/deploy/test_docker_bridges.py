"""A bridge left by a killed test run is removed by the next Docker daemon's start;
nothing that is not provably ours and unused is touched. Real interfaces (root, ``ip``)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devtools.docker_daemon import (
    BRIDGE_PREFIX,
    DaemonUnavailable,
    DockerDaemon,
    bridge_lock,
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


def test_a_stale_bridge_still_in_use_is_kept_and_said_so(
    tmp_path: Path, bridges: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A daemon killed with SIGKILL leaves its containers running, their veth ends on the
    bridge: its owners are gone, but it is in use."""
    stale = _bridge(bridges)
    (tmp_path / stale).write_text(f"{_dead_process()}\n")
    veth = f"srve{secrets.token_hex(4)}"
    subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}p"], check=True)
    try:
        subprocess.run(["ip", "link", "set", veth, "master", stale], check=True)
        assert remove_stale_bridges(tmp_path) == []
        assert _exists(stale)
        assert (tmp_path / stale).exists()  # tried again by the next start
        assert f"kept the bridge {stale} of a Docker daemon that is gone: still in use by {veth}" in (
            capsys.readouterr().out
        )
    finally:
        subprocess.run(["ip", "link", "delete", veth], capture_output=True, check=False)
    assert remove_stale_bridges(tmp_path) == [stale]  # once nothing is attached


def test_a_bridge_name_taken_by_another_is_never_deleted(tmp_path: Path, bridges: list[str]) -> None:
    """``ip link add`` fails: neither the error path nor stop() deletes that interface."""
    taken = _bridge(bridges)  # someone else's srbr...
    daemon = DockerDaemon(tmp_path)
    daemon.bridge = taken
    with pytest.raises(DaemonUnavailable, match="cannot create the bridge: ip link add"):
        daemon._create_bridge()
    assert _exists(taken)
    daemon.stop()
    assert _exists(taken)
    assert not (tmp_path / taken).exists()  # our record went with our attempt


def test_a_bridge_name_already_recorded_leaves_that_record_alone(tmp_path: Path) -> None:
    daemon = DockerDaemon(tmp_path)
    record = tmp_path / daemon.bridge
    record.write_text("another run's owners\n")
    with pytest.raises(DaemonUnavailable, match="recorded already"):
        daemon._create_bridge()
    daemon.stop()
    assert record.read_text() == "another run's owners\n"
    assert not _exists(daemon.bridge)


def test_the_subnet_is_chosen_and_the_bridge_made_under_the_lock(tmp_path: Path, bridges: list[str]) -> None:
    """Two daemons starting at once would otherwise both see a /24 free and take it."""
    daemon = DockerDaemon(tmp_path)
    bridges.append(daemon.bridge)
    creating = threading.Thread(target=daemon._create_bridge)
    try:
        with bridge_lock(tmp_path):  # another daemon, choosing
            creating.start()
            time.sleep(0.5)
            assert daemon.network is None
            assert not _exists(daemon.bridge)
        creating.join(timeout=10)
        assert _exists(daemon.bridge)
        assert daemon.network is not None
    finally:
        creating.join(timeout=10)
        daemon.stop()
    assert not _exists(daemon.bridge)


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
