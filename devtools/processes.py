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
``scripts/install-system-deps``), a warning elsewhere. The kernel's signal follows the
*thread* that started the child, not the process: every child is therefore started by
one daemon thread that lives as long as this process (a child started from a worker
thread, a ``ThreadPoolExecutor`` setting up stacks side by side, would otherwise be sent
the signal when that thread ends). A command that daemonizes escapes the mechanism
(``pg_ctl start``: its server is a grandchild, which is why the throwaway PostgreSQL
starts ``postgres`` itself); so does whatever a child starts. ``contained=True`` closes
that gap for a command that starts a tree of its own and mounts things
(``debootstrap``): it runs in new PID and mount namespaces (``unshare --pid --mount
--fork --kill-child``) whose ``unshare`` gets SIGKILL when we die (SIGTERM it would
ignore while it waits); its end kills every process of the namespace, and the
namespace's mounts go with it, never visible outside it.

:func:`stop_child` sends a signal (SIGTERM: a clean shutdown), waits a bounded time,
then SIGKILLs and reaps the child.
"""

from __future__ import annotations

import os
import pwd
import queue
import shutil
import signal
import subprocess
import threading
import warnings
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

T = TypeVar("T")


def dies_with_parent(
    command: Sequence[str],
    user: str | None = None,
    *,
    death_signal: signal.Signals = signal.SIGTERM,
    contained: bool = False,
) -> list[str]:
    """``command`` prefixed so that it gets ``death_signal`` when its parent dies (and runs
    as ``user`` when given; in namespaces of its own when ``contained``, whose ``unshare``
    gets SIGKILL: see the module's docstring). Where ``setpriv`` is missing: an error
    when ``user`` or ``contained`` is asked or under CI, else a warning and ``command``
    as is."""
    setpriv = shutil.which("setpriv")
    unshare = shutil.which("unshare")
    if setpriv is None or (contained and unshare is None):
        missing = "setpriv or unshare is missing (apt-get install util-linux; scripts/install-system-deps)"
        if user is not None or contained:
            raise RuntimeError(
                f"this child (as {user or 'us'}, contained: {contained}) needs them: {missing}"
            )
        if os.environ.get("CI"):
            raise RuntimeError(f"a child cannot be tied to the test run: {missing}")
        warnings.warn(f"{missing}: {command[0]} may outlive this process", RuntimeWarning, stacklevel=3)
        return list(command)
    as_user: list[str] = []
    if user is not None:
        # The account's own primary group: a group of the same name need not exist
        # (Debian's nobody is in nogroup).
        as_user = ["--reuid", user, "--regid", str(pwd.getpwnam(user).pw_gid), "--init-groups"]
    if contained:
        assert unshare is not None
        inner = [unshare, "--pid", "--mount", "--fork", "--kill-child", "--", *command]
        return [setpriv, *as_user, "--pdeathsig", "KILL", "--", *inner]
    return [setpriv, *as_user, "--pdeathsig", death_signal.name.removeprefix("SIG"), "--", *command]


def start_child(
    command: Sequence[str],
    *,
    user: str | None = None,
    death_signal: signal.Signals = signal.SIGTERM,
    contained: bool = False,
    **options: Any,
) -> subprocess.Popen[Any]:
    """``subprocess.Popen(command, **options)`` that gets ``death_signal`` when this
    process dies, whichever thread calls it (see the module's docstring); ``user`` runs it
    as that account (we must be root); ``contained`` takes everything it starts and
    mounts with it."""
    argv = dies_with_parent(command, user, death_signal=death_signal, contained=contained)
    return _from_spawner(lambda: subprocess.Popen(argv, **options))


def run_child(
    command: Sequence[str], *, contained: bool = False, timeout: float | None = None, **options: Any
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command, capture_output=True, text=True)`` through
    :func:`start_child`: the command (and, ``contained``, all it starts) ends with us."""
    process = start_child(
        command, contained=contained, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        stop_child(process, timeout=5, how=signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)


class _Spawner:
    """The process's one spawning thread: a daemon thread, started on first use, that
    ends only with the process (and with it, the children's signal)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, call: Callable[[], T]) -> T:
        """``call()`` run by the spawning thread; its result, or its exception raised here."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # first use, or a forked child
                self._thread = threading.Thread(target=self._serve, name="child-spawner", daemon=True)
                self._thread.start()
        done: Future[T] = Future()
        self._requests.put((call, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            call, done = self._requests.get()
            try:
                done.set_result(call())
            except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
                done.set_exception(error)


_from_spawner = _Spawner().run


def process_identity(pid: int) -> str | None:
    """``PID:start-time`` of a running process (a reused PID has another start time);
    ``None`` for a zombie (it has ended: an orphan's may never be reaped in a container
    whose init does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields 3 (state) and 22 (start time); the command name before them may hold
    # spaces: count from ")".
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in {"Z", "X"} else f"{pid}:{fields[19]}"


def runs(identity: str) -> bool:
    """Whether the process :func:`process_identity` named so still runs."""
    pid, _, _ = identity.partition(":")
    return pid.isdigit() and process_identity(int(pid)) == identity


def exit_on_termination(*signals: signal.Signals) -> None:
    """Make SIGTERM and SIGHUP (or ``signals``) end this process the way ^C does: a
    ``SystemExit`` (status 128 + the signal's number) raised in the main thread, so that
    every ``with`` and ``finally`` on the way out runs (Python's default for them ends
    the process at once, leaving servers' data dirs, bridges and daemons' state behind).
    Call it from the main thread of a command-line tool."""

    def leave(number: int, _frame: object) -> None:
        raise SystemExit(128 + number)

    for each in signals or (signal.SIGTERM, signal.SIGHUP):
        signal.signal(each, leave)


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
