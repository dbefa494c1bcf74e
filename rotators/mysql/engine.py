"""MySQL, Aurora MySQL and MariaDB operations with PyMySQL.

Statements depend on the server (``dialect.Server``, from the handshake's version
string, never by trial and error). Values, user names and host names are bound
parameters; grant text is the server's own ``SHOW GRANTS`` output with the grantee
replaced by a bound account.

Alternating users: the clone gets an account for every host part of the original that the
secret's current credentials prove (same host part, never an assumed ``%``; see
``_proved_hosts``), the original's TLS requirement, every grant including
``WITH GRANT OPTION`` and roles, the original's default roles and resource limits
(``MAX_USER_CONNECTIONS`` and the others); grants the original no longer has are revoked
from the clone. The master user's session checks the result and names what differs.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from common.engine import (
    Capability,
    DriverErrors,
    Engine,
    Lockout,
    Login,
    compare_with_original,
    engine_log,
    first_line,
)
from common.errors import DatabaseOperationError, VerificationError
from common.passwords import PasswordPolicy
from rotators.mysql.dialect import (
    BATCH_STEP,
    CONNECTION_CHARSET,
    CONNECTION_ENCODING,
    Batch,
    Grant,
    Server,
    Step,
    _clipped,
    grant_difference,
    native_password_hash,
    parse_grants,
    privileges_of,
    require_clause,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pymysql.connections import Connection

    MySQLConnection = Connection[Any]
else:
    MySQLConnection = Any

# ER_ACCESS_DENIED_ERROR and ER_ACCESS_DENIED_NO_PASSWORD_ERROR: the credentials were refused.
_LOGIN_REFUSED = frozenset({1045, 1698})
# ER_USER_IS_BLOCKED (MariaDB max_password_errors) and MySQL 8's
# ER_USER_ACCESS_DENIED_FOR_USER_ACCOUNT_BLOCKED_BY_PASSWORD_LOCK: every login is refused.
_ACCOUNT_BLOCKED = frozenset({4150, 3955})
# ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR.
_NOT_ALLOWED = frozenset({1044, 1142, 1227})
# ER_SPECIFIC_ACCESS_DENIED_ERROR (RETAIN CURRENT PASSWORD needs APPLICATION_PASSWORD_ADMIN)
# and ER_INCORRECT_CURRENT_PASSWORD (REPLACE names a password that is not the primary).
_SPECIFIC_ACCESS_DENIED = 1227
_PARSE_ERROR = 1064
_INCORRECT_CURRENT_PASSWORD = 3891
#: The sql_mode words that set ANSI_QUOTES: the flag itself, and the combination modes
#: that imply it (ANSI; MySQL 5.7's and MariaDB's ORACLE, POSTGRESQL, MSSQL, DB2, MAXDB).
#: A combination mode stays in ``@@sql_mode`` beside the flags it set, and naming it in a
#: SET sets them all again: taking out ANSI_QUOTES alone brings it back.
_ANSI_QUOTES_MODES = ("ANSI_QUOTES", "ANSI", "ORACLE", "POSTGRESQL", "MSSQL", "DB2", "MAXDB")


def _without_modes(modes: Sequence[str]) -> str:
    """A SQL expression: the session's sql_mode less the words ``modes`` (fixed names)."""
    expression = "CONCAT(',', @@SESSION.sql_mode, ',')"
    for mode in modes:
        expression = f"REPLACE({expression}, ',{mode},', ',')"
    return f"TRIM(BOTH ',' FROM {expression})"


#: Takes ANSI_QUOTES and every mode that sets it (:data:`_ANSI_QUOTES_MODES`) out of the
#: session's sql_mode, keeping the rest (NO_BACKSLASH_ESCAPES, which PyMySQL follows).
#: Under ANSI_QUOTES ``SHOW GRANTS`` writes names in double quotes, which the grant parser
#: does not read, and ``"`` quotes a name with no backslash escape, which the batch
#: guard's quote scanner (``dialect.unquoted_text``) would misread: a session that reads
#: grants or sends a batch first takes the default quoting (:func:`_default_quoting`),
#: whatever the server's sql_mode.
_DEFAULT_QUOTING = f"SET SESSION sql_mode = {_without_modes(_ANSI_QUOTES_MODES)}"
#: The attribute that marks a session already given the default quoting.
_QUOTING_SET = "_secrets_rotation_default_quoting"
#: MariaDB's max_password_errors when no limit is set (the default).
MARIADB_UNLIMITED = 4294967295
#: Seconds one MASTER_GTID_WAIT blocks before the replica wait polls again.
GTID_WAIT_SLICE = 0.2


