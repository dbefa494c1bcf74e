"""Amazon Redshift operations with redshift_connector.

Passwords are sent as Redshift's md5 form (``'md5' || md5(password || user)``), never in
clear; identifiers are quoted here (the driver has no identifier quoting) and the only
literal spliced into a statement is that hexadecimal hash. The catalog names are
Redshift's (``pg_user``, ``pg_group``, ``pg_default_acl``).

Alternating users: the clone is created on first use and, at every rotation, brought
in line with the original: group membership, database, schema and table privileges,
and the default privileges that give the original access to future objects.

TLS: redshift_connector takes no CA parameter; it verifies against Amazon's Redshift
CA bundle it ships plus the default trust store, which OpenSSL reads from
``SSL_CERT_FILE``. The configured bundle is given to it that way, for the duration of
the connection only (``trusting``).
"""

from __future__ import annotations

import hashlib
import os
import ssl
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from common.engine import Capability, Engine, Login, compare_with_original
from common.errors import DatabaseOperationError, PermissionDeniedError, VerificationError
from common.passwords import PasswordPolicy
from common.redaction import redact

if TYPE_CHECKING:
    from collections.abc import Iterator

RedshiftConnection = Any

_LOGIN_REFUSED = ("28P01", "28000")
_TRUST_LOCK = threading.Lock()
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "REFERENCES")
SCHEMA_PRIVILEGES = ("USAGE", "CREATE")
DATABASE_PRIVILEGES = ("CREATE", "TEMP")
GROUPS_OF = "SELECT g.groname FROM pg_group g, pg_user u WHERE u.usename = %s AND u.usesysid = ANY(g.grolist)"
SCHEMAS = (
    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%%' AND nspname <> 'information_schema'"
)
TABLES = (
    "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT LIKE 'pg\\_%%' "
    "AND schemaname <> 'information_schema'"
)
# Redshift's pg_default_acl names the owner defacluser.
DEFAULT_ACLS = (
    "SELECT pg_get_userbyid(d.defacluser), n.nspname, d.defaclacl::text FROM pg_default_acl d "
    "LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE d.defaclobjtype = 'r'"
)
# aclitem letters of default privileges on tables.
ACL_LETTERS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "x": "REFERENCES"}


@contextmanager
def trusting(ca_file: str) -> Iterator[None]:
    """Make ``ca_file`` the default trust store while a connection is opened."""
    with _TRUST_LOCK:
        previous = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = ca_file
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("SSL_CERT_FILE", None)
            else:
                os.environ["SSL_CERT_FILE"] = previous


def _reason(error: BaseException) -> str:
    """The most telling message in the error's chain: the driver wraps TLS failures in
    a bare "communication error"."""
    seen: list[str] = []
    current: BaseException | None = error
    while current is not None and len(seen) < 5:
        detail = current.args[0] if current.args else ""
        text = str(detail.get("M", "")) if isinstance(detail, dict) else str(current)
        if isinstance(current, ssl.SSLError):
            return text
        seen.append(text)
        current = current.__cause__ or current.__context__
    return next((text for text in seen if text), type(error).__name__)


def is_login_refusal(error: Exception) -> bool:
    """Whether a driver error is the server refusing the credentials (SQLSTATE 28xxx)."""
    detail = error.args[0] if error.args else None
    return isinstance(detail, dict) and detail.get("C") in _LOGIN_REFUSED


