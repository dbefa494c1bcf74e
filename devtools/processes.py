"""Child processes of the test suite and the dev tools (servers, a Docker daemon,
forwarders): started so that they die with the process that started them, stopped by
their PID.

:func:`start_child` runs the command under ``setpriv --pdeathsig TERM`` (util-linux):
the kernel sends the child SIGTERM when its parent dies, however it dies (a test run
killed with SIGKILL included), so that no server outlives the run. ``user`` runs the
child as that account, set by the same ``setpriv`` *before* the signal is armed (a
process that changes its own user, such as ``mariadbd --user``, would lose the
setting). Two limits of the kernel's mechanism: the signal follows the *thread* that
started the child (start children from a thread that lives as long as they should), and
a command that daemonizes escapes it (``pg_ctl start``: its server is a grandchild, which
is why the throwaway PostgreSQL starts ``postgres`` itself).

:func:`stop_child` sends a signal (SIGTERM: a clean shutdown), waits a bounded time,
then SIGKILLs and reaps the child.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


def dies_with_parent(command: Sequence[str], user: str | None = None) -> list[str]:
    """``command`` prefixed so that it gets SIGTERM when its parent dies (and runs as
    ``user`` when given); as is where ``setpriv`` is missing and no ``user`` is asked."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if user is not None:
            raise RuntimeError(f"running a child as {user} needs setpriv (apt-get install util-linux)")
        return list(command)
    as_user = ["--reuid", user, "--regid", user, "--init-groups"] if user is not None else []
    return [setpriv, *as_user, "--pdeathsig", "TERM", "--", *command]


def start_child(command: Sequence[str], *, user: str | None = None, **options: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(command, **options)`` that dies with this process (see the
    module's docstring); ``user`` runs it as that account (we must be root)."""
    return subprocess.Popen(dies_with_parent(command, user), **options)


def stop_child(
    process: subprocess.Popen[Any] | None, *, timeout: float = 30, how: signal.Signals = signal.SIGTERM
) -> None:
    """Send ``how`` to ``process`` (by its PID) unless it has exited, wait at most
    ``timeout`` seconds, then SIGKILL it and reap it. ``None`` is a no-op."""
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait(timeout=10)