class MySQLEngine(Engine[MySQLConnection]):
    """MySQL 5.7 and 8, Aurora MySQL, MariaDB 10 and 11."""

    name = "mysql"
    engines = frozenset({"mysql", "aurora-mysql", "mariadb"})
    default_port = 3306
    default_dbname = None
    max_username_length = 32
    password_policy = PasswordPolicy()

    def username_limit(self, engine: str) -> int:
        return 80 if engine == "mariadb" else 32

    def open(self, login: Login) -> MySQLConnection:
        import pymysql

        # PyMySQL negotiates TLS whenever the server offers it unless told otherwise, so
        # both choices are explicit: verified TLS, or none at all.
        tls: dict[str, Any] = {"ssl_disabled": True}
        if login.tls.enabled:
            tls = {"ssl_ca": login.tls.trust_anchor(), "ssl_verify_cert": True, "ssl_verify_identity": True}
        try:
            connection = pymysql.connect(
                host=login.host,
                port=login.port,
                user=login.username,
                # The server checks a login against the bytes the password was hashed from,
                # and PASSWORD(?) and our own hash take the password in the connection's
                # character set: UTF-8 on both sides, as the mariadb and mysql clients send
                # it. PyMySQL would encode a str password as Latin-1 (refusing what the
                # clients accept, and failing on anything outside Latin-1).
                password=login.password.encode(CONNECTION_ENCODING),
                database=login.dbname,
                charset=CONNECTION_CHARSET,
                connect_timeout=login.connect_timeout,
                # PyMySQL reads the server's greeting with read_timeout: a server that accepts
                # the connection and says nothing must fail within the connect time-out.
                read_timeout=login.connect_timeout,
                write_timeout=login.connect_timeout,
                autocommit=True,
                program_name="secrets-manager-rotation",
                **tls,
            )
        except pymysql.err.OperationalError as error:
            if error.args and error.args[0] in _LOGIN_REFUSED:
                raise login.refused() from error
            if error.args and error.args[0] in _ACCOUNT_BLOCKED:
                raise login.blocked(_reason(error)[1] or f"error {error.args[0]}") from error
            raise login.unreachable(_reason(error)[1] or type(error).__name__) from error
        except (pymysql.err.Error, OSError, ValueError) as error:
            # PyMySQL closes its socket itself when any part of connect() fails (the
            # statements it runs after authenticating included), so nothing is left open.
            raise login.unreachable(_reason(error)[1] or first_line(error)) from error
        # Statements then get the statement time-out; PyMySQL applies these attributes
        # before every read and write.
        setattr(connection, "_read_timeout", login.statement_timeout)  # noqa: B010 - not in the stubs
        setattr(connection, "_write_timeout", login.statement_timeout)  # noqa: B010
        return connection

    def close(self, connection: MySQLConnection) -> None:
        _close_quietly(connection)

    def change_own_password(self, connection: MySQLConnection, login: Login, new_password: str) -> None:
        server = _server(connection)
        # An account may read its own grants: MariaDB shows a native-password account as
        # "IDENTIFIED BY PASSWORD '*...'" there.
        hashed = server.flavour == "mariadb" and any(
            " IDENTIFIED BY PASSWORD '*" in str(row[0])
            for row in _rows(connection, "SHOW GRANTS FOR CURRENT_USER()", (), "read its own account")
        )
        secret = native_password_hash(new_password) if hashed else new_password
        # MySQL 8 with password_require_current: the password the session logged in with
        # (the primary: a secondary logs in only where add_password keeps one) is named.
        current = (login.password,) if server.replaces_current_password else ()
        _execute(
            connection,
            server.change_own_password(hashed),
            (secret, *current),
            f"change the password of {login.username!r}",
        )

    def set_alternate_user(
        self,
        connection: MySQLConnection,
        *,
        original: str,
        clone: str,
        user: str,
        password: str,
        database: str | None,
        current: Login,
    ) -> None:
        server = _server(connection)
        if len(clone) > server.username_limit:
            raise DatabaseOperationError(
                f"user name {clone!r} is longer than the {server.username_limit} characters "
                "this server allows"
            )
        if not _hosts(connection, original):
            raise DatabaseOperationError(f"user {original!r} has no account on this server")
        hosts = self._proved_hosts(connection, original, current)
        if user == original:
            for host in hosts:
                _set_account_password(connection, server, user, host, password)
        # The clone follows the original at every rotation, also while it is the current user.
        # Accounts are created and passwords set first, one statement each (a password is
        # never part of a batch); everything else goes to the server in one batch.
        clone_hosts = _hosts(connection, clone)
        unproved = _unproved_accounts(original, clone, hosts, _hosts(connection, original), clone_hosts)
        if unproved:
            engine_log.warning(
                "accounts the current credentials did not prove are left alone: the original's keep "
                "their password; the clone's are dropped only at its own turn (never while AWSCURRENT)",
                extra={"accounts": unproved, "proved_hosts": hosts},
            )
        steps: list[Step] = []
        for host in hosts:
            if user == clone:
                steps += self._mirror_account(connection, server, original, clone, host, password)
            elif host in clone_hosts:
                steps += self._mirror_account(connection, server, original, clone, host, None)
        if user == clone:
            # The clone is not AWSCURRENT, and AWSPENDING's password goes only to the proved
            # host parts: an account at any other host part (one the original left, or one
            # not proved) would keep a retired password, and shadow the clone's wider account
            # for clients there (refusing the new credentials). While the clone is AWSCURRENT,
            # nothing is dropped: its credentials may still log in there (salted plugins
            # prove one account only).
            steps += [
                Step("DROP USER %s@%s", (clone, host), f"drop {clone!r}@{host!r}, a host part not proved")
                for host in sorted(set(clone_hosts) - set(hosts))
            ]
        _run_batches(connection, server, steps)
        # Only the accounts the master keeps in line are checked; those it may not act on
        # were named above (a check would fail every retry of this step on them).
        for host in sorted(set(hosts) & set(_hosts(connection, clone))):
            difference = grant_difference(
                _grants(connection, original, host), _grants(connection, clone, host)
            )
            if difference:
                raise VerificationError(
                    f"user {clone!r}@{host!r} does not hold the grants of {original!r} ({difference})"
                )
            options = _account_options(connection, server, original, host).differences(
                _account_options(connection, server, clone, host), server
            )
            if options:
                raise VerificationError(
                    f"user {clone!r}@{host!r} does not have the TLS requirement and resource limits "
                    f"of {original!r} ({options})"
                )

    def _proved_hosts(self, connection: MySQLConnection, original: str, current: Login) -> list[str]:
        """The host parts of ``original`` the master may act on: those of the accounts the
        secret's current credentials open, never every account that shares the name
        (``app@'%'`` and ``app@'10.9.9.9'`` are different accounts with their own
        passwords and privileges: a confused deputy otherwise).

        An account of the current user is proved when its authentication string is what
        the current password gives (``mysql_native_password``: the hash is unsalted). When
        none is (other plugins: ``caching_sha2_password``, salted; MariaDB's ``ed25519``), the one
        account a login with the current credentials opens (``CURRENT_USER()``) is proved,
        with the accounts holding the very same authentication string. The original's host
        parts are then those proved; when the clone is the current user, also the
        original's accounts whose authentication string equals the original's at a proved
        host (host parts an administrator added with the same password)."""
        proving = current.username
        accounts = _authentication(connection, proving)
        proved = {
            host
            for host, (plugin, stored) in accounts.items()
            if plugin == "mysql_native_password" and stored == native_password_hash(current.password)
        }
        if not proved:
            with self.connect(current) as session:
                account = _text(_rows(session, "SELECT CURRENT_USER()", (), "read the current account")[0][0])
            name, _, host = account.rpartition("@")
            if name == proving and host in accounts:
                proved = {h for h, auth in accounts.items() if auth == accounts[host]}
        if not proved:
            raise DatabaseOperationError(
                f"could not tell which account of {proving!r} the current credentials open: "
                "the master user acts on no account the secret has not proved"
            )
        if proving == original:
            return sorted(proved)
        originals = _authentication(connection, original)
        wanted = {originals[host] for host in proved if host in originals}
        return sorted(host for host, auth in originals.items() if host in proved or auth in wanted)

    def _mirror_account(  # noqa: PLR0917 - one account, spelled out
        self,
        connection: MySQLConnection,
        server: Server,
        original: str,
        clone: str,
        host: str,
        password: str | None,
    ) -> list[Step]:
        """Make ``clone``@``host`` a copy of ``original``@``host``: the account and its
        password (when given) now, with the original's TLS requirement in the same
        statement (a batch that fails later never leaves the account open to the password
        without it); the statements for its grants and default roles (and the TLS
        requirement, when no password is set) are returned, for the caller to send in one
        batch. Reads are per account, never per grant line."""
        account = (clone, host)
        where = f"{clone!r}@{host!r}"
        clause, params = _account_options(connection, server, original, host).clause(server)
        steps: list[Step] = []
        apart = Step(
            server.require_statement(clause), (*account, *params), f"set the TLS requirement of {where}"
        )
        if password is None:
            steps.append(apart)
        else:
            # A server that takes no REQUIRE with a password gets it at once on its own:
            # before the password where the account exists, else right after creating it.
            with_password = ("", []) if server.requires_apart else (clause, params)
            if _rows(
                connection, "SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", account, "look up"
            ):
                if server.requires_apart:
                    _execute(connection, apart.statement, apart.params, apart.what)
                _set_account_password(connection, server, clone, host, password, with_password)
            else:
                hashed = server.sends_hash("mysql_native_password") and server.version >= (10, 4, 0)
                secret = native_password_hash(password) if hashed else password
                _execute(
                    connection,
                    server.create_user(hashed, with_password[0]),
                    (*account, secret, *with_password[1]),
                    f"create {clone!r}",
                )
                if server.requires_apart:
                    _execute(connection, apart.statement, apart.params, apart.what)
        wanted, held = _grants(connection, original, host), _grants(connection, *account)
        # Revoke first: a changed grant line is then replaced, not merged.
        for grant in sorted(held - wanted):
            if not grant.is_usage_only:
                steps += [
                    Step(statement, account, f"revoke {grant.what} from {where}")
                    for statement in grant.revokes()
                ]
        steps += [
            Step(grant.grant(), account, f"grant {where} {grant.what}, as {original!r} has")
            for grant in sorted(wanted - held)
            if not grant.is_usage_only
        ]
        query = server.default_roles_query()
        if query is not None:
            rows = _rows(connection, query, (original, host), "read default roles")
            statement, role_params = server.set_default_roles([(_text(r), _text(h)) for r, h in rows])
            steps.append(Step(statement, (*role_params, *account), f"set the default roles of {where}"))
        return steps

    def verify_session(self, connection: MySQLConnection) -> None:
        rows = _rows(connection, "SELECT 1", (), "run the verification query")
        if rows != [(1,)]:
            raise VerificationError("the verification query returned no row")

    def add_password(self, connection: MySQLConnection, *, user: str, keep: str, new: str) -> bool:
        """MySQL 8.0.14+ and Aurora MySQL 3: the new password becomes primary and ``keep``
        secondary (``dialect.Server.add_own_password``). Falls back, saying so, when the
        account lacks ``APPLICATION_PASSWORD_ADMIN``; MariaDB and older MySQL: False."""
        import pymysql

        server = _server(connection)
        if not server.has_dual_passwords:
            return False
        try:
            with connection.cursor() as cursor:
                cursor.execute(server.add_own_password(), (new, keep))
        except pymysql.err.MySQLError as error:
            code = error.args[0] if error.args else None
            if code == _SPECIFIC_ACCESS_DENIED:
                engine_log.warning(
                    "the user may not keep two passwords (it lacks APPLICATION_PASSWORD_ADMIN): "
                    "its password is changed instead, and sessions with the old one are refused "
                    "until finishSecret",
                    extra={"user": user},
                )
                return False
            if code != _INCORRECT_CURRENT_PASSWORD:
                raise _ERRORS.shape(f"add a password for {user!r}", error) from error
            # ``keep`` logged in but is not the primary: it is the secondary already, and
            # the primary the new password an earlier attempt set. Set again replacing
            # itself (password_require_current wants the primary named), which leaves the
            # secondary as it is; a primary that is neither is refused (3891), not guessed.
            what = f"set the primary password of {user!r}"
            try:
                with connection.cursor() as cursor:
                    cursor.execute(server.change_own_password(), (new, new))
            except pymysql.err.MySQLError as refused:
                if (refused.args[0] if refused.args else None) != _INCORRECT_CURRENT_PASSWORD:
                    raise _ERRORS.shape(what, refused) from refused
                raise DatabaseOperationError(
                    f"could not {what}: its primary password is neither the current nor the "
                    "pending one (changed outside the rotation?); set it to the current one"
                ) from refused
        return True

    def is_replica(self, connection: MySQLConnection) -> bool:
        """Read only, or replicating: RDS read replicas run with read_only and Aurora MySQL
        readers with innodb_read_only, but a replica's parameter group may turn read_only
        off, and a password changed there would change on the replica alone. So a server
        that is not read-only is asked whether it replicates (:func:`_replicates`)."""
        rows = _rows(
            connection,
            "SELECT @@global.read_only OR @@global.innodb_read_only",
            (),
            "ask whether it is a replica",
        )
        return bool(rows and rows[0][0]) or _replicates(connection)

    def write_position(self, connection: MySQLConnection) -> str | None:
        # MariaDB: the writer's binary log position as a GTID list, once the change is
        # written to it (before its statement returns). MySQL's GTID sets and Aurora's
        # storage-level replication are not waited on: their readers are retried by login.
        if _server(connection).flavour != "mariadb":
            return None
        try:
            rows = _rows(connection, "SELECT @@global.gtid_binlog_pos", (), "read the GTID position")
        except DatabaseOperationError:
            return None
        position = str(rows[0][0]) if rows and rows[0][0] else ""
        return position or None  # no binary log: nothing a replica could be waited on for

    def has_replayed(self, connection: MySQLConnection, position: str) -> bool | None:
        # MASTER_GTID_WAIT returns 0 once the replica's gtid_slave_pos covers ``position``,
        # -1 after the time-out (short: the caller polls, and bounds the whole wait), NULL
        # on a malformed position. On a primary it waits out the time-out and says -1 too
        # (a secret naming the writer under another spelling would stall the whole wait),
        # so only a replica (read-only, or applying a source's events: a writable replica)
        # is asked, in the same statement.
        try:
            rows = _rows(
                connection,
                "SELECT IF(@@global.read_only OR @@global.innodb_read_only OR (SELECT VARIABLE_VALUE "
                "FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVES_RUNNING') > 0, "
                "MASTER_GTID_WAIT(%s, %s), NULL)",
                (position, GTID_WAIT_SLICE),
                "wait for the replica's GTID position",
            )
        except DatabaseOperationError:
            return None
        value = rows[0][0] if rows else None
        return None if value is None else int(value) == 0

    def verify_privileges(
        self, connection: MySQLConnection, *, original: str, user: str, database: str | None
    ) -> None:
        account = _rows(connection, "SELECT CURRENT_USER()", (), "read the current account")[0][0]
        host = str(account).rpartition("@")[2]
        compare_with_original(
            _privileges(connection, user, host),
            lambda: _privileges(connection, original, host),
            user=f"{user!r}@{host!r}",
            original=original,
        )

    # -- preflight (read only) ---------------------------------------------------------

    def own_password_capabilities(self, connection: MySQLConnection, login: Login) -> list[Capability]:
        # Every account may set its own password, except on a read-only server (a replica).
        # MySQL 8's password_require_current is met: the current password is sent (REPLACE).
        read_only = _rows(connection, "SELECT @@read_only", (), "read @@read_only")[0][0]
        if int(read_only):
            detail = "the server is read-only (a replica): the password changes on its writer"
        else:
            return [Capability("change its own password", True, "any account may set its own password")]
        return [Capability("change its own password", False, detail)]

    def login_lockout(self, connection: MySQLConnection, login: Login) -> Lockout:
        if _server(connection).flavour == "mariadb":
            # A global variable (10.4+) every account may read; it spares no account but
            # those with CONNECTION ADMIN connecting from localhost.
            rows = _rows(
                connection, "SHOW GLOBAL VARIABLES LIKE 'max_password_errors'", (), "read max_password_errors"
            )
            limit = int(_text(rows[0][1])) if rows else None
            if limit is None or limit >= MARIADB_UNLIMITED:
                return Lockout(None, known=True, detail="MariaDB max_password_errors is unlimited")
            return Lockout(
                limit,
                known=True,
                detail=f"MariaDB max_password_errors = {limit}: the server blocks an account after "
                f"{limit} refused logins in a row (error 4150, until FLUSH PRIVILEGES)",
            )
        # MySQL 8.0.19+: per account, and in effect only with a PASSWORD_LOCK_TIME; an
        # account may read its own SHOW CREATE USER without privileges on mysql.*.
        rows = _rows(connection, "SHOW CREATE USER CURRENT_USER()", (), "read its own account")
        return account_lockout(login.username, _text(rows[0][0]) if rows else "")

    def alternate_user_capabilities(
        self, connection: MySQLConnection, *, original: str, clone: str, database: str | None, current: Login
    ) -> list[Capability]:
        account = _text(_rows(connection, "SELECT CURRENT_USER()", (), "read the current account")[0][0])
        user, _, host = account.rpartition("@")
        held = {
            _text(privilege).upper(): _text(grantable) == "YES"
            for privilege, grantable in _rows(
                connection,
                "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES "
                "WHERE GRANTEE = %s",
                (f"'{user}'@'{host}'",),
                "read the master user's privileges",
            )
        }
        found = [
            Capability(
                "CREATE USER",
                "CREATE USER" in held,
                "held" if "CREATE USER" in held else "GRANT CREATE USER ON *.* TO <master>",
            )
        ]
        try:
            hosts = _hosts(connection, original)
            wanted = {
                name
                for host in hosts
                for grant in _grants(connection, original, host)
                for name in _privilege_names(grant.what)
            }
        except DatabaseOperationError as error:
            return [*found, Capability("read accounts and grants (SELECT on mysql.*)", False, str(error))]
        if not hosts:
            return [*found, Capability(f"find {original!r}", False, f"user {original!r} has no account")]
        missing = sorted(name for name in wanted if not held.get(name))
        found.append(
            Capability(
                f"grant what {original!r} holds (WITH GRANT OPTION)",
                not missing,
                "held at the global level" if not missing else f"not grantable: {', '.join(missing)}",
            )
        )
        found.append(self._host_parts_capability(connection, original, clone, hosts, current))
        return found

    def _host_parts_capability(
        self, connection: MySQLConnection, original: str, clone: str, hosts: list[str], current: Login
    ) -> Capability:
        """Whether AWSCURRENT's credentials prove every host part of the pair (what
        ``set_alternate_user`` acts on), naming the accounts a rotation leaves alone."""
        what = f"act on every host part of {original!r} and {clone!r}"
        try:
            proved = self._proved_hosts(connection, original, current)
        except DatabaseOperationError as error:
            return Capability(what, False, str(error))
        unproved = _unproved_accounts(original, clone, proved, hosts, _hosts(connection, clone))
        if not unproved:
            return Capability(what, True, f"AWSCURRENT's credentials prove host parts {', '.join(proved)}")
        return Capability(
            what,
            False,
            f"AWSCURRENT's credentials prove only host parts {', '.join(proved)}: rotations leave "
            f"{', '.join(unproved)} alone (the original's keep their password; the clone's are dropped "
            "at its turn). A salted plugin (caching_sha2_password) proves one account only, an "
            "account with several authentication methods (IDENTIFIED VIA ... OR ...) none: "
            "keep one host part per user, or drop the accounts that are not the secret's",
        )


