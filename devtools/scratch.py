"""Scratch dirs under the temp dir that outlive a killed run, and their reclaiming.

A run killed with SIGKILL runs no ``finally``: its scratch dir (a Docker daemon's data
root with an imported ~260 MB image, a half-built Lambda root file system) stays, with
whatever is mounted in it. :func:`owned_scratch_dir` makes the dir with a record of the
processes that use it (``.owners``: ``PID:start-time`` each, see
:func:`devtools.processes.process_identity`); :func:`reclaim_stale` (called by the next
run) removes the dirs provably left by dead runs, and nothing else: a dir is removed
only when it is a real dir directly in the temp dir, its name has the given prefix, it
holds a regular ``.owners`` file that this user owns, and none of the recorded processes
still runs. What is mounted below it is unmounted first; a dir whose mounts cannot all
be removed is left (never descend into a mount with ``rmtree``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from devtools.processes import process_identity, runs

OWNERS = ".owners"


def owned_scratch_dir(prefix: str, *pids: int) -> Path:
    """A new dir ``<temp dir>/<prefix>*`` recorded as used by this process (and ``pids``)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    record_owners(directory, os.getpid(), *pids)
    return directory


def record_owners(directory: Path, *pids: int) -> None:
    """Record ``pids`` as the processes using ``directory``, at once (write, then rename)."""
    owners = [identity for identity in map(process_identity, pids) if identity]
    partial = directory / f"{OWNERS}.new"
    partial.write_text(" ".join(owners) + "\n")
    partial.rename(directory / OWNERS)


def mounts_below(directory: Path) -> list[str]:
    """The mount points strictly below ``directory`` in this mount namespace, deepest first."""
    with open("/proc/self/mounts") as mounts:
        # /proc/mounts escapes blanks and backslashes as octal (\040).
        points = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split()[1]) for line in mounts]
    return sorted((p for p in points if p.startswith(f"{directory}/")), key=len, reverse=True)


def unmount_below(directory: Path) -> bool:
    """Detach everything mounted below ``directory``; whether nothing is left."""
    for point in mounts_below(directory):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return not mounts_below(directory)


def reclaim_stale(prefix: str) -> list[Path]:
    """Remove the scratch dirs ``<temp dir>/<prefix>*`` of dead runs (see the module's
    docstring for what proves a dir is one); the dirs removed."""
    removed = []
    for candidate in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        record = candidate / OWNERS
        try:
            if not stat.S_ISDIR(candidate.lstat().st_mode):
                continue
            facts = record.lstat()
            if not stat.S_ISREG(facts.st_mode) or facts.st_uid != os.geteuid():
                continue
            owners = record.read_text().split()
        except OSError:
            continue  # no record (not ours, or not written yet): never touched
        if any(runs(owner) for owner in owners) or not unmount_below(candidate):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed
