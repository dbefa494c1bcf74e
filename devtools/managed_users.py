"""ElastiCache and MemoryDB users as rotation meets them, played on moto.

moto 5.2 has ElastiCache ``CreateUser``/``DescribeUsers`` but no ``ModifyUser`` and no
user groups; its MemoryDB ``UpdateUser`` keeps only a password count and it has no ACL
calls; and a user of either is always ``active``. :func:`behave_like_aws_users` extends
moto in this process with a small model of what a rotation depends on, so that the
engine's calls go through real boto3 (its parameter validation included) and are checked
for what AWS requires:

* ElastiCache ``ModifyUser`` exists; with ``Passwords`` it replaces the user's passwords.
* Each user keeps its passwords (``passwords``), one or two of them, each 16 to 128
  printable characters without ``@``, ``"``, ``/`` or space; anything else is refused
  with AWS's error code (``InvalidParameterValue``).
* After a change the user is ``modifying`` for the next ``MODIFYING_DESCRIBES``
  ``DescribeUsers`` calls, then ``active``; a change while it is ``modifying`` is refused
  (``InvalidUserState``), as AWS does. The data plane gets the new passwords only when
  the user turns ``active``, so a step that does not wait sees the old ones.
* The control plane of a real data plane: :func:`add_cluster` puts a user in an
  ElastiCache user group served by a replication group (``DescribeUserGroups``,
  ``DescribeReplicationGroups``) or in a MemoryDB ACL served by a cluster
  (``DescribeACLs``, ``DescribeClusters``) whose endpoint is a real server (the suite's
  throwaway Redis); a password change is applied to that server's user, so that tests
  judge with real logins.

What it leaves out (the README says so too): IAM (every call is allowed), the time AWS
really takes (a change reaches the data plane at once, before the user is ``active``
again), serverless caches, several nodes or shards per cluster, ``AccessString`` rules
and ``AuthenticationMode`` ``iam``.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

MODIFYING_DESCRIBES = 2
_ALLOWED = set(string.printable) - set('@"/ \t\n\r\x0b\x0c')


@dataclass(frozen=True)
class DataPlane:
    """A cluster's endpoint and how the service sets a user's passwords on its nodes."""

    host: str
    port: int
    #: (user name, passwords) -> the node's user now holds exactly those passwords.
    apply: Callable[[str, list[str]], None] | None = None


#: ElastiCache user groups and replication groups, MemoryDB ACLs and clusters (by id or name).
USER_GROUPS: dict[str, dict[str, Any]] = {}
REPLICATION_GROUPS: dict[str, dict[str, Any]] = {}
ACLS: dict[str, dict[str, Any]] = {}
CLUSTERS: dict[str, dict[str, Any]] = {}
#: cluster (replication group id or MemoryDB cluster name) -> its data plane.
PLANES: dict[str, DataPlane] = {}
_NUMBERS = itertools.count(1)


def reset() -> None:
    """Forget every user group, ACL and cluster (a test's teardown: moto's backends are
    new in every test, these tables are this module's)."""
    for table in (USER_GROUPS, REPLICATION_GROUPS, ACLS, CLUSTERS, PLANES):
        table.clear()


def add_cluster(service: str, user: str, plane: DataPlane) -> str:
    """Put ``user`` (an ElastiCache user id, a MemoryDB user name) in a new user group or
    ACL served by a new cluster whose endpoint is ``plane``; returns the cluster's id."""
    number = next(_NUMBERS)
    group, cluster = f"group-{number}", f"cluster-{number}"
    endpoint = {"Address": plane.host, "Port": plane.port}
    PLANES[cluster] = plane
    if service == "elasticache":
        USER_GROUPS[group] = {
            "UserGroupId": group,
            "Status": "active",
            "Engine": "redis",
            "UserIds": [user],
            "ReplicationGroups": [cluster],
        }
        REPLICATION_GROUPS[cluster] = {
            "ReplicationGroupId": cluster,
            "Status": "available",
            "NodeGroups": [{"NodeGroupId": "0001", "Status": "available", "PrimaryEndpoint": endpoint}],
            "UserGroupIds": [group],
            "TransitEncryptionEnabled": True,
        }
        user_of(service, user).user_group_ids.append(group)
    else:
        ACLS[group] = {"Name": group, "Status": "active", "UserNames": [user], "Clusters": [cluster]}
        CLUSTERS[cluster] = {
            "Name": cluster,
            "Status": "available",
            "ClusterEndpoint": endpoint,
            "ACLName": group,
            "TLSEnabled": True,
        }
        user_of(service, user).acl_names.append(group)
    return cluster


def _planes_of(user: Any) -> list[tuple[str, DataPlane]]:
    """(user name, data plane) of every cluster that serves ``user``."""
    if hasattr(user, "user_group_ids"):  # ElastiCache
        clusters = [
            c for g in user.user_group_ids for c in USER_GROUPS.get(g, {}).get("ReplicationGroups", [])
        ]
        name = user.name
    else:
        clusters = [c for a in user.acl_names for c in ACLS.get(a, {}).get("Clusters", [])]
        name = user.user_name
    return [(name, PLANES[c]) for c in clusters if c in PLANES]


def password_problem(passwords: list[str]) -> str | None:
    """What AWS would refuse in a user's password list, or None."""
    if not 1 <= len(passwords) <= 2:
        return "A user can have one or two passwords."
    for password in passwords:
        if not 16 <= len(password) <= 128:
            return "Passwords length must be between 16-128 characters."
        if not set(password) <= _ALLOWED:
            return 'Passwords must be printable characters other than @, ", / and space.'
    return None


def _tick(user: Any) -> None:
    """One DescribeUsers: a modifying user comes closer to active."""
    remaining = getattr(user, "modifying_describes", 0)
    if user.status == "modifying":
        if remaining <= 1:
            user.status = "active"
            for name, plane in _planes_of(user):  # the change reaches the nodes now
                if plane.apply is not None:
                    plane.apply(name, list(user.passwords))
        user.modifying_describes = remaining - 1


def _start_modifying(user: Any, passwords: list[str]) -> None:
    user.passwords = list(passwords)
    user.status = "modifying"
    user.modifying_describes = MODIFYING_DESCRIBES
    user.modifications = getattr(user, "modifications", 0) + 1


def behave_like_aws_users() -> None:
    """Install the model into this process's moto; idempotent."""
    from moto.elasticache.models import ElastiCacheBackend

    if getattr(ElastiCacheBackend, "_aws_user_model", False):
        return
    _model_elasticache()
    _model_memorydb()
    ElastiCacheBackend._aws_user_model = True  # type: ignore[attr-defined]


def _model_elasticache() -> None:
    from moto.elasticache import models as ec_models
    from moto.elasticache import responses as ec_responses
    from moto.elasticache.exceptions import ElastiCacheException, UserNotFound

    backend_class = ec_models.ElastiCacheBackend

    class InvalidUserState(ElastiCacheException):
        code = "InvalidUserState"

    class InvalidParameterValue(ElastiCacheException):
        code = "InvalidParameterValue"

    def modify_user(self: Any, user_id: str, passwords: list[str] | None) -> Any:
        user = self.users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        if user.status != "active":
            raise InvalidUserState(f"User {user_id} is not in active state.")
        if passwords is not None:
            problem = password_problem(passwords)
            if problem:
                raise InvalidParameterValue(problem)
            _start_modifying(user, passwords)
        return user

    original_describe = backend_class.describe_users

    def describe_users(self: Any, user_id: str | None) -> Any:
        users = original_describe(self, user_id)
        for user in users:
            _tick(user)
        return users

    def modify_user_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        params = self._get_params()
        user = self.elasticache_backend.modify_user(params.get("UserId"), params.get("Passwords"))
        return ActionResult(user)

    def describe_user_groups_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        wanted = self._get_params().get("UserGroupId")
        if wanted is not None and wanted not in USER_GROUPS:
            raise UserGroupNotFound(f"User group {wanted} not found.")
        groups = [group for key, group in USER_GROUPS.items() if wanted in (None, key)]
        return ActionResult({"UserGroups": groups})

    original_replication_groups = ec_responses.ElastiCacheResponse.describe_replication_groups

    def describe_replication_groups_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        wanted = self._get_param("ReplicationGroupId")
        if wanted in REPLICATION_GROUPS:
            return ActionResult({"ReplicationGroups": [REPLICATION_GROUPS[wanted]]})
        return original_replication_groups(self)

    class UserGroupNotFound(ElastiCacheException):
        code = "UserGroupNotFound"

    ec_responses.ElastiCacheResponse.describe_user_groups = describe_user_groups_response  # type: ignore[attr-defined]
    ec_responses.ElastiCacheResponse.describe_replication_groups = describe_replication_groups_response  # type: ignore[method-assign]
    backend_class.modify_user = modify_user  # type: ignore[attr-defined]
    backend_class.describe_users = describe_users  # type: ignore[method-assign]
    ec_responses.ElastiCacheResponse.modify_user = modify_user_response  # type: ignore[attr-defined]


def _model_memorydb() -> None:
    from moto.memorydb import models as mdb_models
    from moto.memorydb import responses as mdb_responses
    from moto.memorydb.exceptions import MemoryDBClientError, UserNotFoundFault

    memorydb_class = mdb_models.MemoryDBBackend
    original_update = memorydb_class.update_user
    original_mdb_describe = memorydb_class.describe_users

    def update_user(
        self: Any, user_name: str, authentication_mode: dict[str, Any] | None, access_string: str | None
    ) -> Any:
        user = self.users.get(user_name)
        if user is None:
            raise UserNotFoundFault(msg=f"User {user_name} not found.")
        if user.status != "active":
            raise MemoryDBClientError("InvalidUserStateFault", f"User {user_name} is not in active state.")
        passwords = (authentication_mode or {}).get("Passwords")
        if passwords is not None:
            problem = password_problem(passwords)
            if problem:
                raise MemoryDBClientError("InvalidParameterValueException", problem)
        updated = original_update(self, user_name, authentication_mode, access_string)
        if passwords is not None:
            _start_modifying(updated, passwords)
        return updated

    def mdb_describe_users(self: Any, user_name: str | None = None, filters: Any = None) -> Any:
        users = original_mdb_describe(self, user_name, filters)
        for user in users:
            _tick(user)
        return users

    def describe_acls_response(self: Any) -> Any:
        import json

        from moto.core.responses import ActionResult

        wanted = json.loads(self.body or "{}").get("ACLName")
        if wanted is not None and wanted not in ACLS:
            raise MemoryDBClientError("ACLNotFoundFault", f"ACL {wanted} not found.")
        return ActionResult({"ACLs": [acl for key, acl in ACLS.items() if wanted in (None, key)]})

    original_clusters = mdb_responses.MemoryDBResponse.describe_clusters

    def describe_clusters_response(self: Any) -> Any:
        import json

        from moto.core.responses import ActionResult

        wanted = json.loads(self.body or "{}").get("ClusterName")
        if wanted in CLUSTERS:
            return ActionResult({"Clusters": [CLUSTERS[wanted]]})
        return original_clusters(self)

    # moto finds a handler by the action in snake case, its way: DescribeACLs -> describe_ac_ls.
    mdb_responses.MemoryDBResponse.describe_ac_ls = describe_acls_response  # type: ignore[attr-defined]
    mdb_responses.MemoryDBResponse.describe_clusters = describe_clusters_response  # type: ignore[method-assign]
    memorydb_class.update_user = update_user  # type: ignore[method-assign]
    memorydb_class.describe_users = mdb_describe_users  # type: ignore[method-assign]


def user_of(service: str, user: str, region: str = "us-east-1", account: str = "123456789012") -> Any:
    """The model's user (its ``passwords``, ``status``, ``modifications``)."""
    if service == "elasticache":
        from moto.elasticache.models import elasticache_backends

        return elasticache_backends[account][region].users[user]
    from moto.memorydb.models import memorydb_backends

    return memorydb_backends[account][region].users[user]
