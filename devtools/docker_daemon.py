"""A throwaway Docker daemon for ``sam local invoke``: state in a temp dir, a bridge of
its own, and no route off this machine.

Started with ``--iptables=false --ip6tables=false --ip-forward=false``: containers reach
only their bridge, whose address is this machine's (the host side of the bridge). With
IP forwarding on, their traffic would be routed off the machine. The bridge is created
here (a name and a /24 no other interface uses, so that two daemons can run side by
side) and removed by :meth:`DockerDaemon.stop`, which stops the daemon by its PID. Ports
that SAM CLI publishes are served by ``docker-proxy`` on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

#: Where the bridge's /24 is chosen (an address range for this machine's own bridges).
BRIDGE_RANGE = ipaddress.IPv4Network("172.29.0.0/16")


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


def _used_networks() -> list[ipaddress.IPv4Network]:
    shown = _ip("-4", "-o", "addr", "show").stdout
    return [ipaddress.IPv4Interface(m).network for m in re.findall(r"inet (\S+)", shown)]


class DockerDaemon:
    """``dockerd`` with its data, exec root, socket and log under one temp dir."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.bridge = f"srbr{secrets.token_hex(4)}"
        self.network: ipaddress.IPv4Network | None = None
        self.process: subprocess.Popen[bytes] | None = None

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
        self.root = Path(tempfile.mkdtemp(prefix="dockerd-"))
        self._create_bridge()
        log = (self.root / "dockerd.log").open("wb")
        self.process = subprocess.Popen(
            [
                # SIGTERM when this process dies, so that a killed test run leaves no
                # daemon behind (its bridge may stay: `ip link delete srbr...`).
                *(["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []),
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
        used = _used_networks()
        subnets = BRIDGE_RANGE.subnets(new_prefix=24)
        free = [n for n in subnets if not any(n.overlaps(u) for u in used)]
        if not free:
            raise DaemonUnavailable(f"no free /24 left in {BRIDGE_RANGE} for a bridge")
        network = self.network = free[secrets.randbelow(len(free))]
        for command in (
            ("link", "add", "name", self.bridge, "type", "bridge"),
            ("addr", "add", f"{self.bridge_address}/{network.prefixlen}", "dev", self.bridge),
            ("link", "set", self.bridge, "up"),
        ):
            result = _ip(*command)
            if result.returncode != 0:
                _ip("link", "delete", self.bridge)
                raise DaemonUnavailable(f"cannot create the bridge: ip {' '.join(command)}: {result.stderr}")

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
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.network is not None:
            _ip("link", "delete", self.bridge)
        if self.root is not None:
            # The daemon unmounts its layers on the way out; anything still mounted stays.
            subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True, check=False)
            shutil.rmtree(self.root, ignore_errors=True)
