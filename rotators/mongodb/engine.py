"""MongoDB and Amazon DocumentDB operations with PyMongo 4.

Users live in the secret's authentication database (``dbname``, default ``admin``).
Single user: ``updateUser`` of its own password, which needs the ``changeOwnPassword``
action (a custom role granting it). Alternating users: the master user creates
``<user>_clone`` with the original's roles and brings the roles in line at every
rotation (``usersInfo``, then ``createUser`` or ``updateUser``).

DocumentDB (a host under ``docdb.amazonaws.com``) needs TLS and ``retryWrites=false``;
rotation sends only commands, so retryable writes are off for every server, and the
client connects directly to the named host (``directConnection``), never discovering
a replica set behind the rotation's back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.engine import Capability, DriverErrors, Engine, Login, compare_with_original, first_line
from common.errors import (
    ConfigurationError,
    DatabaseOperationError,
    PermissionDeniedError,
    VerificationError,
)
from common.passwords import PasswordPolicy
from common.redaction import redact
from common.secret import ipv6_address

if TYPE_CHECKING:
    from pymongo import MongoClient

    MongoConnection = MongoClient[dict[str, Any]]
else:
    MongoConnection = Any

AUTHENTICATION_FAILED = 18
UNAUTHORIZED = 13
DOCUMENTDB_SUFFIX = ".docdb.amazonaws.com"


def client_options(login: Login) -> dict[str, Any]:
    """The MongoClient options for ``login`` (pure: tested without a server)."""
    # PyMongo refuses an IPv6 address unbracketed (it reads a ':' as a port) and reads a
    # zone's '%' escaped as '%25' (RFC 6874) in a bracketed one.
    address = ipv6_address(login.host)
    options: dict[str, Any] = {
        "host": login.host if address is None else f"[{address.replace('%', '%25')}]",
        "port": login.port,
        "username": login.username,
        "password": login.password,
        "authSource": login.dbname or "admin",
        "directConnection": True,
        "retryWrites": False,
        "appname": "secrets-manager-rotation",
        "serverSelectionTimeoutMS": login.connect_timeout * 1000,
        "connectTimeoutMS": login.connect_timeout * 1000,
        "socketTimeoutMS": login.statement_timeout * 1000,
        "tls": login.tls.enabled,
    }
    if login.tls.enabled:
        options["tlsCAFile"] = login.tls.trust_anchor()
    return options


def is_documentdb(host: str) -> bool:
    return host.lower().endswith(DOCUMENTDB_SUFFIX)


class MongoEngine(Engine[MongoConnection]):
    """MongoDB 4.0 and later, Amazon DocumentDB 4 and 5."""

    name = "mongodb"
    engines = frozenset({"mongo"})
    default_port = 27017
    default_dbname = "admin"
    max_username_length = 1024
    password_policy = PasswordPolicy()

    def open(self, login: Login) -> MongoConnection:
        import pymongo
        from pymongo.errors import ConfigurationError as DriverConfigurationError
        from pymongo.errors import InvalidName, OperationFailure, PyMongoError

        if "/" in login.host or "?" in login.host:
            # PyMongo reads a host such as "mongodb://h/?tlsInsecure=true" as a URI whose
            # options apply: a secret's host must never switch TLS checks off.
            raise ConfigurationError(
                f"the {login.label} secret's key 'host' must be a host name or address, not a URI"
            )
        try:
            client: MongoConnection = pymongo.MongoClient(**client_options(login))
        except (DriverConfigurationError, ValueError, TypeError) as error:
            # A value PyMongo cannot use (the host rule leaves it little: a malformed name).
            raise ConfigurationError(
                f"cannot use the {login.label} settings for {login.host}:{login.port}: "
                f"{redact(first_line(error))}"
            ) from error
        except (PyMongoError, OSError) as error:
            raise login.unreachable(_errmsg(error)) from error
        with self.closed_on_failure(client):
            try:
                client[login.dbname or "admin"]
            except InvalidName as error:
                raise ConfigurationError(
                    f"the {login.label} secret's key 'dbname' is not a MongoDB database name: {error}"
                ) from error
            try:
                # The client connects lazily: one command proves reachability, TLS and login.
                client.admin.command("ping")
            except PyMongoError as error:
                if isinstance(error, OperationFailure) and error.code == AUTHENTICATION_FAILED:
                    raise login.refused() from error
                raise login.unreachable(_errmsg(error)) from error
        return client

    def close(self, connection: MongoConnection) -> None:
        connection.close()

    def change_own_password(self, connection: MongoConnection, login: Login, new_password: str) -> None:
        database = _database(connection, login.dbname)
        _command(
            database,
            "updateUser",
            login.username,
            pwd=new_password,
            what=f"change the password of {login.username!r}",
            unauthorized="the user needs the changeOwnPassword action (a custom role granting it)",
        )

    def set_alternate_user(
        self,
        connection: MongoConnection,
        *,
        original: str,
        clone: str,
        user: str,
        password: str,
        database: str | None,
        current: Login,
    ) -> None:
        db = _database(connection, database)
        roles = _roles(db, original)
        if roles is None:
            raise DatabaseOperationError(f"user {original!r} does not exist in database {db.name!r}")
        if user == original:
            _command(db, "updateUser", original, pwd=password, what=f"set the password of {original!r}")
        clone_roles = _roles(db, clone)
        if user == clone and clone_roles is None:
            _command(db, "createUser", clone, pwd=password, roles=roles, what=f"create {clone!r}")
        elif user == clone:
            _command(db, "updateUser", clone, pwd=password, roles=roles, what=f"set {clone!r}")
        elif clone_roles is not None and clone_roles != roles:
            _command(db, "updateUser", clone, roles=roles, what=f"bring the roles of {clone!r} in line")
        if _roles(db, clone) not in (None, roles):
            raise VerificationError(f"user {clone!r} does not hold the roles of {original!r}")

    def verify_session(self, connection: MongoConnection) -> None:
        reply = _command(connection.admin, "ping", 1, what="run the verification command")
        if reply.get("ok") != 1:
            raise VerificationError("the verification command did not answer ok")

    def verify_privileges(
        self, connection: MongoConnection, *, original: str, user: str, database: str | None
    ) -> None:
        db = _database(connection, database)
        status = _command(connection.admin, "connectionStatus", 1, what="read the session's roles")
        own = _normalised(status.get("authInfo", {}).get("authenticatedUserRoles", []))
        compare_with_original(own, lambda: _roles(db, original), user=repr(user), original=original)

    # -- preflight (read only) ---------------------------------------------------------

    def own_password_capabilities(self, connection: MongoConnection, login: Login) -> list[Capability]:
        what = "change its own password (changeOwnPassword)"
        actions = _actions_on(connection, login.dbname or "admin")
        if actions is None:
            return [Capability(what, None, "not checked: the server does not list a session's privileges")]
        if "changeOwnPassword" in actions:
            return [Capability(what, True, "held")]
        return [Capability(what, False, "grant the user a role with the changeOwnPassword action")]

    def alternate_user_capabilities(
        self, connection: MongoConnection, *, original: str, clone: str, database: str | None, current: Login
    ) -> list[Capability]:
        db = _database(connection, database)
        try:
            roles = _roles(db, original)
        except PermissionDeniedError as error:
            return [Capability(f"view users in {db.name!r} (viewUser)", False, str(error))]
        if roles is None:
            return [Capability(f"find {original!r}", False, f"no user {original!r} in {db.name!r}")]
        found = []
        # createUser/updateUser with roles need grantRole on each role's database.
        for name in sorted({db.name} | {role["db"] for role in roles}):
            needed = {"viewUser", "createUser", "changePassword", "grantRole", "revokeRole"}
            if name != db.name:
                needed = {"grantRole"}
            actions = _actions_on(connection, name)
            missing = sorted(needed - actions) if actions is not None else []
            found.append(
                Capability(
                    f"administer users and roles on {name!r}",
                    None if actions is None else not missing,
                    "not checked: the server does not list a session's privileges"
                    if actions is None
                    else ("held" if not missing else f"missing {', '.join(missing)} (userAdmin on {name!r})"),
                )
            )
        return found


def _database(connection: MongoConnection, name: str | None) -> Any:
    """The authentication database ``name`` (default ``admin``)."""
    with _ERRORS.operation(f"use database {name or 'admin'!r}"):
        return connection[name or "admin"]


def _roles(db: Any, user: str) -> list[dict[str, str]] | None:
    """The user's roles in ``db``, sorted; None when there is no such user."""
    reply = _command(db, "usersInfo", {"user": user, "db": db.name}, what=f"look up {user!r}")
    users = reply.get("users", [])
    return _normalised(users[0].get("roles", [])) if users else None


