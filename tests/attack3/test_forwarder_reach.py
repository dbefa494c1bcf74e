"""Who can reach what the suite exposes to containers, and what happens when a forwarder dies."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devtools.docker_daemon import DaemonUnavailable, DockerDaemon
from devtools.sam_local import SamLocalStack

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


@pytest.fixture
def daemon() -> Iterator[DockerDaemon]:
    try:
        started = DockerDaemon().start()
    except DaemonUnavailable as reason:
        pytest.skip(str(reason))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """A loopback TCP server that answers every connection with b"secret-service"."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                continue
            client.sendall(b"secret-service")
            client.close()

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        worker.join(timeout=5)
        listener.close()


def _stack_on(daemon: DockerDaemon) -> SamLocalStack:
    stack = SamLocalStack(built=ROOT)  # no build, no image: only the forwarders are used
    stack.daemon = daemon
    return stack


def test_a_dead_forwarder_is_never_replaced(daemon: DockerDaemon, loopback_server: int) -> None:
    """A forwarder whose child process died (OOM killer, a crash in a relay thread,
    someone's kill) is replaced by the next expose() of its port: later invocations
    reach moto and the database again instead of meeting connection refused for the
    stack's life. (Attack round 3 found the dead one handed out forever.)"""
    stack = _stack_on(daemon)
    try:
        host, port = stack.expose(loopback_server)
        forwarder = stack._forwarders[port]
        assert forwarder.process is not None
        forwarder.process.kill()  # the child this test's stack started, by its PID
        forwarder.process.wait(timeout=10)
        host, port = stack.expose(loopback_server)
        try:
            with socket.create_connection((host, port), timeout=5) as client:
                answer = client.recv(64)
        except OSError as error:
            answer = f"{type(error).__name__}".encode()
    finally:
        for each in stack._forwarders.values():
            each.stop()
    assert answer == b"secret-service", f"after the forwarder died, {host}:{port} gives {answer!r}"


def test_the_forwarded_servers_are_reachable_from_beyond_the_bridge(
    daemon: DockerDaemon, loopback_server: int
) -> None:
    """The forwarders listen on the bridge's address, a local address of this machine,
    which Linux (weak host model) accepts packets for on *any* interface. They are bound
    to the bridge's device (SO_BINDTODEVICE), so a neighbour on another network that
    routes the bridge's /24 here does not reach moto or the throwaway databases; only
    containers on the bridge (and this machine itself) do. The neighbour is a network
    namespace joined by a veth pair on a private /30 (no iptables or forwarding change;
    removed afterwards). (Attack round 3 found the neighbour served.)"""
    tag = secrets.token_hex(3)
    namespace, outside, inside = f"a3ns{tag}", f"a3h{tag}", f"a3n{tag}"
    stack = _stack_on(daemon)
    network = daemon.network
    assert network is not None
    host, port = stack.expose(loopback_server)
    link = ipaddress.IPv4Network(f"10.203.{secrets.randbelow(250)}.{4 * secrets.randbelow(60)}/30")
    near, far = (str(a) for a in link.hosts())
    probe = (
        "import socket,sys\n"
        "try:\n"
        f"    s = socket.create_connection(({host!r}, {port}), timeout=3); print(s.recv(64).decode())\n"
        "except OSError as e:\n"
        "    print('refused:', type(e).__name__)\n"
    )
    try:
        for command in (
            ("ip", "netns", "add", namespace),
            ("ip", "link", "add", outside, "type", "veth", "peer", "name", inside),
            ("ip", "link", "set", inside, "netns", namespace),
            ("ip", "addr", "add", f"{near}/30", "dev", outside),
            ("ip", "link", "set", outside, "up"),
            ("ip", "-n", namespace, "addr", "add", f"{far}/30", "dev", inside),
            ("ip", "-n", namespace, "link", "set", inside, "up"),
            ("ip", "-n", namespace, "link", "set", "lo", "up"),
            ("ip", "-n", namespace, "route", "add", str(network), "via", near),
        ):
            result = _run(*command)
            if result.returncode != 0:
                pytest.skip(f"cannot set up the neighbour: {' '.join(command)}: {result.stderr}")
        import sys

        seen = _run("ip", "netns", "exec", namespace, sys.executable, "-c", probe).stdout.strip()
    finally:
        for each in stack._forwarders.values():
            each.stop()
        _run("ip", "link", "delete", outside)
        _run("ip", "netns", "delete", namespace)
    assert seen != "secret-service", f"a host beyond the bridge connected to {host}:{port} and read {seen!r}"