def _replicates(connection: MySQLConnection) -> bool:
    """Whether a server replicates from a source (a replica, writable or not): a source
    listed in its replication status (``Server.replica_status``). An account without the
    privilege that statement needs (most single users) is answered, on MariaDB, from
    status variables every account may read: a source configured for the default
    connection (``Slave_heartbeat_period`` above 0, also while stopped) or an applier
    running (``Slaves_running``, any connection); on MySQL 8, which keeps no such
    variable, ``read_only`` alone decides. The log says which way it was judged."""
    import pymysql

    server = _server(connection)
    try:
        with connection.cursor() as cursor:
            cursor.execute(server.replica_status)
            return bool(cursor.fetchall())
    except pymysql.err.MySQLError as error:
        if not error.args or error.args[0] not in _NOT_ALLOWED:
            raise _ERRORS.shape("read the replication status", error) from error
    if server.flavour != "mariadb":
        engine_log.warning(
            "the user may not read the replication status (REPLICATION CLIENT): a writable "
            "read replica would be taken for the writer; read_only alone was asked"
        )
        return False
    rows = _rows(
        connection,
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Slave_heartbeat_period', 'Slaves_running')",
        (),
        "read the replication status variables",
    )
    status = {_text(name).lower(): _text(value) for name, value in rows}
    configured = float(status.get("slave_heartbeat_period") or 0) > 0
    replicating = configured or int(status.get("slaves_running") or 0) > 0
    engine_log.info(
        "the user may not read the replication status (SLAVE MONITOR): judged by read_only and "
        "the replication status variables",
        extra={"replicating": replicating},
    )
    return replicating


