"""RDS-managed secrets for applications.

RDS keeps the master credentials of a database created with ``ManageMasterUserPassword``
in a secret holding only ``username`` and ``password``; its system tag names the
database. The rotation functions serve such secrets, so applications must too: a value
without ``host`` and ``engine`` is completed from RDS by the rotation side's own
resolution (``common.rds.RdsDirectory.completed``, which both layers ship), reading the
secret's tags once per container (``secretsmanager:DescribeSecret``) and the database's
writer endpoint from RDS (``rds:DescribeDBInstances`` / ``rds:DescribeDBClusters``, kept
15 minutes). A value with ``host`` and ``engine`` costs no call at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appkit.retrieval import REFERENCE_PREFIX
from common.awserrors import AwsFailure
from common.errors import SecretsManagerError
from common.rds import RdsDirectory, system_tags
from common.redaction import clip

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.secret import DatabaseSecret


class ManagedSecrets:
    """Turns an application's secret values into ``DatabaseSecret``; clients are built
    on first use (injected in tests)."""

    def __init__(self, client: SecretsManagerClient | None = None, rds: RdsDirectory | None = None) -> None:
        self._client = client
        self.rds = rds or RdsDirectory()

    def secret(self, secret_id: str, value: dict[str, Any], where: str) -> DatabaseSecret:
        """``value`` of ``secret_id`` (an ARN, a name or a Parameter Store reference),
        completed from RDS when RDS manages it."""
        secret, _ = self.rds.completed(secret_id, value, where, lambda: self._tags(secret_id))
        return secret

    def _tags(self, secret_id: str) -> dict[str, str]:
        name = secret_id.removeprefix(REFERENCE_PREFIX)
        try:
            response = self._secrets_manager().describe_secret(SecretId=name)
        except Exception as error:
            failure = AwsFailure.of(error)
            if failure is None:
                raise
            raise SecretsManagerError(
                f"{failure.summary(f'secretsmanager:DescribeSecret on {clip(name)}')}: the secret has no "
                "'host' or 'engine' key, and its tags are read to find an RDS-managed secret's database",
                failure.code,
            ) from error
        return system_tags(response)

    def _secrets_manager(self) -> SecretsManagerClient:
        if self._client is None:
            from common.clients import build_client

            self._client = build_client()
        return self._client
