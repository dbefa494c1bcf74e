"""Amazon ElastiCache (Redis OSS, Valkey) and MemoryDB users, through the service's API.

ElastiCache and MemoryDB do not let a client change a user with ``ACL SETUSER``: a
user's passwords are set with ElastiCache's ``ModifyUser`` (``Passwords``) or MemoryDB's
``UpdateUser`` (``AuthenticationMode``). Both hold up to two passwords, so a rotation
sets ``[pending, current]``: the current password keeps working, the one before it goes.
The user is ``modifying`` for a while afterwards and refuses another change until it is
``active`` again: every change waits before and after. All the waits of one step share
one :class:`WaitBudget` (the engine gives every :class:`ManagedUser` of a step the same),
and every wait also stops before the step's deadline, keeping the time of one more
``DescribeUsers`` call (StepTimeLimitError, not Lambda's silent time-out).

The service client comes from the handler (``common.clients``): this module never
imports boto3 and recognises the service's errors by their documented shape
(``error.response["Error"]["Code"]``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from common.awserrors import AwsFailure
from common.clients import CALL_SECONDS
from common.deadline import UNBOUNDED, Deadline
from common.errors import DatabaseOperationError, PermissionDeniedError, SecretFormatError

#: (service, region) -> a boto3 client of that service.
ServiceClients = Callable[[str, str], Any]
Service = Literal["elasticache", "memorydb"]
ACTIVE = "active"
_METHODS = {
    "DescribeUserGroups": "describe_user_groups",
    "DescribeReplicationGroups": "describe_replication_groups",
    "DescribeACLs": "describe_acls",
    "DescribeClusters": "describe_clusters",
}


@dataclass(frozen=True)
class UserArn:
    """An ElastiCache (``...:user:<user id>``) or MemoryDB (``...:user/<name>``) user."""

    arn: str
    service: Service
    region: str
    user: str

    @classmethod
    def parse(cls, arn: str) -> UserArn:
        parts = arn.split(":", 5)
        if len(parts) == 6 and parts[0] == "arn" and parts[3]:
            resource = parts[5]
            if parts[2] == "elasticache" and resource.startswith("user:") and len(resource) > 5:
                return cls(arn, "elasticache", parts[3], resource[len("user:") :])
            if parts[2] == "memorydb" and resource.startswith("user/") and len(resource) > 5:
                return cls(arn, "memorydb", parts[3], resource[len("user/") :])
        raise SecretFormatError("key 'user_arn' is not an ElastiCache or MemoryDB user ARN")


@dataclass
class WaitBudget:
    """What one step may spend waiting for managed users to turn ``active``: ``seconds``
    (``MANAGED_USER_WAIT_SECONDS``) from this budget's creation, and never past the step's
    ``deadline``."""

    seconds: float
    deadline: Deadline = UNBOUNDED
    ends: float = field(init=False)

    def __post_init__(self) -> None:
        self.ends = time.monotonic() + self.seconds


class ManagedUser:
    """One user of ElastiCache or MemoryDB, read and changed through the service's API."""

    def __init__(self, arn: UserArn, client: Any, *, budget: WaitBudget, poll_seconds: float) -> None:
        """``budget``: the step's, shared by every ManagedUser of the step."""
        self.arn = arn
        self.client = client
        self.budget = budget
        self.poll_seconds = poll_seconds
        self.serverless_caches = []

    def describe(self) -> dict[str, Any]:
        """The user as ``DescribeUsers`` shows it."""
        if self.arn.service == "elasticache":
            response = self._call("DescribeUsers", self.client.describe_users, UserId=self.arn.user)
        else:
            response = self._call("DescribeUsers", self.client.describe_users, UserName=self.arn.user)
        users: list[dict[str, Any]] = response.get("Users", [])
        if not users:
            raise DatabaseOperationError(f"{self.arn.service} has no user {self.arn.arn}")
        return users[0]

    def require(self, username: str) -> dict[str, Any]:
        """The user, refused unless it is ``username`` and authenticates by password."""
        user = self.describe()
        name = user.get("UserName") if self.arn.service == "elasticache" else user.get("Name")
        if name != username:
            raise DatabaseOperationError(
                f"user {self.arn.arn} is named {name!r}, but the secret's username is {username!r}"
            )
        kind = (user.get("Authentication") or {}).get("Type")
        if kind != "password":
            raise DatabaseOperationError(
                f"user {username!r} authenticates by {kind!r}, not by password: nothing to rotate"
            )
        return user

    def set_passwords(self, passwords: list[str]) -> None:
        """Make the user's passwords exactly ``passwords`` (at most two, the newest first),
        waiting until the user is ``active`` before and after. Safe to run again."""
        self.wait_until_active()
        if self.arn.service == "elasticache":
            self._call("ModifyUser", self.client.modify_user, UserId=self.arn.user, Passwords=passwords)
        else:
            self._call(
                "UpdateUser",
                self.client.update_user,
                UserName=self.arn.user,
                AuthenticationMode={"Type": "password", "Passwords": passwords},
            )
        self.wait_until_active()

    def endpoints(self) -> list[tuple[str, int]]:
        """Every endpoint the service's API lists for the user's clusters, the one to log
        in to first (host lower-cased; empty when it lists none).

        ElastiCache: the user's user groups, their replication groups, and each group's
        configuration endpoint, primary and reader endpoints and its nodes' read endpoints.
        MemoryDB: the user's ACLs, their clusters, each cluster's endpoint and its shards'
        node endpoints. Any node of a cluster holds every user of its ACL or user group, so
        a login at any of them proves a password; a login anywhere else proves nothing."""
        user = self.describe()
        self.serverless_caches = []
        if self.arn.service == "elasticache":
            found = self._elasticache_endpoints(user)
        else:
            found = self._memorydb_endpoints(user)
        endpoints: list[tuple[str, int]] = []
        for address in found:
            if address and address.get("Address"):
                endpoint = (str(address["Address"]).lower(), int(address.get("Port") or 6379))
                if endpoint not in endpoints:
                    endpoints.append(endpoint)
        return endpoints

    #: The serverless caches the user's user groups serve, found by :meth:`endpoints`:
    #: their endpoints are not looked up (DescribeServerlessCaches), so they prove nothing.
    serverless_caches: list[str]

    def _elasticache_endpoints(self, user: dict[str, Any]) -> list[dict[str, Any] | None]:
        found: list[dict[str, Any] | None] = []
        for group_id in user.get("UserGroupIds") or []:
            for group in self._items("DescribeUserGroups", "UserGroups", UserGroupId=group_id):
                self.serverless_caches += group.get("ServerlessCaches") or []
                for name in group.get("ReplicationGroups") or []:
                    kind = "ReplicationGroups"
                    for item in self._items(f"Describe{kind}", kind, ReplicationGroupId=name):
                        found.append(item.get("ConfigurationEndpoint"))
                        for nodes in item.get("NodeGroups") or []:
                            found += [nodes.get("PrimaryEndpoint"), nodes.get("ReaderEndpoint")]
                            found += [m.get("ReadEndpoint") for m in nodes.get("NodeGroupMembers") or []]
        return found

    def _memorydb_endpoints(self, user: dict[str, Any]) -> list[dict[str, Any] | None]:
        found: list[dict[str, Any] | None] = []
        for acl in user.get("ACLNames") or []:
            for item in self._items("DescribeACLs", "ACLs", ACLName=acl):
                for cluster in item.get("Clusters") or []:
                    for described in self._items("DescribeClusters", "Clusters", ClusterName=cluster):
                        found.append(described.get("ClusterEndpoint"))
                        for shard in described.get("Shards") or []:
                            found += [node.get("Endpoint") for node in shard.get("Nodes") or []]
        return found

    def _items(self, operation: str, key: str, **parameters: str) -> list[dict[str, Any]]:
        """The ``key`` list of a Describe call (its boto3 method: the operation in snake case)."""
        method = getattr(self.client, _METHODS[operation])
        items: list[dict[str, Any]] = self._call(operation, method, **parameters).get(key) or []
        return items

    def wait_until_active(self) -> dict[str, Any]:
        """Poll ``DescribeUsers`` until the user is ``active``; bounded by what is left of
        the step's budget (DatabaseOperationError naming ``MANAGED_USER_WAIT_SECONDS``) and
        of the step's deadline, less one more pause and call (StepTimeLimitError),
        whichever ends first."""
        deadline = self.budget.deadline
        while True:
            user = self.describe()
            status = user.get("Status")
            if status == ACTIVE:
                return user
            left = self.budget.ends - time.monotonic()
            if left <= 0:
                raise DatabaseOperationError(
                    f"user {self.arn.arn} is still {status!r}: the step's {self.budget.seconds:g} s "
                    f"for the user to turn {ACTIVE!r} are spent (MANAGED_USER_WAIT_SECONDS)"
                )
            # The next poll (a pause, then one more call) starts only if it ends in time.
            pause = min(self.poll_seconds, left)
            deadline.require(
                pause + CALL_SECONDS, f"asking again if {self.arn.arn} (still {status!r}) is active"
            )
            time.sleep(pause)

    def _call(self, operation: str, method: Callable[..., Any], **parameters: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = method(**parameters)
        except Exception as error:
            raise _service_error(self.arn, operation, error) from error
        return response


def _service_error(arn: UserArn, operation: str, error: Exception) -> DatabaseOperationError:
    """The service's error code and (masked) message, shaped by ``common.awserrors``;
    any other failure of the client is named by its class."""
    failure = AwsFailure.of(error) or AwsFailure(type(error).__name__)
    text = failure.summary(f"{arn.service} {operation} on {arn.arn}")
    if failure.denied:
        return PermissionDeniedError(f"{text}: the function's role lacks {arn.service}:{operation}")
    return DatabaseOperationError(f"{text}: {failure.message}" if failure.message else text)