def account_lockout(user: str, create_user: str) -> Lockout:
    """MySQL 8's lock of ``user`` after refused logins, from its ``SHOW CREATE USER`` text:
    in effect only with both ``FAILED_LOGIN_ATTEMPTS`` and a ``PASSWORD_LOCK_TIME``."""
    attempts = re.search(r"FAILED_LOGIN_ATTEMPTS (\d+)", create_user)
    lock_time = re.search(r"PASSWORD_LOCK_TIME (\d+|UNBOUNDED)", create_user)
    limit = int(attempts[1]) if attempts else 0
    if not limit or lock_time is None or lock_time[1] == "0":
        return Lockout(None, known=True, detail=f"{user!r} has no FAILED_LOGIN_ATTEMPTS lock")
    return Lockout(
        limit,
        known=True,
        detail=f"{user!r} has FAILED_LOGIN_ATTEMPTS {limit} PASSWORD_LOCK_TIME {lock_time[1]}: "
        f"the server locks it after {limit} refused logins in a row (error 3955)",
    )


def _set_account_password(  # noqa: PLR0917 - one account, spelled out
    connection: MySQLConnection,
    server: Server,
    user: str,
    host: str,
    password: str,
    require: tuple[str, list[object]] | None = None,
) -> None:
    """As the master user: set an account's password, hashed where the server takes it
    so, with ``require`` (a ``REQUIRE`` clause and its parameters) in the same statement
    where the server allows it."""
    rows = _rows(
        connection, "SELECT plugin FROM mysql.user WHERE User = %s AND Host = %s", (user, host), "look up"
    )
    hashed = bool(rows) and server.sends_hash(_text(rows[0][0]))
    secret = native_password_hash(password) if hashed else password
    clause, params = require or ("", [])
    _execute(
        connection,
        server.set_password(hashed, clause),
        (user, host, secret, *params),
        f"set the password of {user!r}",
    )


