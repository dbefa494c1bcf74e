"""A throwaway Docker daemon for ``sam local invoke``: state in a temp dir, a bridge of
its own, and no route off this machine.

Started with ``--iptables=false --ip6tables=false --ip-forward=false``: containers reach
only their bridge, whose address is this machine's (the host side of the bridge). With
IP forwarding on, their traffic would be routed off the machine. The bridge is created
here (a name and a /24 no other interface uses, so that two daemons can run side by
side) and removed by :meth:`DockerDaemon.stop`, which stops the daemon by its PID. Ports
that SAM CLI publishes are served by ``docker-proxy`` on 127.0.0.1. The daemon dies with
the process that started it (whichever thread started it); a bridge and a temp dir whose
owners were killed before they could remove them are removed by the next start
(:func:`remove_stale_bridges`, :func:`devtools.scratch.reclaim_stale`).
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.processes import process_identity, runs, start_child, stop_child
from devtools.scratch import owned_scratch_dir, reclaim_stale, record_owners

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Where the bridge's /24 is chosen (an address range for this machine's own bridges).
BRIDGE_RANGE = ipaddress.IPv4Network("172.29.0.0/16")
#: Every bridge made here is named so.
BRIDGE_PREFIX = "srbr"
#: One file per bridge made here, named after it, listing the processes that own it (the
#: one that made it, then its daemon) as ``PID:start-time``. Under /run: cleared at boot,
#: as the bridges are.
STATE_DIR = Path("/run/secrets-rotation/docker-bridges")
#: Held (``flock``) while a daemon chooses its /24 and creates its bridge, so that two
#: starting at once see each other's address.
LOCK_NAME = ".lock"
#: How a daemon's temp dir (data root, exec root, socket, log) is named; one a killed
#: run left is removed by the next start (:func:`devtools.scratch.reclaim_stale`).
ROOT_PREFIX = "dockerd-"


class DaemonUnavailable(RuntimeError):  # noqa: N818 - a reason to skip, not a failure
    """No Docker daemon can run here; the message says why."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _ip(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *arguments], capture_output=True, text=True, check=False)


def attached_interfaces(bridge: str) -> list[str]:
    """The interfaces attached to ``bridge`` (a container's veth end, say)."""
    try:
        return sorted(os.listdir(f"/sys/class/net/{bridge}/brif"))
    except FileNotFoundError:
        return []


def remove_stale_bridges(state_dir: Path = STATE_DIR) -> list[str]:
    """Delete the bridges a killed run left behind; their names.

    A bridge is removed only when it is provably one of ours and unused: its name starts
    with ``srbr`` AND ``state_dir`` holds a file for it none of whose recorded owner
    processes still runs AND no interface is attached to it (a daemon killed with
    SIGKILL leaves its containers running, attached: such a bridge is kept, with its
    record, and a line says so). Any other interface, a ``srbr`` bridge without a record
    included, is never touched; records of bridges that are gone are dropped.
    """
    if not state_dir.is_dir():
        return []
    shown = _ip("-o", "link", "show", "type", "bridge").stdout
    bridges = set(re.findall(r"^\d+: ([^:@\s]+)", shown, re.MULTILINE))
    removed = []
    for record in state_dir.iterdir():
        if not record.name.startswith(BRIDGE_PREFIX) or record.name.endswith(".new"):
            continue
        try:
            owners = record.read_text().split()
        except OSError:
            continue
        if any(runs(owner) for owner in owners):
            continue
        if record.name in bridges:
            attached = attached_interfaces(record.name)
            if attached:
                print(
                    f"kept the bridge {record.name} of a Docker daemon that is gone: "
                    f"still in use by {', '.join(attached)}"
                )
                continue
            if _ip("link", "delete", record.name).returncode != 0:
                continue
            removed.append(record.name)
        record.unlink(missing_ok=True)
    return removed


