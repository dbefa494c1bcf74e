"""A CA bundle that is not PEM certificates is refused once, in common/tls.py, naming the
variable or key that names it, for every engine (drivers would each fail their own way)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from common.errors import TlsConfigurationError
from common.secret import DatabaseSecret
from common.tls import TlsPolicy
from devtools.certs import CertificateAuthority

if TYPE_CHECKING:
    from pathlib import Path


def secret(**extra: object) -> DatabaseSecret:
    body = {"engine": "mariadb", "host": "h", "username": "u", "password": "Pw-123456", **extra}
    return DatabaseSecret.from_dict(body, "AWSCURRENT")


def not_pem(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "no certificate found in it"),
        (b"just some text\n", "no certificate found in it"),
        (b"\x00\x01\x02 binary, e.g. a DER file", "no certificate found in it"),
        (b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n", "OpenSSL cannot load it"),
    ],
)
def test_a_bundle_that_is_not_pem_certificates_is_named(tmp_path: Path, content: bytes, reason: str) -> None:
    path = not_pem(tmp_path, "bundle.pem", content)
    with pytest.raises(TlsConfigurationError, match="named by DB_CA_BUNDLE is not a PEM file") as raised:
        TlsPolicy.for_secret(secret(), path)
    assert reason in str(raised.value)
    with pytest.raises(TlsConfigurationError, match="named by the secret's 'ca_bundle' key is not a PEM"):
        TlsPolicy.for_secret(secret(ca_bundle=path), None)


def test_a_private_key_is_not_a_ca_bundle(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path, "ca")
    _, key = ca.issue_server(tmp_path, "server", ["127.0.0.1"])
    with pytest.raises(TlsConfigurationError, match="no certificate found"):
        TlsPolicy.for_secret(secret(), str(key))


def test_a_pem_bundle_is_accepted_and_a_repaired_file_is_read_again(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path, "ca")
    assert TlsPolicy.for_secret(secret(), str(ca.cert_path)).ca_file == str(ca.cert_path)
    # The check is cached per file version: a file replaced in place is checked anew.
    path = not_pem(tmp_path, "later.pem", b"not yet")
    with pytest.raises(TlsConfigurationError):
        TlsPolicy.for_secret(secret(), path)
    not_pem(tmp_path, "later.pem", ca.cert_path.read_bytes())
    assert TlsPolicy.for_secret(secret(), path).ca_file == path


def test_plaintext_needs_no_bundle(tmp_path: Path) -> None:
    assert TlsPolicy.for_secret(secret(ssl=False), not_pem(tmp_path, "x.pem", b"x")) == TlsPolicy(False)
