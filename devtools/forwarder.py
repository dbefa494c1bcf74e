"""A TCP forwarder: listens on one of this machine's addresses (a container bridge's),
connects each client to a server on 127.0.0.1.

Given the bridge's device, the listening socket is bound to it (``SO_BINDTODEVICE``):
Linux (the weak host model) accepts packets for any of its addresses on *any*
interface, so an address alone would let a neighbour on another network that routes the
bridge's range here reach the suite's servers (moto with every test secret, databases).
Bound to the device, only packets that arrive on the bridge (its containers) connect.

The suite's servers listen on loopback only; containers reach them through this, on the
bridge's address and the server's own port. Bytes pass through untouched, so TLS stays
end to end (the server's certificate must name the address the client dialled).

:class:`Forwarder` runs it in a child process of its own (``python -m devtools.forwarder
HOST PORT TARGET_PORT``; standard library only): a client in the parent that blocks
holding the GIL (psycopg2's ``encrypt_password`` does) would otherwise stall the
forwarding it waits for.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from devtools.processes import start_child, stop_child


class Forwarder:
    """``listen_host:port`` -> ``127.0.0.1:target_port`` in a child process;
    ``port`` defaults to ``target_port``; ``device`` (an interface name) restricts the
    clients to those whose packets arrive on that interface."""

    def __init__(
        self, listen_host: str, target_port: int, port: int | None = None, device: str | None = None
    ) -> None:
        self.listen_host = listen_host
        self.target_port = target_port
        self.port = port or target_port
        self.device = device
        self.process: subprocess.Popen[Any] | None = None

    def start(self) -> Forwarder:
        self.process = start_child(
            [
                sys.executable,
                "-m",
                "devtools.forwarder",
                self.listen_host,
                str(self.port),
                str(self.target_port),
                *([self.device] if self.device else []),
            ],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.PIPE,  # closed when this process ends, however it ends
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "listening":
            self.stop()
            raise RuntimeError(f"the forwarder to port {self.target_port} did not start")
        return self

    def running(self) -> bool:
        """Whether the child still runs (it may have been killed: OOM, a crash)."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the child by its PID."""
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
        stop_child(self.process, timeout=10)


def serve(listen_host: str, port: int, target_port: int, device: str | None = None) -> None:
    """Accept and forward until terminated; prints ``listening`` once bound (to
    ``device`` too when given)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if device is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
    listener.bind((listen_host, port))
    listener.listen()
    print("listening", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # The parent holds our stdin: end of file means it is gone, and so are we.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", target_port), timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        threading.Thread(target=_relay, args=(client, upstream), daemon=True).start()


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    towards_server = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
    towards_server.start()
    _pump(upstream, client)
    towards_server.join()
    client.close()
    upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        # A reset: end both directions (the other pump's recv fails and it returns).
        source.close()
        sink.close()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