class AccountOptions(NamedTuple):
    """What an account carries besides its password and grants (``mysql.user`` columns):
    its TLS requirement and its :attr:`Server.resource_limits` (0: none)."""

    ssl_type: str
    cipher: str
    issuer: str
    subject: str
    limits: tuple[object, ...]

    def clause(self, server: Server) -> tuple[str, list[object]]:
        """``REQUIRE ... WITH MAX_...`` for CREATE/ALTER USER, with its parameters."""
        require, params = require_clause(self.ssl_type, self.cipher, self.issuer, self.subject)
        limits, limit_params = server.limits_clause(self.limits)
        return f"{require} {limits}", [*params, *limit_params]

    def differences(self, held: AccountOptions, server: Server) -> str:
        """What ``held`` has otherwise than these options (``MAX_USER_CONNECTIONS 3, not
        0``; the TLS requirement clipped); empty when they match. Never a password."""

        def tls(options: AccountOptions) -> str:
            parts = (options.ssl_type or "NONE", options.cipher, options.issuer, options.subject)
            return _clipped(" ".join(part for part in parts if part))

        found = [f"TLS requirement {tls(self)}, not {tls(held)}"] if self[:4] != held[:4] else []
        found += [
            f"{option} {want}, not {have}"
            for (_, option), want, have in zip(server.resource_limits, self.limits, held.limits, strict=True)
            if want != have
        ]
        return ", ".join(found)


