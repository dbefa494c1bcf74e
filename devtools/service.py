"""Secrets Manager's own side of a rotation, played against moto.

moto models staging labels well, but its ``rotate_secret`` differs from AWS where a
rotation function would notice (``../shared/DESIGN.md`` section 5): it sends the secret's
name instead of its ARN and no ``RotationToken``, lets ``PutSecretValue`` overwrite a
pending version's value, and refuses the next rotation when ``AWSPENDING`` sits on the
current version. So the test suite and the local runner do what the service does
themselves: enable rotation, register the pending version with no value, then invoke
the function once per step with the event AWS sends. :func:`behave_like_aws` closes the
``PutSecretValue`` gap so that no test passes because of it.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devtools.lambda_child import Context as LambdaContext

__all__ = ["STEPS", "LambdaContext", "RotationRequest", "RotationService", "behave_like_aws"]

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
DEFAULT_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class RotationRequest:
    """One started rotation: the version id and the opaque token AWS would send."""

    arn: str
    token: str
    rotation_token: str = field(repr=False)

    def event(self, step: str) -> dict[str, str]:
        return {
            "Step": step,
            "SecretId": self.arn,
            "ClientRequestToken": self.token,
            "RotationToken": self.rotation_token,
        }


Handler = Callable[[dict[str, Any], Any], Any]


class RotationService:
    """Plays Secrets Manager's part on a moto backend (in-process or moto's server
    started in this process)."""

    def __init__(self, region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT) -> None:
        self.region = region
        self.account_id = account_id

    def _secret(self, secret_id: str) -> Any:
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[self.account_id][self.region]
        return backend.secrets[secret_id]

    def enable_rotation(self, secret_id: str, days: int = 30, function_arn: str | None = None) -> None:
        """What ``RotateSecret`` with rotation rules records, without starting a rotation;
        ``function_arn`` is the rotation function's (a default one when None)."""
        secret = self._secret(secret_id)
        secret.rotation_enabled = True
        secret.rotation_requested = True
        secret.auto_rotate_after_days = days
        secret.rotation_lambda_arn = (
            function_arn or f"arn:aws:lambda:{self.region}:{self.account_id}:function:rotation-function"
        )

    def start(self, secret_id: str) -> RotationRequest:
        """Register a new version labelled ``AWSPENDING`` with no value, as AWS does
        before it invokes createSecret; refused while another rotation is in progress."""
        secret = self._secret(secret_id)
        for version_id, version in secret.versions.items():
            stages = version.get("version_stages", [])
            if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
                raise RuntimeError(
                    f"a rotation is still in progress: version {version_id} is labelled AWSPENDING"
                )
        token = str(uuid.uuid4())
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[token] = {
            "createdate": int(time.time()),
            "version_id": token,
            "version_stages": ["AWSPENDING"],
        }
        return RotationRequest(arn=secret.arn, token=token, rotation_token=secrets.token_urlsafe(32))

    def rotate(
        self,
        handler: Handler,
        secret_id: str,
        on_step: Callable[[str], None] | None = None,
    ) -> RotationRequest:
        """A whole rotation: start, then each step once, in order."""
        request = self.start(secret_id)
        for step in STEPS:
            if on_step is not None:
                on_step(step)
            handler(request.event(step), LambdaContext("rotation-function"))
        return request


def behave_like_aws() -> None:
    """Close two gaps between moto and AWS that a rotation function would notice.

    * ``PutSecretValue`` that would change an existing version's value: AWS raises
      ResourceExistsException; moto overwrites a version labelled AWSPENDING.
    * ``DescribeSecret``'s ``VersionIdsToStages``: AWS lists only versions that carry a
      label; moto lists unlabelled ones too (with no stages), which would let a function
      find an abandoned version without ``ListSecretVersionIds``.
    * ``ListSecretVersionIds``' ``CreatedDate``: moto answers the time of the call for
      every version; AWS the version's creation time (newest-first ordering depends on it).

    Idempotent; affects this process's moto only.
    """
    from moto.secretsmanager import models
    from moto.secretsmanager.exceptions import ResourceExistsException

    backend_class = models.SecretsManagerBackend
    if getattr(backend_class, "_aws_put_semantics", False):
        return

    def labelled_versions_only(self: Any) -> dict[str, Any]:
        return {
            key: value["version_stages"] for key, value in self.versions.items() if value["version_stages"]
        }

    models.FakeSecret._form_version_ids_to_stages = labelled_versions_only  # type: ignore[method-assign]
    list_versions = backend_class.list_secret_version_ids

    def versions_with_creation_dates(self: Any, secret_id: str) -> str:
        listing = json.loads(list_versions(self, secret_id))
        stored = self.secrets[secret_id].versions
        for version in listing["Versions"]:
            version["CreatedDate"] = stored[version["VersionId"]]["createdate"]
        return json.dumps(listing)

    backend_class.list_secret_version_ids = versions_with_creation_dates  # type: ignore[method-assign]
    original = backend_class._check_with_existing_secrets_and_versions

    def check(
        self: Any, secret_name: str, client_request_token: str | None, *args: Any, **kwargs: Any
    ) -> Any:
        secret_string, secret_binary = (*args, None, None)[:2]
        version = None
        if client_request_token and secret_name in self.secrets:
            version = self.secrets[secret_name].versions.get(client_request_token)
        has_value = version is not None and ("secret_string" in version or "secret_binary" in version)
        stored = (version or {}).get("secret_string"), (version or {}).get("secret_binary")
        if has_value and stored != (secret_string, secret_binary):
            raise ResourceExistsException(
                f"You can't use ClientRequestToken {client_request_token} because that value "
                "is already in use for a version of this secret."
            )
        return original(self, secret_name, client_request_token, *args, **kwargs)

    backend_class._check_with_existing_secrets_and_versions = check  # type: ignore[method-assign]
    backend_class._aws_put_semantics = True  # type: ignore[attr-defined]
