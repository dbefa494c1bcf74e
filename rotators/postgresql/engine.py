"""PostgreSQL operations with psycopg2.

Identifiers are quoted by the driver (``psycopg2.sql.Identifier``). A statement that
names a role is composed whole (``sql.Literal`` for its values) and sent without
parameters: psycopg2 runs ``%``-substitution over the entire text of a parameterised
statement, quoted identifiers included, so a role ``a%%b`` would become ``a%b``.
Statements that name no identifier bind their values as parameters. New passwords are
hashed on the client (``encrypt_password``, with the server's ``password_encryption``)
before they are sent, so the clear text never reaches the server's statement log.

Alternating users: the clone is a member of the original role and its sessions start
as the original (``ALTER ROLE clone SET role = original``). It therefore holds exactly
the original's privileges, including grants given later, and objects either user
creates belong to the original, usable by both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.engine import Capability, DriverErrors, Engine, Login, first_line
from common.errors import DatabaseOperationError, VerificationError
from common.passwords import PasswordPolicy

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

# libpq reports a refused password only in the message text (no SQLSTATE reaches the
# client before the session exists); servers running with another lc_messages say it
# in their language, and such a refusal is then reported as a connection error.
_LOGIN_REFUSED = ("password authentication failed", "no password was provided")


class PostgresEngine(Engine["PgConnection"]):
    """PostgreSQL 10 and later, Amazon RDS and Aurora PostgreSQL."""

    name = "postgresql"
    engines = frozenset({"postgres", "aurora-postgresql"})
    default_port = 5432
    default_dbname = "postgres"
    max_username_length = 63
    password_policy = PasswordPolicy()

    def open(self, login: Login) -> PgConnection:
        import psycopg2

        options: dict[str, Any] = {
            "host": login.host,
            "port": login.port,
            "dbname": login.dbname,
            "user": login.username,
            "password": login.password,
            "connect_timeout": login.connect_timeout,
            "application_name": "secrets-manager-rotation",
            "options": f"-c statement_timeout={login.statement_timeout * 1000}",
        }
        if login.tls.enabled:
            options.update(sslmode="verify-full", sslrootcert=login.tls.trust_anchor())
        else:
            options["sslmode"] = "disable"
        try:
            # Nothing runs after connecting (the statement time-out is a startup option),
            # so a failure here leaves nothing open to close.
            connection: PgConnection = psycopg2.connect(**options)
        except psycopg2.Error as error:
            reason = first_line(error)
            if any(marker in reason for marker in _LOGIN_REFUSED):
                raise login.refused() from error
            raise login.unreachable(reason) from error
        return connection

    def close(self, connection: PgConnection) -> None:
        connection.close()

    def change_own_password(self, connection: PgConnection, login: Login, new_password: str) -> None:
        self._set_password(
            connection, login.username, new_password, f"change the password of {login.username!r}"
        )

    def set_alternate_user(
        self,
        connection: PgConnection,
        *,
        original: str,
        clone: str,
        user: str,
        password: str,
        database: str | None,
    ) -> None:
        from psycopg2 import sql

        hashed = sql.Literal(self._hash(connection, user, password))
        clone_exists = self._role_exists(connection, clone)
        names = {"original": sql.Identifier(original), "clone": sql.Identifier(clone)}
        if user == original:
            statements = [sql.SQL("ALTER ROLE {original} WITH PASSWORD {hash}")]
        elif clone_exists:
            statements = [sql.SQL("ALTER ROLE {clone} WITH LOGIN PASSWORD {hash}")]
        else:
            statements = [sql.SQL("CREATE ROLE {clone} WITH LOGIN PASSWORD {hash}")]
        if user == clone or clone_exists:
            # Membership and the session's default role are re-asserted at every rotation,
            # so a clone that drifted (membership revoked, setting reset) is repaired.
            statements.append(sql.SQL("GRANT {original} TO {clone}"))
            statements.append(sql.SQL("ALTER ROLE {clone} SET role = {original_name}"))
        with (
            _ERRORS.operation(f"set {user!r} and make {clone!r} act as {original!r}"),
            connection,
            connection.cursor() as cursor,
        ):
            for statement in statements:
                # Composed whole and sent without parameters: see the module docstring.
                cursor.execute(statement.format(**names, hash=hashed, original_name=sql.Literal(original)))

    def verify_session(self, connection: PgConnection) -> None:
        with _ERRORS.operation("run the verification query"), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            row = cursor.fetchone()
        if row is None or row[0] != 1:
            raise VerificationError("the verification query returned no row")

    def verify_privileges(
        self, connection: PgConnection, *, original: str, user: str, database: str | None
    ) -> None:
        with _ERRORS.operation(f"check that {user!r} acts as {original!r}"), connection.cursor() as cursor:
            cursor.execute(
                "SELECT session_user, current_user, pg_has_role(session_user, %s, 'MEMBER')", (original,)
            )
            row = cursor.fetchone()
        if row is None:
            raise VerificationError("the privilege query returned no row")
        session_user, current_user, member = row
        if session_user != user or current_user != original or not member:
            raise VerificationError(
                f"user {user!r} does not act as {original!r}: its sessions run as "
                f"{current_user!r} (member of {original!r}: {bool(member)})"
            )

    def _set_password(self, connection: PgConnection, user: str, password: str, what: str) -> None:
        from psycopg2 import sql

        statement = sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(self._hash(connection, user, password))
        )
        with _ERRORS.operation(what), connection, connection.cursor() as cursor:
            cursor.execute(statement)  # no parameters: see the module docstring

    @staticmethod
    def _hash(connection: PgConnection, user: str, password: str) -> str:
        from psycopg2.extensions import encrypt_password

        with _ERRORS.operation("hash the new password"):
            return str(encrypt_password(password, user, connection))

    @staticmethod
    def _role_exists(connection: PgConnection, user: str) -> bool:
        with _ERRORS.operation(f"look up role {user!r}"), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (user,))
            return cursor.fetchone() is not None

    # -- preflight (read only) ---------------------------------------------------------

    def own_password_capabilities(self, connection: PgConnection, login: Login) -> list[Capability]:
        # Any role may ALTER its own password, but not on a standby or in a read-only session.
        recovery, read_only = _row(
            connection,
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'",
            {},
            "read the server's state",
        )
        if recovery or read_only:
            where = "the server is a standby (in recovery)" if recovery else "sessions are read-only"
            return [Capability("change its own password", False, f"{where}: point the secret at the writer")]
        return [Capability("change its own password", True, "any role may change its own password")]

    def alternate_user_capabilities(
        self, connection: PgConnection, *, original: str, clone: str, database: str | None
    ) -> list[Capability]:
        names = {"original": original, "clone": clone}
        superuser, createrole, recovery, version = _row(
            connection,
            "SELECT rolsuper, rolcreaterole, pg_is_in_recovery(), "
            "current_setting('server_version_num')::int FROM pg_catalog.pg_roles "
            "WHERE rolname = current_user",
            {},
            "read the master role",
        )
        original_super, clone_super, admin = _row(
            connection,
            "SELECT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = %(original)s), "
            "(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = %(clone)s), "
            "pg_has_role(current_user, "
            "(SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %(original)s), 'MEMBER WITH ADMIN OPTION')",
            names,
            "read the users' roles",
        )
        found = [
            Capability(
                "create and alter roles (CREATEROLE)",
                bool(superuser or createrole) and not recovery,
                "the server is a standby: point the master secret at the writer"
                if recovery
                else ("held" if superuser or createrole else "ALTER ROLE <master> CREATEROLE"),
            ),
            Capability(
                f"alter {original!r}",
                original_super is not None and (bool(superuser) or not original_super),
                "held"
                if original_super is not None and (superuser or not original_super)
                else (f"role {original!r} does not exist" if original_super is None else "it is a superuser"),
            ),
        ]
        if clone_super:
            found.append(Capability(f"alter {clone!r}", bool(superuser), f"{clone!r} is a superuser"))
        if int(version) >= 160000:
            # PostgreSQL 16: CREATEROLE no longer grants membership in roles it lacks ADMIN on.
            found.append(
                Capability(
                    f"grant {original!r} to {clone!r}",
                    bool(superuser or admin),
                    "held" if superuser or admin else f"GRANT {original} TO <master> WITH ADMIN OPTION",
                )
            )
        return found


def _row(connection: PgConnection, query: str, params: dict[str, str], what: str) -> tuple[Any, ...]:
    """The one row of a catalog query (a read: the transaction it opens is rolled back)."""
    with _ERRORS.operation(what):
        with connection.cursor() as cursor:
            cursor.execute(query, params or None)
            row = cursor.fetchone()
        connection.rollback()
    if row is None:
        raise DatabaseOperationError(f"could not {what}: no row")
    return tuple(row)


def _reason(error: Exception) -> tuple[object | None, str | None]:
    """The server's SQLSTATE and primary message only: psycopg2's full text quotes the
    statement, and with it the password hash."""
    diag = getattr(error, "diag", None)
    return getattr(error, "pgcode", None), getattr(diag, "message_primary", None)


# 42501 insufficient_privilege.
_ERRORS = DriverErrors(_reason, denied=frozenset({"42501"}))
