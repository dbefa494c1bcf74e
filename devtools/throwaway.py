"""What every throwaway database server of the test suite shares: a temp dir, a free
port on 127.0.0.1, a CA of its own with a server certificate, and running as the
server's service user when started as root."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.certs import CertificateAuthority
from devtools.ports import free_port
from devtools.processes import dies_with_parent, start_child

if TYPE_CHECKING:
    import subprocess


class ThrowawayServer(ABC):
    """Base of the throwaway servers; subclasses start and stop the process itself."""

    service_user: str = ""
    #: What the server gets when the test run dies (:mod:`devtools.processes`): the
    #: signal that stops it without waiting for its clients.
    death_signal: signal.Signals = signal.SIGTERM

    def __init__(self, prefix: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.host = "127.0.0.1"
        self.port = free_port()
        self.ca: CertificateAuthority | None = None
        #: The names the server certificate carries; add this machine's other addresses
        #: (a container bridge's) before start() for clients that dial them.
        self.certificate_hosts = ["127.0.0.1"]

    @property
    def ca_file(self) -> str:
        assert self.ca is not None, "start() the server first"
        return str(self.ca.cert_path)

    def make_certificates(self) -> tuple[Path, Path]:
        """A CA of this server's own and a certificate for ``certificate_hosts`` (by
        default 127.0.0.1 only, so that a connection to ``localhost`` shows a name
        mismatch being refused); the server's certificate and key paths."""
        self.root.chmod(0o755)
        tls_dir = self.root / "tls"
        tls_dir.mkdir()
        self.ca = CertificateAuthority.create(tls_dir, "test-ca")
        return self.ca.issue_server(tls_dir, "server", self.certificate_hosts)

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def run_as(self) -> str | None:
        """The account the server's processes run as: the service user when we are root
        and the server has one (some refuse root), else None (ours)."""
        return self.service_user if self.as_root and self.service_user else None

    def as_service_user(self, command: list[str]) -> list[str]:
        """``command`` run as :attr:`run_as` (a one-off tool such as ``initdb``), by the
        same mechanism as :meth:`start_service`."""
        user = self.run_as
        return dies_with_parent(command, user) if user is not None else command

    def start_service(self, command: list[str], **options: Any) -> subprocess.Popen[Any]:
        """Start the server's process ``command`` as :attr:`run_as`; it gets
        :attr:`death_signal` when this process dies (``options`` go to ``Popen``)."""
        return start_child(command, user=self.run_as, death_signal=self.death_signal, **options)

    def give_to_service_user(self, *paths: Path) -> None:
        """Make ``paths`` (and everything below directories among them) the service user's."""
        if not self.as_root:
            return
        for path in paths:
            shutil.chown(path, self.service_user, self.service_user)
            if path.is_dir():
                for child in path.rglob("*"):
                    shutil.chown(child, self.service_user, self.service_user)

    @abstractmethod
    def start(self) -> ThrowawayServer:
        """Start the server (TLS with :meth:`make_certificates`); returns itself."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server this object started and remove its files."""

    @abstractmethod
    def connect_as(self, user: str, password: str, dbname: str | None = None) -> Any:
        """A client session over TCP with verified TLS."""

    @abstractmethod
    def is_refusal(self, error: Exception) -> bool:
        """Whether a driver error means the server refused the credentials."""

    def can_login(self, user: str, password: str, dbname: str | None = None) -> bool:
        """Whether a client logs in over verified TLS; False only when the login is refused."""
        try:
            self.connect_as(user, password, dbname).close()
        except Exception as error:
            if self.is_refusal(error):
                return False
            raise
        return True

    def remove_files(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
