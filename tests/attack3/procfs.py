"""What /proc says about the processes an attack test started (standard library only)."""

from __future__ import annotations

from pathlib import Path


def descendants(pid: int) -> set[int]:
    """The PIDs of every process below ``pid`` now (children, theirs, ...)."""
    found: set[int] = set()
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:  # a process may end while it is looked at (glob raises then)
            tasks = list(Path(f"/proc/{parent}/task").glob("*"))
        except OSError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    stack.append(child)
    return found


def cmdline(pid: int) -> str:
    """The command line of ``pid``, blank-separated; empty when it is gone (or a zombie)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