def _account_options(connection: MySQLConnection, server: Server, user: str, host: str) -> AccountOptions:
    """An account's TLS requirement and resource limits."""
    columns = ", ".join(column for column, _ in server.resource_limits)
    rows = _rows(
        connection,
        f"SELECT ssl_type, ssl_cipher, x509_issuer, x509_subject, {columns} FROM mysql.user "  # noqa: S608 - fixed names
        "WHERE User = %s AND Host = %s",
        (user, host),
        f"read the TLS requirement and limits of {user!r}",
    )
    if not rows:
        raise DatabaseOperationError(f"user {user!r}@{host!r} has no account on this server")
    ssl_type, cipher, issuer, subject, *limits = rows[0]
    return AccountOptions(
        _text(ssl_type),
        _text(cipher),
        _text(issuer),
        _text(subject),
        tuple(0 if limit is None else limit for limit in limits),
    )


def _default_quoting(connection: MySQLConnection) -> None:
    """Give the session the default quoting of names (:data:`_DEFAULT_QUOTING`), once:
    only sessions that read grants or send batches pay the round trip (an account with
    ``MAX_QUERIES_PER_HOUR`` pays nothing for a login)."""
    if not getattr(connection, _QUOTING_SET, False):
        _execute(connection, _DEFAULT_QUOTING, (), "set the session's sql_mode")
        # Checked, not assumed: a mode this list does not know (a later server's) may set
        # ANSI_QUOTES again, and the grant parser would then fail on a line it cannot read.
        ((mode,),) = _rows(connection, "SELECT @@SESSION.sql_mode", (), "read the session's sql_mode")
        if "ANSI_QUOTES" in _text(mode).upper().split(","):
            raise DatabaseOperationError(
                "the session's sql_mode still has ANSI_QUOTES after removing "
                f"{', '.join(_ANSI_QUOTES_MODES)}: set the server's sql_mode without the "
                "mode that sets ANSI_QUOTES"
            )
        setattr(connection, _QUOTING_SET, True)


