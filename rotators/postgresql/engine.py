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
creates belong to the original, usable by both. A clone session can still leave that
role (``SET ROLE NONE``), and role settings follow the login role: so at every rotation
the clone is also given the original's attributes and settings and stripped of other
memberships, of what it owns and of privileges granted to it (``catalog.py`` reads them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.engine import Capability, DriverErrors, Engine, Login, first_line
from common.errors import DatabaseOperationError, PermissionDeniedError, VerificationError
from common.passwords import PasswordPolicy
from rotators.postgresql import catalog

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.extensions import cursor as PgCursor
    from psycopg2.sql import Composable

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
    # Privileges granted to the clone, which the master revokes, live in each database:
    # the master acts in the secret's.
    master_session_on_secret_database = True

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
        current: Login,
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
        # One transaction: a clone that cannot be brought in line leaves nothing changed.
        with (
            _ERRORS.operation(f"set {user!r} and make {clone!r} act as {original!r}"),
            connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(_READ_WRITE)
            for statement in statements:
                # Composed whole and sent without parameters: see the module docstring.
                cursor.execute(statement.format(**names, hash=hashed, original_name=sql.Literal(original)))
            if user == clone or clone_exists:
                for aligning in _aligning_statements(cursor, original, clone):
                    cursor.execute(aligning)
                _remove_own_grants(cursor, original, clone)
                drift = _drift(cursor, original, clone)
                if drift:
                    raise PermissionDeniedError(
                        f"the master user could not make {clone!r} hold only what {original!r} holds: {drift}"
                    )

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
            drift = _drift(cursor, original, user) if user != original else None
        if row is None:
            raise VerificationError("the privilege query returned no row")
        session_user, current_user, member = row
        if session_user != user or current_user != original or not member:
            raise VerificationError(
                f"user {user!r} does not act as {original!r}: its sessions run as "
                f"{current_user!r} (member of {original!r}: {bool(member)})"
            )
        if drift:
            raise VerificationError(f"user {user!r} holds more than {original!r}: {drift}")

    def is_replica(self, connection: PgConnection) -> bool:
        return bool(_row(connection, "SELECT pg_is_in_recovery()", {}, "ask whether it is a standby")[0])

    def write_position(self, connection: PgConnection) -> str | None:
        # The write position covers the change once its commit is flushed, which
        # synchronous_commit (on by default, and on RDS) makes it before COMMIT returns.
        try:
            (value,) = _row(connection, "SELECT pg_current_wal_lsn()::text", {}, "read the WAL position")
        except DatabaseOperationError:
            return None  # a server without WAL functions (or refusing them) cannot tell
        return str(value) if value else None

    def has_replayed(self, connection: PgConnection, position: str) -> bool | None:
        try:
            (value,) = _row(
                connection,
                "SELECT pg_last_wal_replay_lsn() >= %(position)s::pg_lsn",
                {"position": position},
                "read the standby's replay position",
            )
        except DatabaseOperationError:
            return None
        return None if value is None else bool(value)  # NULL: not a streaming standby

    def _set_password(self, connection: PgConnection, user: str, password: str, what: str) -> None:
        from psycopg2 import sql

        statement = sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(self._hash(connection, user, password))
        )
        with _ERRORS.operation(what), connection, connection.cursor() as cursor:
            cursor.execute(_READ_WRITE)
            cursor.execute(statement)  # no parameters: see the module docstring

    @staticmethod
    def _hash(connection: PgConnection, user: str, password: str) -> str:
        from psycopg2.extensions import encrypt_password

        with _ERRORS.operation("hash the new password"):
            return str(encrypt_password(password, user, connection))

    @staticmethod
    def _role_exists(connection: PgConnection, user: str) -> bool:
        with _ERRORS.operation(f"look up role {user!r}"):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (user,))
                found = cursor.fetchone() is not None
            # A read: its transaction ends here, so that the write after it opens its own
            # (``_READ_WRITE`` must come before any query of a transaction).
            connection.rollback()
        return found

    # -- preflight (read only) ---------------------------------------------------------

    def own_password_capabilities(self, connection: PgConnection, login: Login) -> list[Capability]:
        # Any role may ALTER its own password, but not on a standby; a role whose sessions
        # are read-only by default (default_transaction_read_only) is served: the change
        # runs in a read-write transaction (_READ_WRITE). The rotation changes a standby's
        # password on its writer, where the preflight reads this.
        if self.is_replica(connection):
            detail = "the server is a standby (in recovery): the password changes on its writer"
            return [Capability("change its own password", False, detail)]
        return [Capability("change its own password", True, "any role may change its own password")]

    def alternate_user_capabilities(
        self, connection: PgConnection, *, original: str, clone: str, database: str | None, current: Login
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


def _fetch(cursor: PgCursor, query: str, original: str, clone: str) -> list[tuple[Any, ...]]:
    cursor.execute(query, {"original": original, "clone": clone})
    return list(cursor.fetchall())


def _aligning_statements(cursor: PgCursor, original: str, clone: str) -> list[Composable]:
    """As the master user: the statements that give ``clone`` exactly ``original``'s role
    attributes and settings and no membership but ``original``'s (without ADMIN OPTION).
    Refuses an attribute only a superuser may change when the master is not one."""
    from psycopg2 import sql

    clone_name = sql.Identifier(clone)
    statements: list[Composable] = []
    attributes = {row[0]: row[1:] for row in _fetch(cursor, catalog.ATTRIBUTES_QUERY, original, clone)}
    master_is_superuser = _fetch(cursor, catalog.HAS_PRIVILEGES_QUERY, original, clone)[0][2]
    changes = [
        (name, wanted)
        for name, wanted, held in zip(
            catalog.ATTRIBUTES, attributes[original], attributes[clone], strict=True
        )
        if wanted != held
    ]
    beyond = [name.upper() for name, _ in changes if name in catalog.SUPERUSER_ONLY]
    if beyond and not master_is_superuser:
        raise PermissionDeniedError(
            f"{clone!r} must hold exactly the attributes of {original!r}, but only a superuser "
            f"may change {', '.join(beyond)}: set them alike on both roles as a superuser"
        )
    if changes:
        keywords = [(name if wanted else "no" + name).upper() for name, wanted in changes]
        statements.append(sql.SQL("ALTER ROLE {} WITH " + " ".join(keywords)).format(clone_name))
    for role, is_original in _fetch(cursor, catalog.EXTRA_MEMBERSHIPS_QUERY, original, clone):
        template = "REVOKE ADMIN OPTION FOR {} FROM {}" if is_original else "REVOKE {} FROM {}"
        statements.append(sql.SQL(template).format(sql.Identifier(role), clone_name))
    settings = catalog.settings_by_role(_fetch(cursor, catalog.SETTINGS_QUERY, original, clone))
    wanted, held = _settings_of(settings, original), _settings_of(settings, clone)
    for database, name in sorted(set(held) - set(wanted), key=str):
        statements.append(
            sql.SQL("ALTER ROLE {} {}RESET {}").format(clone_name, _in(database), sql.Identifier(name))
        )
    for (database, name), stored in sorted(wanted.items(), key=str):
        if held.get((database, name)) != stored:
            statements.append(
                sql.SQL("ALTER ROLE {} {}SET {} = {}").format(
                    clone_name, _in(database), sql.Identifier(name), catalog.setting_value(name, stored)
                )
            )
    return statements


def _settings_of(settings: dict[str, dict[catalog.Setting, str]], role: str) -> dict[catalog.Setting, str]:
    # The clone's own ``role`` setting (its sessions start as the original) is the one
    # setting the two do not share; it is set on its own.
    return {key: value for key, value in settings.get(role, {}).items() if key != (None, "role")}


def _in(database: str | None) -> Composable:
    from psycopg2 import sql

    return sql.SQL("") if database is None else sql.SQL("IN DATABASE {} ").format(sql.Identifier(database))


def _remove_own_grants(cursor: PgCursor, original: str, clone: str) -> None:
    """As the master user: give what ``clone`` owns here to ``original`` and revoke the
    privileges granted to ``clone`` itself (this database and shared objects). Objects are
    never dropped: REASSIGN OWNED runs first, so DROP OWNED finds none to drop.

    Both statements need the privileges of both roles; a master that is not a superuser
    (Amazon RDS: CREATEROLE) lends itself the memberships for the transaction and gives
    them back. DROP OWNED revokes only what the master may revoke (grants made by a role
    whose privileges it holds): what remains is reported by the caller."""
    from psycopg2 import sql

    if not _fetch(cursor, catalog.DEPENDENCIES_QUERY, original, clone):
        return
    acts_as_clone, acts_as_original, superuser = _fetch(
        cursor, catalog.HAS_PRIVILEGES_QUERY, original, clone
    )[0]
    lent = [
        role
        for role, held in ((clone, acts_as_clone), (original, acts_as_original))
        if not (held or superuser)
    ]
    for role in lent:
        cursor.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
    cursor.execute(
        sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(clone), sql.Identifier(original))
    )
    cursor.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(clone)))
    for role in lent:
        cursor.execute(sql.SQL("REVOKE {} FROM CURRENT_USER").format(sql.Identifier(role)))


