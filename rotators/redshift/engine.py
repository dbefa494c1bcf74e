"""Amazon Redshift operations with redshift_connector.

Passwords are sent as Redshift's md5 form (``'md5' || md5(password || user)``), never in
clear; identifiers are quoted here (the driver has no identifier quoting) and the only
literal spliced into a statement is that hexadecimal hash. The catalog statements and
the privilege statements live in :mod:`rotators.redshift.catalog`.

Alternating users: the clone is created on first use and, at every rotation, brought
in line with the original (memberships first, then attributes such as ``CREATEDB`` and
privileges on objects, grant options included) in a fixed
number of catalog reads, whatever the number of objects.

Time-outs: ``DB_CONNECT_TIMEOUT`` bounds opening a session; ``DB_STATEMENT_TIMEOUT`` is
the server's ``statement_timeout``. redshift_connector's only time-out (``timeout``) is a
socket time-out for the whole session and the driver offers no public way to change it,
so once the session is open its socket's time-out becomes the statement time-out plus the
connect time-out (the server's cancellation must reach us first). That socket is the
driver's private ``_usock`` (redshift_connector 2.x, pinned in requirements.txt, checked
by :func:`driver_socket` and by the tests).

TLS: redshift_connector takes no CA parameter; it verifies against Amazon's Redshift
CA bundle it ships plus the default trust store, which OpenSSL reads from
``SSL_CERT_FILE``. The configured bundle is given to it that way, for the duration of
the connection only (``trusting``).
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from common.engine import Capability, DriverErrors, Engine, Login
from common.errors import DatabaseOperationError, VerificationError
from common.passwords import PasswordPolicy
from rotators.redshift.catalog import (
    differences,
    membership_statements,
    object_statements,
    privileges_of_pair,
    quote,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rotators.redshift.catalog import Privileges

RedshiftConnection = Any

_TRUST_LOCK = threading.Lock()
#: SQLSTATE of a refused password. Redshift answers a wrong password with 28000
#: ("password authentication failed for user ..."); 28000 also stands for host-based
#: rejections ("no pg_hba.conf entry", "pg_hba.conf rejects connection"), which no other
#: password can get past: those are connection errors.
_REFUSED_CODE = "28P01"
_AUTHORIZATION_CODE = "28000"
_REFUSAL_TEXT = "password authentication failed"


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
    """Whether a driver error is the server refusing the password (so that another
    version's password may be tried), as opposed to refusing the client by host or
    database rules, which no password changes."""
    detail = error.args[0] if error.args else None
    if not isinstance(detail, dict):
        return False
    code, message = detail.get("C"), str(detail.get("M", ""))
    return code == _REFUSED_CODE or (code == _AUTHORIZATION_CODE and _REFUSAL_TEXT in message)


def md5_password(user: str, password: str) -> str:
    """Redshift's pre-hashed password form."""
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()  # noqa: S324 - Redshift's scheme


def driver_socket(connection: RedshiftConnection) -> socket.socket:
    """The session's socket. redshift_connector 2.x keeps it in the private ``_usock``
    and has no public accessor; a driver without it is refused with an error that says
    so, rather than leaving the time-outs silently wrong."""
    sock = getattr(connection, "_usock", None)
    if not isinstance(sock, socket.socket):
        raise DatabaseOperationError(
            "this redshift_connector keeps no socket in '_usock': the statement time-out cannot be "
            "applied (install the version pinned in requirements.txt)"
        )
    return sock


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
        try:
            connection.autocommit = True
            _run(
                connection,
                f"SET statement_timeout TO {int(login.statement_timeout) * 1000}",
                (),
                "set the time-out",
            )
            driver_socket(connection).settimeout(login.statement_timeout + login.connect_timeout)
        except BaseException:
            self.close(connection)
            raise
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
        current: Login,
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
            align_clone(connection, original, clone)

    def verify_session(self, connection: RedshiftConnection) -> None:
        if _run(connection, "SELECT 1", (), "run the verification query") != [[1]]:
            raise VerificationError("the verification query returned no row")

    def verify_privileges(
        self, connection: RedshiftConnection, *, original: str, user: str, database: str | None
    ) -> None:
        """As ``user`` (the pending clone), compare its privileges with the original's on
        everything any user may read; memberships of Redshift roles and column grants,
        which only the master user can see for another user, were compared in setSecret.
        Nothing to prove when ``user`` is the original itself: it is the reference."""
        if user == original:
            return
        wanted, held = privileges_of_pair(_runner(connection), original, user, master=False)
        _require_same(wanted, held, user, original)

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
        self,
        connection: RedshiftConnection,
        *,
        original: str,
        clone: str,
        database: str | None,
        current: Login,
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


def align_clone(connection: RedshiftConnection, original: str, clone: str) -> None:
    """As the master user: give ``clone`` exactly what ``original`` holds, then compare.
    Memberships come first, so that privileges arriving with a group or a role are not
    granted again directly."""
    run = _runner(connection)
    wanted, held = privileges_of_pair(run, original, clone, master=True)
    memberships = membership_statements(wanted, held, clone)
    for statement in memberships:
        _run(connection, statement, (), f"bring the memberships of {clone!r} in line")
    if memberships:
        wanted, held = privileges_of_pair(run, original, clone, master=True)
    for statement in object_statements(wanted, held, clone):
        try:
            _run(connection, statement, (), f"bring the privileges of {clone!r} in line")
        except DatabaseOperationError as error:
            if error.__cause__ is None or _statement_reason(error.__cause__)[0] != _DEPENDENT_PRIVILEGES:
                raise
            # Redshift's REVOKE has no CASCADE: what the clone granted others stays theirs.
            raise DatabaseOperationError(
                f"could not take back from {clone!r} a privilege or grant option {original!r} "
                f"no longer holds: {clone!r} has granted the privilege to other users with it, "
                f"and Redshift's REVOKE has no CASCADE; revoke what {clone!r} granted on these "
                f"objects ({_objects(statement)}), then rotate again"
            ) from error
    wanted, held = privileges_of_pair(run, original, clone, master=True)
    _require_same(wanted, held, clone, original)


def _objects(statement: str) -> str:
    """The objects a GRANT or REVOKE names (between ON and FROM/TO), for an error."""
    objects = statement.partition(" ON ")[2].rpartition(" FROM ")[0] or statement.partition(" ON ")[2]
    return objects if len(objects) <= 300 else objects[:300] + "..."


def _require_same(wanted: Privileges, held: Privileges, user: str, original: str) -> None:
    found = differences(wanted, held)
    if found:
        shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
        raise VerificationError(f"user {user!r} does not hold the privileges of {original!r}: {shown}")


def _user_exists(connection: RedshiftConnection, user: str) -> bool:
    return bool(_run(connection, "SELECT 1 FROM pg_user WHERE usename = %s", (user,), f"look up {user!r}"))


def _set_password(connection: RedshiftConnection, user: str, password: str) -> None:
    _run(
        connection,
        f"ALTER USER {quote(user)} PASSWORD '{md5_password(user, password)}'",
        (),
        f"set the password of {user!r}",
    )


def _runner(connection: RedshiftConnection) -> Any:
    def run(statement: str, params: tuple[Any, ...]) -> list[list[Any]]:
        return _run(connection, statement, params, "read privileges")

    return run


def _run(
    connection: RedshiftConnection, statement: str, params: tuple[Any, ...], what: str
) -> list[list[Any]]:
    with _ERRORS.operation(what):
        cursor = connection.cursor()
        try:
            cursor.execute(statement, params or None)
            rows = cursor.fetchall() if cursor.description else []
            return [list(row) for row in rows]
        finally:
            cursor.close()


def _statement_reason(error: BaseException) -> tuple[object | None, str | None]:
    """A statement error's SQLSTATE and message, from the server's error fields (the
    driver's ``args[0]``); never the statement, which may hold a password's hash."""
    detail = error.args[0] if error.args else None
    if not isinstance(detail, dict):
        return None, None
    return detail.get("C") or None, str(detail["M"]) if detail.get("M") else None


#: SQLSTATE 2BP01 (dependent_privilege_descriptors_still_exist).
_DEPENDENT_PRIVILEGES = "2BP01"
#: SQLSTATE 42501 (insufficient_privilege): the server refused the statement to this user.
_ERRORS = DriverErrors(_statement_reason, denied=frozenset({"42501"}))