def md5_password(user: str, password: str) -> str:
    """Redshift's pre-hashed password form."""
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()  # noqa: S324 - Redshift's scheme


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class RedshiftEngine(Engine[RedshiftConnection]):
    """Amazon Redshift (provisioned and Serverless)."""

    name = "redshift"
    engines = frozenset({"redshift"})
    default_port = 5439
    default_dbname = "dev"
    max_username_length = 127
    # Redshift: 8 to 64 characters, an upper-case letter, a lower-case letter and a digit;
    # no ' " \\ / @ or space.
    password_policy = PasswordPolicy(length=32, min_length=8, max_length=64, always_excluded="'\"\\/@ ")
    master_session_on_secret_database = True

    def open(self, login: Login) -> RedshiftConnection:
        import redshift_connector

        options: dict[str, Any] = {
            "host": login.host,
            "port": login.port,
            "database": login.dbname,
            "user": login.username,
            "password": login.password,
            "timeout": login.connect_timeout,
            "ssl": login.tls.enabled,
            "application_name": "secrets-manager-rotation",
        }
        if login.tls.enabled:
            options["sslmode"] = "verify-full"
        try:
            if login.tls.enabled:
                with trusting(login.tls.trust_anchor()):
                    connection = redshift_connector.connect(**options)
            else:
                connection = redshift_connector.connect(**options)
        except Exception as error:
            if is_login_refusal(error):
                raise login.refused() from error
            raise login.unreachable(_reason(error)) from error
        connection.autocommit = True
        _run(
            connection,
            f"SET statement_timeout TO {int(login.statement_timeout) * 1000}",
            (),
            "set the time-out",
        )
        return connection

    def close(self, connection: RedshiftConnection) -> None:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - already closed by the server: nothing to release
            return

    def change_own_password(self, connection: RedshiftConnection, login: Login, new_password: str) -> None:
        _set_password(connection, login.username, new_password)

    def set_alternate_user(
        self,
        connection: RedshiftConnection,
        *,
        original: str,
        clone: str,
        user: str,
        password: str,
        database: str | None,
    ) -> None:
        if not _user_exists(connection, original):
            raise DatabaseOperationError(f"user {original!r} does not exist")
        clone_exists = _user_exists(connection, clone)
        if user == original or (user == clone and clone_exists):
            _set_password(connection, user, password)
        elif user == clone:
            _run(
                connection,
                f"CREATE USER {quote(clone)} PASSWORD '{md5_password(clone, password)}'",
                (),
                f"create {clone!r}",
            )
            clone_exists = True
        if clone_exists:
            for statement in statements_to_align(
                privileges(connection, original), privileges(connection, clone), clone
            ):
                _run(connection, statement, (), f"bring the privileges of {clone!r} in line")
            if privileges(connection, clone) != privileges(connection, original):
                raise VerificationError(f"user {clone!r} does not hold the privileges of {original!r}")

    def verify_session(self, connection: RedshiftConnection) -> None:
        if _run(connection, "SELECT 1", (), "run the verification query") != [[1]]:
            raise VerificationError("the verification query returned no row")

    def verify_privileges(
        self, connection: RedshiftConnection, *, original: str, user: str, database: str | None
    ) -> None:
        compare_with_original(
            privileges(connection, user),
            lambda: privileges(connection, original),
            user=repr(user),
            original=original,
        )

    # -- preflight (read only) ---------------------------------------------------------

    def own_password_capabilities(self, connection: RedshiftConnection, login: Login) -> list[Capability]:
        # Redshift lets every user ALTER USER its own password; only the account can be seen.
        found = _run(connection, "SELECT 1 FROM pg_user WHERE usename = current_user", (), "look up the user")
        return [
            Capability(
                "change its own password",
                bool(found),
                "any Redshift user may change its own password" if found else "the user is not in pg_user",
            )
        ]

    def alternate_user_capabilities(
        self, connection: RedshiftConnection, *, original: str, clone: str, database: str | None
    ) -> list[Capability]:
        rows = _run(
            connection, "SELECT usesuper FROM pg_user WHERE usename = current_user", (), "read the master"
        )
        superuser = bool(rows and rows[0][0])
        found = [
            Capability(
                "superuser (CREATE USER, grant on every object)",
                superuser,
                "held" if superuser else "use Redshift's admin user, or ALTER USER <master> CREATEUSER",
            )
        ]
        if not _user_exists(connection, original):
            found.append(Capability(f"find {original!r}", False, f"user {original!r} does not exist"))
        return found