def _drift(cursor: PgCursor, original: str, clone: str) -> str | None:
    """What ``clone`` holds beyond ``original`` (readable by any role), or None: other
    attributes, memberships or settings, objects it owns or privileges granted to it here."""
    found: list[str] = []
    attributes = {row[0]: row[1:] for row in _fetch(cursor, catalog.ATTRIBUTES_QUERY, original, clone)}
    if original in attributes and clone in attributes and attributes[original] != attributes[clone]:
        found.append("other role attributes")
    memberships = _fetch(cursor, catalog.EXTRA_MEMBERSHIPS_QUERY, original, clone)
    if memberships:
        found.append("memberships of " + ", ".join(repr(role) for role, _ in memberships))
    settings = catalog.settings_by_role(_fetch(cursor, catalog.SETTINGS_QUERY, original, clone))
    if _settings_of(settings, original) != _settings_of(settings, clone):
        found.append("other role settings")
    objects = [row[0] for row in _fetch(cursor, catalog.DEPENDENCIES_QUERY, original, clone)]
    if objects:
        more = f" and {len(objects) - 5} more" if len(objects) > 5 else ""
        found.append(f"ownership or privileges granted to it directly ({'; '.join(objects[:5])}{more})")
    return "; ".join(found) or None


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


#: The first statement of every transaction that writes: a role may make its sessions
#: read-only by default (``ALTER ROLE ... SET default_transaction_read_only = on``, the
#: usual read-only application user), and any role may open a read-write transaction;
#: on a standby it fails, as the write would.
_READ_WRITE = "SET TRANSACTION READ WRITE"

# 42501 insufficient_privilege.
_ERRORS = DriverErrors(_reason, denied=frozenset({"42501"}))