@contextlib.contextmanager
def bridge_lock(state_dir: Path = STATE_DIR) -> Iterator[None]:
    """``flock`` on ``state_dir``/.lock: one daemon at a time chooses a /24 and creates
    its bridge (see :data:`LOCK_NAME`)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / LOCK_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _used_networks() -> list[ipaddress.IPv4Network]:
    shown = _ip("-4", "-o", "addr", "show").stdout
    return [ipaddress.IPv4Interface(m).network for m in re.findall(r"inet (\S+)", shown)]


class DockerDaemon:
    """``dockerd`` with its data, exec root, socket and log under one temp dir."""

    def __init__(self, state_dir: Path = STATE_DIR) -> None:
        self.root: Path | None = None
        self.state_dir = state_dir
        self.bridge = f"{BRIDGE_PREFIX}{secrets.token_hex(4)}"
        self.network: ipaddress.IPv4Network | None = None
        self.process: subprocess.Popen[Any] | None = None
        #: Whether ``ip link add`` made :attr:`bridge` here: only then is it ours to delete
        #: (a failed add may mean the name is another's).
        self._bridge_created = False
        #: Whether the bridge's record was written here (only then is it ours to remove).
        self._recorded = False

    @staticmethod
    def check() -> None:
        """Raise DaemonUnavailable naming what this machine lacks."""
        missing = [tool for tool in ("dockerd", "ip", "docker-proxy") if shutil.which(tool) is None]
        if missing:
            raise DaemonUnavailable(
                f"no Docker daemon can run here: {', '.join(missing)} not found (apt-get install docker.io)"
            )
        if os.geteuid() != 0:
            raise DaemonUnavailable("no Docker daemon can run here: dockerd needs root")
        # The daemon leaves forwarding alone; on a machine that forwards already,
        # containers' packets could be routed off it.
        for switch in ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"):
            if Path(switch).exists() and Path(switch).read_text().strip() != "0":
                raise DaemonUnavailable(f"no Docker daemon is started here: IP forwarding is on ({switch})")

    @property
    def socket_path(self) -> str:
        assert self.root is not None, "start() the daemon first"
        return str(self.root / "docker.sock")

    @property
    def host(self) -> str:
        """The ``DOCKER_HOST`` value of this daemon."""
        return f"unix://{self.socket_path}"

    @property
    def bridge_address(self) -> str:
        """This machine's address on the bridge: what containers connect to."""
        assert self.network is not None, "start() the daemon first"
        return str(self.network.network_address + 1)

    def start(self, timeout: float = 60) -> DockerDaemon:
        self.check()
        for stale in remove_stale_bridges(self.state_dir):
            print(f"removed the bridge {stale} of a Docker daemon that is gone")
        for stale_root in reclaim_stale(ROOT_PREFIX):
            print(f"removed the state {stale_root} of a Docker daemon that is gone")
        self.root = owned_scratch_dir(ROOT_PREFIX)
        self._create_bridge()
        log = (self.root / "dockerd.log").open("wb")
        # Dies with this process; a bridge left by a killed run is removed by the next
        # start (remove_stale_bridges).
        self.process = start_child(
            [
                "dockerd",
                f"--data-root={self.root / 'data'}",
                f"--exec-root={self.root / 'exec'}",
                f"--pidfile={self.root / 'dockerd.pid'}",
                f"--host={self.host}",
                f"--bridge={self.bridge}",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=true",
                "--storage-driver=overlay2",
                "--log-level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._record_owners(os.getpid(), self.process.pid)
        record_owners(self.root, os.getpid(), self.process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.root / "dockerd.log").read_text(errors="replace")[-1500:]
                self.stop()
                raise DaemonUnavailable(f"dockerd exited ({self.process.returncode}): {tail}")
            try:
                if self.api("GET", "/_ping", timeout=2) == "OK":
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise DaemonUnavailable(f"dockerd did not answer within {timeout:.0f} s")

    def _create_bridge(self) -> None:
        with bridge_lock(self.state_dir):
            used = _used_networks()
            subnets = BRIDGE_RANGE.subnets(new_prefix=24)
            free = [n for n in subnets if not any(n.overlaps(u) for u in used)]
            if not free:
                raise DaemonUnavailable(f"no free /24 left in {BRIDGE_RANGE} for a bridge")
            # Recorded before the bridge exists: a concurrent clean-up sees its owner run.
            self._record_owners(os.getpid(), first=True)
            network = self.network = free[secrets.randbelow(len(free))]
            for command in (
                ("link", "add", "name", self.bridge, "type", "bridge"),
                ("addr", "add", f"{self.bridge_address}/{network.prefixlen}", "dev", self.bridge),
                ("link", "set", self.bridge, "up"),
            ):
                result = _ip(*command)
                if result.returncode != 0:
                    self._delete_bridge()
                    raise DaemonUnavailable(
                        f"cannot create the bridge: ip {' '.join(command)}: {result.stderr}"
                    )
                if command[0:2] == ("link", "add"):
                    self._bridge_created = True

    def _delete_bridge(self) -> None:
        """Delete :attr:`bridge` and its record, each only if this object made it."""
        if self._bridge_created:
            _ip("link", "delete", self.bridge)
            self._bridge_created = False
        if self._recorded:
            (self.state_dir / self.bridge).unlink(missing_ok=True)
            self._recorded = False

    def _record_owners(self, *pids: int, first: bool = False) -> None:
        """Write the bridge's record (see STATE_DIR) at once: write, then rename; the
        ``first`` one only where no record of that name exists (else DaemonUnavailable:
        the name is another's, whose record is left as it is)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        owners = [identity for identity in map(process_identity, pids) if identity]
        partial = self.state_dir / f"{self.bridge}.new"
        partial.write_text(" ".join(owners) + "\n")
        if not first:
            partial.rename(self.state_dir / self.bridge)
            return
        try:
            os.link(partial, self.state_dir / self.bridge)
        except FileExistsError:
            raise DaemonUnavailable(f"the bridge name {self.bridge} is recorded already") from None
        finally:
            partial.unlink()
        self._recorded = True

    def api(self, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> Any:
        """One Docker Engine API call; the decoded JSON answer (or text)."""
        connection = _UnixHTTPConnection(self.socket_path, timeout=timeout)
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            raise RuntimeError(f"docker {method} {path}: {response.status} {data[:500]!r}")
        kind = response.getheader("Content-Type", "")
        return json.loads(data) if kind.startswith("application/json") and data else data.decode()

    def has_image(self, name: str) -> bool:
        try:
            self.api("GET", f"/images/{name}/json")
        except RuntimeError:
            return False
        return True

    def stop(self) -> None:
        """Stop the daemon by its PID (its containers with it), remove the bridge and the state."""
        stop_child(self.process)
        self._delete_bridge()
        if self.root is not None:
            # The daemon unmounts its layers on the way out; anything still mounted stays.
            subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True, check=False)
            shutil.rmtree(self.root, ignore_errors=True)
