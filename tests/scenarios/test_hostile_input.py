"""Input no driver can take is refused on every engine at createSecret, naming the key or
variable and never the value, with nothing stored: NUL bytes (libpq raised a raw
ValueError) and a CA bundle that is not PEM certificates (PyMySQL and PyMongo raised a
bare ssl.SSLError)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from common.errors import SecretFormatError, TlsConfigurationError
from tests.helpers import handler_for
from tests.hostile_input import NUL_VALUES, refused_at_create

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationService
    from tests.engines import Harness
    from tests.scenarios.conftest import Account


@pytest.mark.parametrize(("key", "hostile"), NUL_VALUES)
def test_a_nul_byte_is_refused_naming_the_key(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    handler: RotationFunction[Any],
    account: Account,
    caplog: pytest.LogCaptureFixture,
    key: str,
    hostile: str,
) -> None:
    body = harness.secret(account.user, account.password, account.dbname) | {key: hostile}
    refused_at_create(
        handler, service, sm_client, caplog, body, SecretFormatError, f"key '{key}' contains a NUL byte"
    )
    assert harness.can_login(account.user, account.password, account.dbname)


@pytest.mark.parametrize(
    "content", [b"evil: not a certificate\n", b"0\x82\x03\x1a0\x82\x02\x02evil (DER)"], ids=["text", "der"]
)
def test_a_ca_bundle_that_is_not_pem_names_the_variable(
    harness: Harness,
    sm_client: SecretsManagerClient,
    service: RotationService,
    account: Account,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    content: bytes,
) -> None:
    bundle = tmp_path / "rds-ca-bundle"
    bundle.write_bytes(content)
    handler = handler_for(harness.engine, sm_client, DB_CA_BUNDLE=str(bundle))
    refused_at_create(
        handler,
        service,
        sm_client,
        caplog,
        harness.secret(account.user, account.password, account.dbname),
        TlsConfigurationError,
        r"CA bundle '.*rds-ca-bundle' named by DB_CA_BUNDLE is not a PEM file of CA certificates: "
        "no certificate found",
    )