def privileges(connection: RedshiftConnection, user: str) -> dict[str, frozenset[str]]:
    """What ``user`` holds: its groups, and privileges on the current database, on every
    schema and table outside the catalogs, and default privileges granted to it."""

    def held(function: str, target: str, candidates: tuple[str, ...]) -> frozenset[str]:
        query = f"SELECT {function}(%s, %s, %s)"
        return frozenset(
            p for p in candidates if _run(connection, query, (user, target, p), "read privileges")[0][0]
        )

    groups = _run(connection, GROUPS_OF, (user,), "read groups")
    found = {"groups": frozenset(str(row[0]) for row in groups)}
    database = str(_run(connection, "SELECT current_database()", (), "read the database")[0][0])
    found[f"database {database}"] = held("has_database_privilege", database, DATABASE_PRIVILEGES)
    for (schema,) in _run(connection, SCHEMAS, (), "list schemas"):
        found[f"schema {schema}"] = held("has_schema_privilege", schema, SCHEMA_PRIVILEGES)
    for schema, table in _run(connection, TABLES, (), "list tables"):
        name = f"{quote(schema)}.{quote(table)}"
        found[f"table {name}"] = held("has_table_privilege", name, TABLE_PRIVILEGES)
    for owner, schema, acl in _run(connection, DEFAULT_ACLS, (), "read default privileges"):
        granted = _default_grants(str(acl or ""), user)
        if granted:
            found[f"default {owner} {schema or ''}".rstrip()] = granted
    return found


def statements_to_align(
    wanted: dict[str, frozenset[str]], held: dict[str, frozenset[str]], clone: str
) -> list[str]:
    """The statements that give ``clone`` exactly ``wanted``, from ``held`` (Redshift's
    syntax: groups, database, schema and table privileges, default privileges)."""
    grantee, none = quote(clone), frozenset[str]()
    statements = [
        f"ALTER GROUP {quote(group)} ADD USER {grantee}"
        for group in sorted(wanted.get("groups", none) - held.get("groups", none))
    ] + [
        f"ALTER GROUP {quote(group)} DROP USER {grantee}"
        for group in sorted(held.get("groups", none) - wanted.get("groups", none))
    ]
    for key in sorted((set(wanted) | set(held)) - {"groups"}):
        add = ", ".join(sorted(wanted.get(key, none) - held.get(key, none)))
        drop = ", ".join(sorted(held.get(key, none) - wanted.get(key, none)))
        kind, _, target = key.partition(" ")
        if kind == "default":
            owner, _, schema = target.partition(" ")
            scope = f"FOR USER {quote(owner)}" + (f" IN SCHEMA {quote(schema)}" if schema else "")
            grant = f"ALTER DEFAULT PRIVILEGES {scope} GRANT {add} ON TABLES TO {grantee}"
            revoke = f"ALTER DEFAULT PRIVILEGES {scope} REVOKE {drop} ON TABLES FROM {grantee}"
        else:
            on = f"TABLE {target}" if kind == "table" else f"{kind.upper()} {quote(target)}"
            grant, revoke = f"GRANT {add} ON {on} TO {grantee}", f"REVOKE {drop} ON {on} FROM {grantee}"
        statements += ([grant] if add else []) + ([revoke] if drop else [])
    return statements


def _default_grants(acl: str, user: str) -> frozenset[str]:
    """The table privileges an ``aclitem[]`` text gives ``user`` (``{user=arwd/owner,...}``)."""
    granted: set[str] = set()
    for item in acl.strip("{}").split(","):
        grantee, _, rest = item.strip('"').partition("=")
        if grantee.strip('"') == user:
            letters = rest.partition("/")[0]
            granted |= {ACL_LETTERS[letter] for letter in letters if letter in ACL_LETTERS}
    return frozenset(granted)


def _user_exists(connection: RedshiftConnection, user: str) -> bool:
    return bool(_run(connection, "SELECT 1 FROM pg_user WHERE usename = %s", (user,), f"look up {user!r}"))


def _set_password(connection: RedshiftConnection, user: str, password: str) -> None:
    _run(
        connection,
        f"ALTER USER {quote(user)} PASSWORD '{md5_password(user, password)}'",
        (),
        f"set the password of {user!r}",
    )


def _run(
    connection: RedshiftConnection, statement: str, params: tuple[Any, ...], what: str
) -> list[list[Any]]:
    cursor = connection.cursor()
    try:
        cursor.execute(statement, params or None)
        rows = cursor.fetchall() if cursor.description else []
        return [list(row) for row in rows]
    except Exception as error:
        detail = error.args[0] if error.args else {}
        code = detail.get("C", "") if isinstance(detail, dict) else ""
        message = redact(
            str(detail.get("M", type(error).__name__) if isinstance(detail, dict) else type(error).__name__)
        )
        text = f"could not {what}: {code}: {message}" if code else f"could not {what}: {message}"
        raise (PermissionDeniedError(text) if code == "42501" else DatabaseOperationError(text)) from error
    finally:
        cursor.close()
