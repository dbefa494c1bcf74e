"""Checks shared by the engines' hostile-input tests: a secret the function must refuse
at createSecret, with a clear error in the exception and in the log line, naming the
problem and never the hostile value, and with nothing stored."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from common.errors import RotationError
from devtools.service import LambdaContext
from tests.helpers import store_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationService

#: (key, a value with a NUL byte in it); "evil" marks what must never be echoed.
NUL_VALUES = [
    ("host", "127.0.0.1\x00evil"),
    ("username", "app\x00evil"),
    ("password", "Pw-123456\x00evil"),
    ("dbname", "db\x00evil"),
]


def refused_at_create(
    handler: RotationFunction[Any],
    service: RotationService,
    sm_client: SecretsManagerClient,
    caplog: pytest.LogCaptureFixture,
    body: dict[str, Any],
    error: type[Exception],
    match: str,
    hidden: str = "evil",
) -> str:
    """Run createSecret for a new secret holding ``body``: it must raise ``error`` matching
    ``match``, without ``hidden`` in the message or the log, log the same reason in its
    failure line, and store nothing. Returns the error message."""
    arn = store_secret(sm_client, service, f"hostile-{len(json.dumps(body))}", body)
    request = service.start(arn)
    caplog.clear()
    with pytest.raises(error, match=match) as raised:
        handler(request.event("createSecret"), LambdaContext())
    message = str(raised.value)
    assert hidden not in message and hidden not in repr(raised.value)
    failures = [record for record in caplog.records if record.getMessage() == "rotation step failed"]
    assert [(record.__dict__.get("error"), record.__dict__.get("reason")) for record in failures] == [
        (error.__name__, message)
    ]
    assert all(hidden not in str(record.__dict__) for record in caplog.records)
    with pytest.raises(sm_client.exceptions.ResourceNotFoundException):
        sm_client.get_secret_value(SecretId=arn, VersionId=request.token)
    return message


def refused_with_project_error(
    handler: RotationFunction[Any], service: RotationService, arn: str, hidden: str
) -> RotationError:
    """Run createSecret for the secret ``arn``: it must raise an error of the project's tree
    without ``hidden`` in its message. Any other exception fails the test by its type alone
    (its text may hold the hostile value, and is not chained into the report)."""
    request = service.start(arn)
    raw: type[BaseException] | None = None
    try:
        handler(request.event("createSecret"), LambdaContext())
    except RotationError as error:
        assert hidden not in str(error)
        return error
    except Exception as error:  # noqa: BLE001 - any other exception is the defect under test
        raw = type(error)
    if raw is not None:
        pytest.fail(f"raw {raw.__module__}.{raw.__name__} escaped createSecret")
    pytest.fail("createSecret accepted the hostile secret")