def _run_batches(connection: MySQLConnection, server: Server, steps: list[Step]) -> None:
    """Send ``steps`` in :meth:`Server.batches`' round trips; a failure names the statement
    that failed (the server ran the ones before it and none after)."""
    batches = server.batches(steps)  # checked before anything is sent
    if batches:
        _default_quoting(connection)
    for batch in batches:
        if batch.multi:
            with _multi_statements(connection):
                _run_batch(connection, batch)
        else:
            if len(batch.steps) > 1:
                # The variable outlives a batch in the session: cleared, a batch that fails
                # before its first statement never names the statement of an earlier one.
                _execute(connection, f"SET {BATCH_STEP} = NULL", (), "start a batch")
            _run_batch(connection, batch)


def _run_batch(connection: MySQLConnection, batch: Batch) -> None:
    import pymysql

    done = 0
    # What the server answers: a result per statement of a multi-statement batch, one for
    # anything else (a MariaDB block included).
    expected = len(batch.steps) if batch.multi else 1
    try:
        with connection.cursor() as cursor:
            # Always interpolated (an empty tuple too): the grant text doubles its literal %.
            cursor.execute(batch.statement, batch.params)
            done = 1
            # A multi-statement batch answers each statement in turn; an error surfaces
            # when its answer is read.
            while cursor.nextset():
                done += 1
    except pymysql.err.Error as error:
        failed = done if batch.multi else _failed_step(connection, batch, error)
        if failed is None or failed >= len(batch.steps):
            what = f"run {len(batch.steps)} statements"
        else:
            what = batch.steps[failed].what
        raise _ERRORS.shape(what, error) from error
    if done != expected:
        # More statements than were built (or fewer): the text did not split as it was
        # built to. Refused loudly rather than taken for success.
        raise DatabaseOperationError(
            f"a batch of {len(batch.steps)} statements was answered with {done} results, "
            f"not {expected}: its text did not split as built"
        )


def _failed_step(connection: MySQLConnection, batch: Batch, error: Exception) -> int | None:
    """The statement a failed MariaDB batch had reached, from :data:`BATCH_STEP`."""
    if len(batch.steps) == 1:
        return 0
    if _reason(error)[0] == _PARSE_ERROR:
        return None  # refused before it ran
    try:
        rows = _rows(connection, f"SELECT {BATCH_STEP}", (), "read which statement failed")
    except DatabaseOperationError:
        return None
    step = rows[0][0] if rows else None
    return int(step) if isinstance(step, int) and 0 <= step < len(batch.steps) else None


@contextlib.contextmanager
def _multi_statements(connection: MySQLConnection) -> Iterator[None]:
    """Let this session run several statements per query for the block only
    (``COM_SET_OPTION``, as the C API's ``mysql_set_server_option`` sends it; PyMySQL
    has the command but no public call for it: the pin in requirements.txt and
    tests/unit/test_mysql_dialect.py hold the private calls' shape).

    Switched off again on a connection still open; when that fails the connection is
    closed (never reused with multi-statements on), and a batch's own error is the one
    raised."""
    _set_server_option(connection, _MULTI_STATEMENTS_ON)
    try:
        yield
    except BaseException:
        if connection.open:
            try:
                _set_server_option(connection, _MULTI_STATEMENTS_OFF)
            except DatabaseOperationError:
                _close_quietly(connection)
        raise
    try:
        _set_server_option(connection, _MULTI_STATEMENTS_OFF)
    except DatabaseOperationError:
        _close_quietly(connection)
        raise