def _normalised(roles: list[dict[str, Any]]) -> list[dict[str, str]]:
    return sorted(
        ({"role": str(r["role"]), "db": str(r["db"])} for r in roles), key=lambda r: (r["db"], r["role"])
    )


def _command(
    db: Any, name: str, value: Any, *, what: str, unauthorized: str | None = None, **fields: Any
) -> dict[str, Any]:
    with _ERRORS.operation(what, denied_hint=unauthorized):
        reply: dict[str, Any] = db.command(name, value, **fields)
    return reply


def _errmsg(error: Exception) -> str:
    """The server's own message of a failed command, or the driver's first line without
    what PyMongo appends (the whole reply document, the topology description)."""
    details = getattr(error, "details", None)
    if isinstance(details, dict) and details.get("errmsg"):
        return str(details["errmsg"])
    return first_line(error).split(", full error:")[0].split(", Timeout:")[0]


_ERRORS = DriverErrors(lambda error: (getattr(error, "code", None), _errmsg(error)), denied={UNAUTHORIZED})


def _actions_on(connection: MongoConnection, database: str) -> set[str] | None:
    """The actions the session may take on ``database`` (privileges on the database, on
    every database, or on any resource); None when the server lists no privileges."""
    try:
        status = _command(
            connection.admin, "connectionStatus", 1, showPrivileges=True, what="read the session's privileges"
        )
    except DatabaseOperationError:
        return None
    privileges = status.get("authInfo", {}).get("authenticatedUserPrivileges")
    if privileges is None:
        return None
    actions: set[str] = set()
    for privilege in privileges:
        resource = privilege.get("resource", {})
        if resource.get("anyResource") or (
            resource.get("db") in ("", database) and resource.get("collection", "") == ""
        ):
            actions.update(str(action) for action in privilege.get("actions", []))
    return actions
