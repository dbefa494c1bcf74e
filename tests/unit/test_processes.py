"""Children that die with the process that started them, and stop by their PID."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools.processes import start_child, stop_child

ROOT = Path(__file__).resolve().parents[2]

# A parent that starts a long child through start_child, prints its PID, then waits.
PARENT = """
import subprocess, sys, time
from devtools.processes import start_child
child = start_child([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


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


def test_a_child_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert not _gone(child_pid, within=0.2)
    parent.kill()  # SIGKILL: the parent cleans nothing up
    parent.wait(timeout=10)
    assert _gone(child_pid, within=10)


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