def _close_quietly(connection: MySQLConnection) -> None:
    """Close, ignoring a connection the server (or a failed read) already closed."""
    import pymysql

    with contextlib.suppress(pymysql.err.Error, OSError):
        connection.close()


_MULTI_STATEMENTS_ON, _MULTI_STATEMENTS_OFF = 0, 1


def _set_server_option(connection: MySQLConnection, option: int) -> None:
    from pymysql.constants import COMMAND

    with _ERRORS.operation("switch multi-statements for a batch"):
        # Neither is in types-PyMySQL; the answer is an EOF packet, or the error it raises.
        getattr(connection, "_execute_command")(COMMAND.COM_SET_OPTION, option.to_bytes(2, "little"))  # noqa: B009
        getattr(connection, "_read_packet")()  # noqa: B009


def _authentication(connection: MySQLConnection, user: str) -> dict[str, tuple[str, str]]:
    """``user``'s accounts: host part -> (plugin, authentication string)."""
    return {
        _text(host): (_text(plugin), _text(stored))
        for host, plugin, stored in _rows(
            connection,
            "SELECT Host, plugin, authentication_string FROM mysql.user WHERE User = %s",
            (user,),
            f"read the accounts of {user!r}",
        )
    }


def _unproved_accounts(
    original: str,
    clone: str,
    proved: Sequence[str],
    original_hosts: Sequence[str],
    clone_hosts: Sequence[str],
) -> list[str]:
    """The pair's accounts at host parts the current credentials did not prove, as
    ``'user'@'host'``: the original's never get a password from the rotation; the clone's
    are left while the clone is AWSCURRENT and dropped at its next turn."""
    return [
        f"{user!r}@{host!r}"
        for user, hosts in ((original, original_hosts), (clone, clone_hosts))
        for host in sorted(set(hosts) - set(proved))
    ]


def _hosts(connection: MySQLConnection, user: str) -> list[str]:
    """The host parts of ``user``'s accounts."""
    return [
        str(host)
        for (host,) in _rows(
            connection, "SELECT Host FROM mysql.user WHERE User = %s", (user,), "list accounts"
        )
    ]


def _server(connection: MySQLConnection) -> Server:
    # types-PyMySQL leaves get_server_info untyped; it returns the handshake's version string.
    version = str(connection.get_server_info())  # type: ignore[no-untyped-call]
    try:
        return Server.parse(version)
    except ValueError as error:
        raise DatabaseOperationError(f"could not tell the server's family: {error}") from error


def _grants(connection: MySQLConnection, user: str, host: str) -> set[Grant]:
    _default_quoting(connection)
    lines = [
        str(row[0])
        for row in _rows(connection, "SHOW GRANTS FOR %s@%s", (user, host), f"read the grants of {user!r}")
    ]
    try:
        return parse_grants(lines, user, host)
    except ValueError as error:
        raise DatabaseOperationError(str(error)) from error


def _privileges(connection: MySQLConnection, user: str, host: str) -> set[Grant]:
    """The account's grants without ``GRANT USAGE ON *.*``, which every account holds and
    so proves nothing."""
    return {grant for grant in _grants(connection, user, host) if not grant.is_usage_only}


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return value.decode()
    return "" if value is None else str(value)


def _rows(
    connection: MySQLConnection, statement: str, params: Sequence[object], what: str
) -> list[tuple[Any, ...]]:
    with _ERRORS.operation(what), connection.cursor() as cursor:
        cursor.execute(statement, params or None)
        return list(cursor.fetchall())


def _execute(connection: MySQLConnection, statement: str, params: Sequence[object], what: str) -> None:
    _rows(connection, statement, params, what)


def _reason(error: Exception) -> tuple[object | None, str | None]:
    """The server's error number and message; never the statement, which may hold a password."""
    args: tuple[Any, ...] = getattr(error, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    return code, str(args[1]) if len(args) > 1 else None


_ERRORS = DriverErrors(_reason, denied=_NOT_ALLOWED)


# What "ALL PRIVILEGES" on a database or table stands for, for the preflight's comparison.
_ALL_PRIVILEGES = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "REFERENCES",
    "INDEX",
    "ALTER",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
    "EXECUTE",
    "CREATE VIEW",
    "SHOW VIEW",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EVENT",
    "TRIGGER",
)


def _privilege_names(what: str) -> set[str]:
    """The privilege types of a grant's text (``SELECT, INSERT (col) ON `db`.*``); a role
    grant (no ``ON``) and ``USAGE`` name none."""
    names = {name.upper() for name, _ in privileges_of(what)} - {"USAGE", ""}
    if names & {"ALL", "ALL PRIVILEGES"}:
        return (names - {"ALL", "ALL PRIVILEGES"}) | set(_ALL_PRIVILEGES)
    return names
