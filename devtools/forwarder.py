"""A TCP forwarder: listens on one of this machine's addresses (a container bridge's),
connects each client to a server on 127.0.0.1.

The suite's servers listen on loopback only; containers reach them through this, on the
bridge's address and the server's own port. Bytes pass through untouched, so TLS stays
end to end (the server's certificate must name the address the client dialled).
"""

from __future__ import annotations

import socket
import threading


class Forwarder:
    """``listen_host:port`` -> ``127.0.0.1:target_port``; ``port`` defaults to ``target_port``."""

    def __init__(self, listen_host: str, target_port: int, port: int | None = None) -> None:
        self.listen_host = listen_host
        self.target_port = target_port
        self.port = port or target_port
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> Forwarder:
        self._listener = socket.create_server((self.listen_host, self.port))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True, name=f"forward-{self.port}").start()
        return self

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            # A reset: end both directions (the other pump's recv fails and it returns).
            source.close()
            sink.close()
        finally:
            # The other direction closes its own pair of ends when it sees end of file.
            with self._lock:
                closing = source in self._open and sink not in self._open
                self._open.discard(source)
            if closing:
                source.close()
                sink.close()

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            remaining, self._open = set(self._open), set()
        for connection in remaining:
            connection.close()
