"""Children that die with the process that started them, and stop by their PID."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.processes import dies_with_parent, start_child, stop_child

ROOT = Path(__file__).resolve().parents[2]

# A parent that starts a long child through start_child (as the account and with the
# death signal its arguments name), prints the child's PID, then waits.
PARENT = """
import signal, sys, time
from devtools.processes import start_child
user = sys.argv[1] or None
child = start_child([sys.executable, "-c", sys.argv[3]], user=user, death_signal=signal.Signals[sys.argv[2]])
print(child.pid, flush=True)
time.sleep(120)
"""
SLEEPER = "import time; time.sleep(120)"
# Ignores SIGTERM, leaves on SIGQUIT: only the death signal asked for ends it.
DEAF_TO_SIGTERM = (
    "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "signal.signal(signal.SIGQUIT, lambda *_: os._exit(3)); time.sleep(120)"
)


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # exited, not yet reaped by init
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def _uid_once_started(pid: int, command: str) -> int:
    """The real uid of ``pid`` once ``setpriv`` has become ``command`` (it switches the
    user and then execs the command in the same process; before that, ``command`` is one
    of setpriv's own arguments)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if arguments[0] == sys.executable.encode() and command.encode() in arguments:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Uid:"):
                    return int(line.split()[1])
        time.sleep(0.02)
    raise AssertionError(f"{pid} did not start {command!r}")


def _start_parent(user: str, death_signal: str, command: str) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, user, death_signal, command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def _kill(parent: subprocess.Popen[str]) -> None:
    parent.kill()  # SIGKILL: the parent cleans nothing up
    parent.wait(timeout=10)


@pytest.mark.parametrize("user", [None, "nobody"])
def test_a_child_dies_when_its_parent_is_killed(user: str | None) -> None:
    """As this process's user, and as another account (``--reuid`` set before
    ``--pdeathsig``, which a change of user would clear)."""
    if user is not None and os.geteuid() != 0:
        pytest.skip("running a child as another user needs root")
    parent, child_pid = _start_parent(user or "", "SIGTERM", SLEEPER)
    expected_uid = pwd.getpwnam(user).pw_uid if user else os.getuid()
    assert _uid_once_started(child_pid, SLEEPER) == expected_uid
    assert not _gone(child_pid, within=0.2)
    _kill(parent)
    assert _gone(child_pid, within=10)


def test_the_death_signal_is_the_one_asked_for() -> None:
    """A child deaf to SIGTERM (as a server whose SIGTERM waits for its clients) still
    dies with its parent when given SIGQUIT."""
    parent, child_pid = _start_parent("", "SIGQUIT", DEAF_TO_SIGTERM)
    _uid_once_started(child_pid, DEAF_TO_SIGTERM)
    assert not _gone(child_pid, within=0.2)
    _kill(parent)
    assert _gone(child_pid, within=10)


def test_without_setpriv_ci_fails_and_elsewhere_warns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no setpriv on it
    monkeypatch.setenv("CI", "true")
    with pytest.raises(RuntimeError, match=r"setpriv or unshare is missing.*util-linux"):
        dies_with_parent(["sleep", "1"])
    monkeypatch.delenv("CI")
    with pytest.warns(RuntimeWarning, match="sleep may outlive this process"):
        assert dies_with_parent(["sleep", "1"]) == ["sleep", "1"]
    with pytest.raises(RuntimeError, match="as nobody.*needs them"):
        dies_with_parent(["sleep", "1"], "nobody")


def test_a_child_that_ignores_sigterm_is_killed_after_the_wait() -> None:
    child = start_child(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    started = time.monotonic()
    stop_child(child, timeout=0.5)
    assert child.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_stopping_is_a_clean_sigterm_when_the_child_obeys_it() -> None:
    child = start_child([sys.executable, "-c", "import time; time.sleep(120)"])
    stop_child(child)
    assert child.returncode == -signal.SIGTERM
    stop_child(child)  # again: nothing left to stop
    stop_child(None)
