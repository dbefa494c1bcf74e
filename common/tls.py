"""TLS policy: verified by default, plaintext only when the secret says ``"ssl": false``.

There is no fallback: a server without TLS, or with a certificate that does not match
the host or the trusted CAs, fails the connection with a clear error.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.errors import TlsConfigurationError

if TYPE_CHECKING:
    from common.secret import DatabaseSecret


@dataclass(frozen=True)
class TlsPolicy:
    """How to connect: ``enabled`` means verify-full (CA chain and host name).

    ``ca_file`` is a PEM bundle path; ``None`` means the system trust store.
    """

    enabled: bool
    ca_file: str | None = None

    def trust_anchor(self) -> str:
        """The PEM bundle to verify against: the configured one or the system's."""
        return self.ca_file or system_ca_bundle()

    @classmethod
    def for_secret(cls, secret: DatabaseSecret, default_ca_bundle: str | None) -> TlsPolicy:
        """The policy for ``secret``: its ``ca_bundle`` key wins over ``DB_CA_BUNDLE``."""
        if secret.ssl is False:
            return cls(enabled=False)
        if secret.ca_bundle is not None:
            return cls(enabled=True, ca_file=_existing(secret.ca_bundle, "the secret's 'ca_bundle' key"))
        if default_ca_bundle is not None:
            return cls(enabled=True, ca_file=_existing(default_ca_bundle, "DB_CA_BUNDLE"))
        return cls(enabled=True)


# Debian/Ubuntu, Amazon Linux/RHEL (the Lambda runtimes), Alpine/SUSE.
_SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
)


def system_ca_bundle() -> str:
    """The system trust store as a PEM file, which every driver can take.

    Drivers that bundle their own TLS library (psycopg2-binary does) would otherwise
    look for the store where their build machine kept it.
    """
    import ssl

    default = ssl.get_default_verify_paths().cafile
    for candidate in (default, *_SYSTEM_BUNDLES):
        if candidate and os.path.isfile(candidate):
            return candidate
    raise TlsConfigurationError("no system CA bundle found: set DB_CA_BUNDLE to a PEM file")


def _existing(path: str, source: str) -> str:
    candidates = [path]
    if not os.path.isabs(path):
        # A bundle shipped with the function or a layer is named relative to it.
        for root in (os.environ.get("LAMBDA_TASK_ROOT"), "/opt"):
            if root:
                candidates.append(os.path.join(root, path))
    for candidate in candidates:
        if os.path.isfile(candidate):
            found = os.path.abspath(candidate)
            _check_pem(found, path, source)
            return found
    raise TlsConfigurationError(f"CA bundle {path!r} named by {source} is not a readable file")


def _check_pem(found: str, path: str, source: str) -> None:
    """Refuse a bundle that holds no usable PEM certificate, once for every engine: each
    driver would otherwise fail in its own way (libpq names the file, PyMySQL and PyMongo
    raise a bare ``ssl.SSLError``)."""
    try:
        stat = os.stat(found)
    except OSError as error:
        raise TlsConfigurationError(
            f"CA bundle {path!r} named by {source} is not a readable file ({error.strerror})"
        ) from None
    reason = _pem_problem(found, stat.st_mtime_ns, stat.st_size)
    if reason is not None:
        raise TlsConfigurationError(
            f"CA bundle {path!r} named by {source} is not a PEM file of CA certificates: {reason}"
        )


@functools.lru_cache(maxsize=16)
def _pem_problem(found: str, mtime_ns: int, size: int) -> str | None:
    """Why OpenSSL cannot load ``found`` as CA certificates, or None; cached per file
    version (path, modification time, size), so a warm container reads a bundle once."""
    import ssl

    try:
        ssl.create_default_context(cafile=found)
    except ssl.SSLError as error:
        if error.reason == "NO_CERTIFICATE_OR_CRL_FOUND":
            return "no certificate found in it"
        return f"OpenSSL cannot load it ({error.reason or error.library or 'unknown reason'})"
    except (OSError, ValueError) as error:
        return type(error).__name__
    return None
