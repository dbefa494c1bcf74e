"""Every Secrets Manager call the rotation makes, in one place.

Secret version values are immutable in Secrets Manager (``PutSecretValue`` with an
existing version id and different data is refused), so a value read or written by
version id is cached for the life of the container: the four steps of one rotation,
invoked back to back, then read each version once.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.awserrors import DENIED, AwsFailure
from common.clients import build_client as build_client  # noqa: PLC0414 - re-exported: its home is common.clients
from common.errors import SecretFormatError, SecretsManagerError, StagingError
from common.rds import system_tags
from common.redaction import clip
from common.secret import DatabaseSecret, parse_object

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_secretsmanager import SecretsManagerClient

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
AWSPREVIOUS = "AWSPREVIOUS"


@dataclass(frozen=True)
class SecretMetadata:
    """What ``DescribeSecret`` says: identity, rotation switch and function, version labels.

    ``rotation_lambda_arn`` is the secret's rotation function (``RotationLambdaARN``), None
    when it has none."""

    arn: str
    name: str
    rotation_enabled: bool
    versions: Mapping[str, tuple[str, ...]]
    rotation_lambda_arn: str | None = None

    def version_with(self, label: str) -> str | None:
        """The version id carrying ``label``, or None."""
        for version_id, labels in self.versions.items():
            if label in labels:
                return version_id
        return None


class SecretStore:
    """The rotation's view of Secrets Manager; counts calls per operation in ``calls``."""

    def __init__(self, client: SecretsManagerClient, cache_size: int = 16) -> None:
        self._client = client
        self._cache: OrderedDict[tuple[str, str], DatabaseSecret] = OrderedDict()
        self._cache_size = cache_size
        self._system_tags: dict[str, dict[str, str]] = {}
        self.calls: Counter[str] = Counter()

    def describe(self, secret_id: str) -> SecretMetadata:
        """``DescribeSecret``; ``RotationEnabled`` is absent on never-rotated secrets."""
        response = self._call("DescribeSecret", SecretId=secret_id)
        versions = {
            version_id: tuple(labels) for version_id, labels in response.get("VersionIdsToStages", {}).items()
        }
        return SecretMetadata(
            arn=response["ARN"],
            name=response["Name"],
            rotation_enabled=bool(response.get("RotationEnabled", False)),
            versions=versions,
            rotation_lambda_arn=response.get("RotationLambdaARN") or None,
        )

    def version(self, arn: str, version_id: str, label: str) -> DatabaseSecret:
        """The parsed value of one version; ``label`` names it in errors."""
        key = (arn, version_id)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        try:
            response = self._call("GetSecretValue", SecretId=arn, VersionId=version_id)
        except SecretsManagerError as error:
            if error.code == "ResourceNotFoundException":
                raise StagingError(f"version {version_id} labelled {label} has no value yet") from error
            raise
        secret = DatabaseSecret.from_json(response.get("SecretString"), f"{label} ({version_id})")
        self._remember(key, secret)
        return secret

    def current_object(self, secret_id: str, what: str) -> dict[str, Any]:
        """The ``AWSCURRENT`` value of another secret (the master secret, named by ``what``)
        as a JSON object, not yet validated (an RDS-managed master secret holds only
        ``username`` and ``password``); never cached, because that secret rotates on its
        own schedule."""
        try:
            response = self._call("GetSecretValue", SecretId=secret_id, VersionStage=AWSCURRENT)
        except SecretsManagerError as error:
            if error.code == "ResourceNotFoundException":
                raise SecretFormatError(
                    f"{what} {clip(secret_id)} does not exist or has no {AWSCURRENT} version"
                ) from error
            raise SecretsManagerError(
                f"cannot read {what} {clip(secret_id)}: GetSecretValue failed with {error.code}", error.code
            ) from error
        text = response.get("SecretString")
        if text is None:
            raise SecretFormatError(f"secret version {what} {AWSCURRENT} has no SecretString")
        return parse_object(text, f"{what} {AWSCURRENT}")

    def system_tags(self, secret_id: str, why: str) -> dict[str, str]:
        """The secret's ``aws:`` tags from ``DescribeSecret``, kept for the container's
        life (the service that owns a secret sets them once). ``why`` says, when the call
        is refused, what the function reads them for."""
        if secret_id not in self._system_tags:
            try:
                response = self._call("DescribeSecret", SecretId=secret_id)
            except SecretsManagerError as error:
                if error.code in DENIED:
                    raise SecretsManagerError(
                        f"secretsmanager:DescribeSecret on {why} was refused ({error.code})", error.code
                    ) from error
                raise
            self._system_tags[secret_id] = system_tags(response)
        return self._system_tags[secret_id]

    def unlabelled_versions(self, arn: str, limit: int) -> list[str]:
        """The ids of the ``limit`` newest versions that carry no staging label, newest
        first (``ListSecretVersionIds`` with deprecated versions; one page holds them all,
        since Secrets Manager keeps about 100 versions)."""
        newer, older = self.unlabelled_versions_around(arn, limit, None)
        return newer + older

    def unlabelled_versions_around(
        self, arn: str, limit: int, version: str | None
    ) -> tuple[list[str], list[str]]:
        """:meth:`unlabelled_versions` in two runs, each newest first: those created after
        ``version`` (an abandoned rotation's, whose ``AWSPENDING`` was removed), and the
        others (``version`` absent from the listing or None: all are the others)."""
        response = self._call("ListSecretVersionIds", SecretId=arn, IncludeDeprecated=True, MaxResults=100)
        versions = response.get("Versions", [])
        # Newest first; versions created in the same second keep the listing's order, later first.
        order = sorted(range(len(versions)), key=lambda i: (_created(versions[i]), i), reverse=True)
        ids = [str(versions[i]["VersionId"]) for i in order]
        cut = ids.index(version) if version in ids else 0
        unlabelled = [
            (position < cut, ids[position])
            for position, i in enumerate(order)
            if not versions[i].get("VersionStages")
        ][:limit]
        return [id_ for newer, id_ in unlabelled if newer], [id_ for newer, id_ in unlabelled if not newer]

    def put_pending(self, arn: str, token: str, secret: DatabaseSecret, rotation_token: str | None) -> bool:
        """Store ``secret`` as version ``token`` labelled ``AWSPENDING``.

        Returns False when the version already holds a value: Secrets Manager refuses to
        change a version's data, so a retried createSecret keeps the first password.
        """
        arguments: dict[str, Any] = {
            "SecretId": arn,
            "ClientRequestToken": token,
            "SecretString": secret.to_json(),
            "VersionStages": [AWSPENDING],
        }
        if rotation_token is not None:
            arguments["RotationToken"] = rotation_token
        try:
            self._call("PutSecretValue", **arguments)
        except SecretsManagerError as error:
            if error.code == "ResourceExistsException":
                return False
            raise
        self._remember((arn, token), secret)
        return True

    def move_label(self, arn: str, label: str, to_version: str, from_version: str | None) -> None:
        """Attach ``label`` to ``to_version``, taking it from ``from_version``."""
        arguments: dict[str, Any] = {"SecretId": arn, "VersionStage": label, "MoveToVersionId": to_version}
        if from_version is not None:
            arguments["RemoveFromVersionId"] = from_version
        self._call("UpdateSecretVersionStage", **arguments)

    def remove_label(self, arn: str, label: str, from_version: str) -> None:
        """Detach ``label`` from ``from_version``."""
        self._call(
            "UpdateSecretVersionStage", SecretId=arn, VersionStage=label, RemoveFromVersionId=from_version
        )

    def _remember(self, key: tuple[str, str], secret: DatabaseSecret) -> None:
        self._cache[key] = secret
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        self.calls[operation] += 1
        method = getattr(self._client, _method_name(operation))
        try:
            response: dict[str, Any] = method(**arguments)
        except Exception as error:
            failure = AwsFailure.of(error)
            if failure is None:
                raise
            raise SecretsManagerError(failure.summary(operation), failure.code) from error
        return response


def _created(version: Mapping[str, Any]) -> float:
    created = version.get("CreatedDate")
    return created.timestamp() if created is not None else 0.0


def _method_name(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
