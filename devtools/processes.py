"""Child processes of the test suite and the dev tools (servers, a Docker daemon,
forwarders): started so that they die with the process that started them, stopped by
their PID.

:func:`start_child` runs the command under ``setpriv --pdeathsig`` (util-linux): the
kernel sends the child ``death_signal`` (SIGTERM unless told) when its parent dies,
however it dies (a test run killed with SIGKILL included), so that no server outlives
the run. A server whose SIGTERM is a graceful shutdown that waits for its clients
(PostgreSQL's "smart" mode) is given the signal that stops it at once. ``user`` runs the
child as that account, set by the same ``setpriv`` *before* the signal is armed (a
process that changes its own user, such as ``mariadbd --user``, would lose the setting);
this is the one way the suite runs anything as another user. Without ``setpriv`` a child
cannot be tied to its parent: an error under CI (``CI`` set; the package is in
``scripts/install-system-deps``), a warning elsewhere. Two limits of the kernel's
mechanism: the signal follows the *thread* that started the child (start children from a
thread that lives as long as they should), and a command that daemonizes escapes it
(``pg_ctl start``: its server is a grandchild, which is why the throwaway PostgreSQL
starts ``postgres`` itself).

:func:`stop_child` sends a signal (SIGTERM: a clean shutdown), waits a bounded time,
then SIGKILLs and reaps the child.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


def dies_with_parent(
    command: Sequence[str], user: str | None = None, *, death_signal: signal.Signals = signal.SIGTERM
) -> list[str]:
    """``command`` prefixed so that it gets ``death_signal`` when its parent dies (and runs
    as ``user`` when given). Where ``setpriv`` is missing: an error when ``user`` is given
    or under CI, else a warning and ``command`` as is."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        missing = "setpriv is missing (apt-get install util-linux; scripts/install-system-deps)"
        if user is not None:
            raise RuntimeError(f"running a child as {user} needs setpriv: {missing}")
        if os.environ.get("CI"):
            raise RuntimeError(f"a child cannot be tied to the test run: {missing}")
        warnings.warn(f"{missing}: {command[0]} may outlive this process", RuntimeWarning, stacklevel=3)
        return list(command)
    as_user: list[str] = []
    if user is not None:
        # The account's own primary group: a group of the same name need not exist
        # (Debian's nobody is in nogroup).
        as_user = ["--reuid", user, "--regid", str(pwd.getpwnam(user).pw_gid), "--init-groups"]
    return [setpriv, *as_user, "--pdeathsig", death_signal.name.removeprefix("SIG"), "--", *command]


def start_child(
    command: Sequence[str],
    *,
    user: str | None = None,
    death_signal: signal.Signals = signal.SIGTERM,
    **options: Any,
) -> subprocess.Popen[Any]:
    """``subprocess.Popen(command, **options)`` that gets ``death_signal`` when this
    process dies (see the module's docstring); ``user`` runs it as that account (we must
    be root)."""
    return subprocess.Popen(dies_with_parent(command, user, death_signal=death_signal), **options)


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
