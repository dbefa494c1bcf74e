"""A Redshift stand-in for the tests: PostgreSQL 15 behind a small protocol bridge.

No Redshift can be had here, and ``redshift_connector`` cannot talk to plain PostgreSQL:
it sends startup parameters PostgreSQL rejects (``client_protocol_version``,
``driver_version``, ``os_version``, ``driver_discovery_version``...), parses the
``server_version`` it is told with ``packaging.version`` (which fails on
``15.x (Debian ...)``), and its SCRAM path fails with current ``scramp``. The bridge
closes exactly those gaps, plus the role statements PostgreSQL spells differently:

* it terminates TLS with the server's own certificate (so the driver verifies a real
  certificate chain and host name) and forwards the session to PostgreSQL;
* it drops startup parameters PostgreSQL does not know;
* it reports ``server_version`` as ``8.0.2``, Redshift's;
* it rewrites Redshift's ``GRANT ROLE r TO u`` / ``REVOKE ROLE r FROM u`` into
  PostgreSQL's ``GRANT r TO u`` / ``REVOKE r FROM u``, ``CONNECTION LIMIT UNLIMITED``
  into ``CONNECTION LIMIT -1``, and table GRANT/REVOKE statements naming Redshift's
  ``DROP`` privilege into the emulation below (nothing else is rewritten; the
  stand-in's own :meth:`RedshiftStandIn.execute` applies the same rewrites);
* it records every statement a client executes (``statements``: user and text), so
  that tests and benchmarks count what a rotation sends, server-side.

The PostgreSQL behind it authenticates with md5, as Redshift does, so the driver's own
md5 path is what runs.

Redshift's catalog where PostgreSQL's differs: every database the stand-in makes has a
schema ``redshift_catalog``, first in its search path, holding views under Redshift's
names that emulate Redshift's catalog from PostgreSQL's, with Redshift's visibility:

* ``pg_default_acl``: Redshift names the owner column ``defacluser`` (PostgreSQL:
  ``defaclrole``).
* ``pg_group``: PostgreSQL lists every role that cannot log in as a group; Redshift keeps
  roles (``CREATE ROLE``) apart from groups. Roles made with :meth:`create_role` carry
  the comment ``redshift role`` and are left out.
* ``pg_proc_info``: Redshift's view of functions and stored procedures with ``prooid``
  and ``prokind`` (``f`` function, ``p`` procedure); ``pg_proc`` has no ``prokind`` there.
* ``svv_user_grants`` (user_id, user_name, role_id, role_name, admin_option): roles
  granted to users. Superusers see every row; other users only roles granted to them.
* ``svv_role_grants`` (role_id, role_name, granted_role_id, granted_role_name,
  admin_option): roles granted to roles. Superusers see every row; other users only
  rows about roles they are members of.
* ``svv_column_privileges`` (namespace_name, relation_name, column_name,
  privilege_type, identity_id, identity_name, identity_type): column-level grants.
  Superusers see every row; other users only identities they are or belong to.
* ``svv_redshift_databases`` (database_name, database_owner, database_type): every
  database, ``shared`` for one :meth:`create_datashare_database` made (a database
  created from a datashare), ``local`` for the others. Visible to every user.

* ``pg_user_info`` (usename, usesysid, usecreatedb, usesuper, useconnlimit): the user's
  ``CONNECTION LIMIT`` as text, ``UNLIMITED`` or a number (PostgreSQL's
  ``rolconnlimit``, -1 for none). Redshift shows it to superusers only: others see no
  row (the password column is left out).
* Table ``DROP`` privileges, which PostgreSQL has no notion of: ``GRANT DROP ON TABLE``
  and its ``REVOKE`` (with ``WITH GRANT OPTION`` / ``GRANT OPTION FOR``) are recorded in
  ``redshift_catalog.relation_grants`` (by ``relation_privilege``, which runs the rest
  of the statement's privileges as PostgreSQL's own GRANT), and
  ``redshift_catalog.has_table_privilege`` answers ``DROP`` and ``DROP WITH GRANT
  OPTION`` from it (owners and superusers hold both, as on Redshift), every other
  privilege from PostgreSQL's function. Honest limits: the record is what the catalog
  answers, not what PostgreSQL enforces (a holder of the emulated DROP still cannot
  drop the table, an owner still can), only grants made through the rewrite are known,
  and who granted what is not kept (no dependent grants). Redshift's table ``ALTER``
  privilege is not emulated: Redshift documents no catalog function or view that shows
  it for a user (``has_table_privilege`` and ``svv_relation_privileges`` list SELECT,
  INSERT, UPDATE, DELETE, REFERENCES and DROP), so the rotation cannot read it either.

What cannot be emulated: default privileges on procedures (Redshift's ``defaclobjtype``
``p``: PostgreSQL folds procedures into functions) and late-binding views (PostgreSQL
has no ``WITH NO SCHEMA BINDING``; Redshift lists them in ``pg_class`` as views, which
the stand-in's ordinary views are). The statements for those are tested as sent.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import struct
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from devtools.ports import free_port
from devtools.postgres import PostgresServer

if TYPE_CHECKING:
    from collections.abc import Iterable

SSL_REQUEST = 80877103
KNOWN_STARTUP_PARAMETERS = {b"user", b"database", b"application_name", b"options", b"client_encoding"}
REDSHIFT_VERSION = b"8.0.2"
#: Redshift's role grants, and what PostgreSQL calls them.
ROLE_STATEMENT = re.compile(r"^(\s*(?:GRANT|REVOKE(?:\s+ADMIN\s+OPTION\s+FOR)?))\s+ROLE\s+", re.IGNORECASE)
ROLE_COMMENT = "redshift role"
DATASHARE_COMMENT = "created from a datashare"


# Is the session's user a superuser (who sees every row of Redshift's SVV views)?
_SUPERUSER = "(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)"
_IS_ROLE = f"pg_catalog.shobj_description({{}}, 'pg_authid') = '{ROLE_COMMENT}'"
#: Redshift's catalog views, from PostgreSQL's catalog (see the module's docstring).
CATALOG_VIEWS = {
    "pg_default_acl": "SELECT defaclrole AS defacluser, defaclnamespace, defaclobjtype, defaclacl "
    "FROM pg_catalog.pg_default_acl",
    # PostgreSQL's predefined roles (pg_*) are no groups on Redshift either.
    "pg_group": "SELECT groname, grosysid, grolist FROM pg_catalog.pg_group "  # noqa: S608 - constants
    f"WHERE NOT coalesce({_IS_ROLE.format('grosysid')}, false) AND groname NOT LIKE 'pg\\_%'",
    "pg_proc_info": "SELECT p.oid AS prooid, p.* FROM pg_catalog.pg_proc p",
    "svv_user_grants": "SELECT u.oid::int AS user_id, u.rolname::text AS user_name, r.oid::int AS role_id, "  # noqa: S608 - constants
    "r.rolname::text AS role_name, m.admin_option FROM pg_catalog.pg_auth_members m "
    "JOIN pg_catalog.pg_roles r ON r.oid = m.roleid JOIN pg_catalog.pg_roles u ON u.oid = m.member "
    f"WHERE u.rolcanlogin AND {_IS_ROLE.format('r.oid')} AND ({_SUPERUSER} OR u.rolname = current_user)",
    "svv_role_grants": "SELECT m.member::int AS role_id, u.rolname::text AS role_name, "  # noqa: S608 - constants
    "r.oid::int AS granted_role_id, r.rolname::text AS granted_role_name, m.admin_option "
    "FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid "
    f"JOIN pg_catalog.pg_roles u ON u.oid = m.member WHERE {_IS_ROLE.format('r.oid')} "
    f"AND {_IS_ROLE.format('u.oid')} AND ({_SUPERUSER} OR pg_has_role(current_user, m.member, 'MEMBER'))",
    "svv_column_privileges": "SELECT n.nspname::text AS namespace_name, c.relname::text AS relation_name, "  # noqa: S608 - constants
    "a.attname::text AS column_name, x.privilege_type::text AS privilege_type, "
    "x.grantee::int AS identity_id, CASE WHEN x.grantee = 0 THEN 'public' ELSE g.rolname END::text "
    "AS identity_name, CASE WHEN x.grantee = 0 THEN 'public' WHEN g.rolcanlogin THEN 'user' "
    f"WHEN {_IS_ROLE.format('g.oid')} THEN 'role' ELSE 'group' END::text AS identity_type "
    "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) x "
    "LEFT JOIN pg_catalog.pg_roles g ON g.oid = x.grantee "
    "WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped "
    f"AND ({_SUPERUSER} OR x.grantee = 0 OR pg_has_role(current_user, x.grantee, 'MEMBER'))",
    "pg_user_info": "SELECT rolname AS usename, oid::int AS usesysid, rolcreatedb AS usecreatedb, "  # noqa: S608 - constants
    "rolsuper AS usesuper, CASE WHEN rolconnlimit < 0 THEN 'UNLIMITED' ELSE rolconnlimit::text END "
    f"AS useconnlimit FROM pg_catalog.pg_roles WHERE rolcanlogin AND {_SUPERUSER}",
    "svv_redshift_databases": "SELECT d.datname::text AS database_name, "  # noqa: S608 - constants
    "pg_catalog.pg_get_userbyid(d.datdba)::text AS database_owner, "
    f"CASE WHEN pg_catalog.shobj_description(d.oid, 'pg_database') = '{DATASHARE_COMMENT}' "
    "THEN 'shared' ELSE 'local' END::text AS database_type "
    "FROM pg_catalog.pg_database d WHERE NOT d.datistemplate",
}


#: The emulation of Redshift's table DROP privilege (see the module's docstring), made
#: in every database before the views; relation_grants is readable by every user, as
#: has_table_privilege lets any user ask about any other, and written by superusers
#: only (the stand-in emulates the master user's grants of DROP, not other users').
DROP_EMULATION = (
    "CREATE TABLE redshift_catalog.relation_grants (relid oid, grantee oid, grantable boolean, "
    "PRIMARY KEY (relid, grantee))",
    """CREATE FUNCTION redshift_catalog.drop_privilege(u name, rel oid, privilege text)
    RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r, pg_catalog.pg_class c
                   WHERE r.rolname = u AND c.oid = rel
                   AND (r.rolsuper OR pg_catalog.pg_has_role(u, c.relowner, 'USAGE')))
        OR EXISTS (SELECT 1 FROM redshift_catalog.relation_grants g
                   WHERE g.relid = rel AND (g.grantable OR upper(privilege) = 'DROP')
                   AND (g.grantee = 0 OR pg_catalog.pg_has_role(u, g.grantee, 'USAGE')))
    $f$""",
    # No sub-select here, so PostgreSQL inlines it: every other privilege costs what
    # PostgreSQL's own function costs.
    """CREATE FUNCTION redshift_catalog.has_table_privilege(u name, rel oid, privilege text)
    RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT CASE WHEN upper(privilege) IN ('DROP', 'DROP WITH GRANT OPTION')
        THEN redshift_catalog.drop_privilege(u, rel, privilege)
        ELSE pg_catalog.has_table_privilege(u, rel, privilege) END
    $f$""",
    """CREATE FUNCTION redshift_catalog.has_table_privilege(u name, rel text, privilege text)
    RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT redshift_catalog.has_table_privilege(u, rel::regclass::oid, privilege)
    $f$""",
    """CREATE FUNCTION redshift_catalog.relation_privilege(
        verb text, relations regclass[], grantee_name text, grant_option boolean, rest text)
    RETURNS void LANGUAGE plpgsql AS $f$
    DECLARE
        who oid := CASE WHEN upper(grantee_name) = 'PUBLIC' THEN 0
                   ELSE (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = grantee_name) END;
    BEGIN
        IF who IS NULL THEN
            RAISE EXCEPTION 'role "%" does not exist', grantee_name USING ERRCODE = '42704';
        END IF;
        IF EXISTS (SELECT 1 FROM unnest(relations) AS r
                   WHERE NOT redshift_catalog.has_table_privilege(current_user, r::oid,
                                                                  'DROP WITH GRANT OPTION')) THEN
            RAISE EXCEPTION 'permission denied for relation' USING ERRCODE = '42501';
        END IF;
        IF rest IS NOT NULL THEN
            EXECUTE rest;
        END IF;
        IF verb = 'GRANT' THEN
            INSERT INTO redshift_catalog.relation_grants AS g (relid, grantee, grantable)
                SELECT r, who, grant_option FROM unnest(relations) AS r
                ON CONFLICT ON CONSTRAINT relation_grants_pkey
                DO UPDATE SET grantable = g.grantable OR excluded.grantable;
        ELSIF grant_option THEN
            UPDATE redshift_catalog.relation_grants SET grantable = false
                WHERE relid = ANY(relations) AND relation_grants.grantee = who;
        ELSE
            DELETE FROM redshift_catalog.relation_grants
                WHERE relid = ANY(relations) AND relation_grants.grantee = who;
        END IF;
    END
    $f$""",
)
#: A table GRANT or REVOKE (Redshift's form): verb, GRANT OPTION FOR, privileges, the
#: object list, TO/FROM, grantee, WITH GRANT OPTION. The object list is greedy and the
#: grantee one (quoted or plain) name: a quoted table name holding " TO " stays whole.
TABLE_GRANT = re.compile(
    r"^\s*(GRANT|REVOKE)(\s+GRANT\s+OPTION\s+FOR)?\s+(.+?)\s+ON\s+(TABLE\s+)?(.+)\s+(TO|FROM)\s+"
    r"((?:GROUP\s+|ROLE\s+)?(?:\"(?:[^\"]|\"\")*\"|[^\s\"]+))(\s+WITH\s+GRANT\s+OPTION)?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_OTHER_OBJECTS = re.compile(r"^(SCHEMA|DATABASE|FUNCTION|PROCEDURE|LANGUAGE|ALL\s)", re.IGNORECASE)


class Sent(NamedTuple):
    """One statement a client executed through the bridge."""

    user: str
    text: str


class RedshiftStandIn(PostgresServer):
    """PostgreSQL (md5) reached through the bridge: ``host``/``port`` are the bridge's."""

    engine_key = "redshift"
    admin_database = "dev"

    def __init__(self) -> None:
        super().__init__(hba_method="md5")
        self.postgres_port = self.port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        #: Every statement executed through the bridge, in order (see :class:`Sent`).
        self.statements: list[Sent] = []

    def start(self) -> RedshiftStandIn:
        # PostgreSQL listens on postgres_port; the bridge takes the public port.
        public = self.port
        self.port = self.postgres_port
        super().start()
        self.port = public
        self.create_database("dev")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.root / "tls" / "server.crt", self.root / "tls" / "server.key")
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, args=(context,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        public = self.port
        self.port = self.postgres_port
        super().stop()
        self.port = public

    def admin_connection(self, dbname: str = "dev") -> Any:
        """The superuser's session straight to PostgreSQL (not through the bridge)."""
        public = self.port
        self.port = self.postgres_port
        try:
            return super().admin_connection(dbname)
        finally:
            self.port = public

    def _accept(self, context: ssl.SSLContext) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._bridge, args=(client, context), daemon=True).start()

    def _bridge(self, client: socket.socket, context: ssl.SSLContext) -> None:
        upstream: socket.socket | None = None
        try:
            client.settimeout(30)
            stream: socket.socket = client
            length, code = struct.unpack("!ii", _exactly(client, 8))
            if code == SSL_REQUEST:
                client.sendall(b"S")
                stream = context.wrap_socket(client, server_side=True)
                length, code = struct.unpack("!ii", _exactly(stream, 8))
            parameters = _exactly(stream, length - 8)
            user = dict(_pairs(parameters)).get(b"user", b"").decode(errors="replace")
            kept = (
                b"".join(
                    key + b"\x00" + value + b"\x00"
                    for key, value in _pairs(parameters)
                    if key in KNOWN_STARTUP_PARAMETERS
                )
                + b"\x00"
            )
            upstream = socket.create_connection((self.host, self.postgres_port), timeout=30)
            upstream.sendall(struct.pack("!ii", 8 + len(kept), code) + kept)
            _relay(stream, upstream, _ClientMessages(user, self.statements))
        except (OSError, ssl.SSLError, struct.error, ConnectionError):
            pass
        finally:
            client.close()
            if upstream is not None:
                upstream.close()

    # -- what the tests make on the server ----------------------------------------

    def create_database(self, dbname: str) -> None:
        """A database whose search path puts Redshift's catalog names first (the views of
        the module's docstring): the rotator must send Redshift's statements."""
        from psycopg2 import sql

        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        self._add_redshift_catalog(dbname)

    def _add_redshift_catalog(self, dbname: str) -> None:
        from psycopg2 import sql

        for statement in (
            "CREATE SCHEMA redshift_catalog",
            *DROP_EMULATION,
            *(f"CREATE VIEW redshift_catalog.{name} AS {query}" for name, query in CATALOG_VIEWS.items()),
            "GRANT USAGE ON SCHEMA redshift_catalog TO PUBLIC",
            "GRANT SELECT ON ALL TABLES IN SCHEMA redshift_catalog TO PUBLIC",
        ):
            self.execute(statement, dbname=dbname)
        self.execute(
            sql.SQL(
                'ALTER DATABASE {} SET search_path = redshift_catalog, pg_catalog, "$user", public'
            ).format(sql.Identifier(dbname))
        )

    def execute(self, statement: Any, params: Any = None, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as the superuser, straight to PostgreSQL, with the bridge's
        rewrites of Redshift's statements (a composed statement goes as it is)."""
        return super().execute(
            _redshift_to_postgres(statement) if isinstance(statement, str) else statement, params, dbname
        )

    def create_role(self, role: str) -> None:
        """A Redshift role (``CREATE ROLE``): a PostgreSQL role marked so that the
        catalog views tell it from a group."""
        from psycopg2 import sql

        self.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        self.execute(sql.SQL("COMMENT ON ROLE {} IS %s").format(sql.Identifier(role)), (ROLE_COMMENT,))

    def create_datashare_database(self, dbname: str) -> None:
        """A database that ``svv_redshift_databases`` shows as created from a datashare."""
        from psycopg2 import sql

        self.create_database(dbname)
        self.execute(
            sql.SQL("COMMENT ON DATABASE {} IS %s").format(sql.Identifier(dbname)), (DATASHARE_COMMENT,)
        )

    def reject_host(self, user: str) -> None:
        """Make the server turn ``user`` away by host-based rules before any password is
        asked (``pg_hba.conf`` ``reject``: SQLSTATE 28000, as a Redshift cluster's
        host rules do)."""
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(f'host all "{user}" 127.0.0.1/32 reject\n' + hba.read_text())
        self.execute("SELECT pg_reload_conf()")

    def create_warehouse(
        self, dbname: str, user: str, *, schemas: int, tables: int, views: int, functions: int
    ) -> list[str]:
        """Objects spread over ``schemas`` schemas of ``dbname`` that ``user`` may use:
        ``tables`` tables (SELECT, every tenth INSERT too), ``views`` views (the first a
        materialised view), ``functions`` routines (the last a stored procedure) that only
        ``user`` may execute. Made in one round trip; returns the schemas' names."""
        names = [f"s{index:02}" for index in range(schemas)]
        grantee = '"' + user.replace('"', '""') + '"'
        statements = [f"CREATE SCHEMA {name}; GRANT USAGE ON SCHEMA {name} TO {grantee}" for name in names]
        for index in range(tables):
            table = f"{names[index % schemas]}.t{index:05}"
            statements.append(f"CREATE TABLE {table} (id int, note text)")
            statements.append(f"GRANT SELECT ON {table} TO {grantee}")
            if index % 10 == 0:
                statements.append(f"GRANT INSERT ON {table} TO {grantee}")
        for index in range(views):
            schema = names[index % schemas]
            kind = "MATERIALIZED VIEW" if index == 0 else "VIEW"
            statements.append(f"CREATE {kind} {schema}.v{index:04} AS SELECT {index} AS n")
            statements.append(f"GRANT SELECT ON {schema}.v{index:04} TO {grantee}")
        for index in range(functions):
            schema = names[index % schemas]
            if index == functions - 1:
                routine = f"PROCEDURE {schema}.p{index:03}(integer)"
                statements.append(f"CREATE {routine} LANGUAGE sql AS 'SELECT 1'")
            else:
                routine = f"FUNCTION {schema}.f{index:03}(integer)"
                statements.append(f"CREATE {routine} RETURNS integer LANGUAGE sql AS 'SELECT $1'")
            statements.append(f"REVOKE EXECUTE ON {routine} FROM PUBLIC")
            statements.append(f"GRANT EXECUTE ON {routine} TO {grantee}")
        self.execute("; ".join(statements), dbname=dbname)
        return names

    def sessions_of(self, user: str) -> int:
        """How many sessions ``user`` has open on the server right now."""
        return int(self.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (user,))[0][0])

    def statements_of(self, user: str) -> list[str]:
        """The statements ``user`` has executed through the bridge so far."""
        return [sent.text for sent in list(self.statements) if sent.user == user]

    def count_sent(self, statements: Iterable[str], since: int = 0) -> int:
        """How many of the statements executed through the bridge (from index ``since``)
        are one of ``statements``, given as the client wrote them (the driver sends
        ``%s`` as ``$1``, ``$2``...)."""
        wanted = set(statements)
        return sum(_as_written(sent.text) in wanted for sent in self.statements[since:])

    def create_user(self, user: str, password: str, dbname: str | None = None) -> None:
        """A user (Redshift's CREATE USER) that may use everything in ``dbname``."""
        from psycopg2 import sql

        self.execute(sql.SQL("CREATE USER {} PASSWORD %s").format(sql.Identifier(user)), (password,))
        if dbname is not None:
            self.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(user))
            )

    def create_master(self, user: str, password: str) -> None:
        """Redshift's admin user is a superuser."""
        from psycopg2 import sql

        self.execute(
            sql.SQL("CREATE USER {} SUPERUSER PASSWORD %s").format(sql.Identifier(user)), (password,)
        )

    def connect_as(self, user: str, password: str, dbname: str | None = None) -> Any:
        """A session through the bridge with redshift_connector, TLS verified against the
        stand-in's CA (the driver reads it through ``SSL_CERT_FILE``)."""
        import redshift_connector

        from rotators.redshift.engine import trusting

        with trusting(self.ca_file):
            return redshift_connector.connect(
                host=self.host,
                port=self.port,
                database=dbname or self.admin_database,
                user=user,
                password=password,
                ssl=True,
                sslmode="verify-full",
                timeout=5,
            )

    def is_refusal(self, error: Exception) -> bool:
        from rotators.redshift.engine import is_login_refusal

        return is_login_refusal(error)

    def whoami(self, user: str, password: str, dbname: str | None = None) -> tuple[str, str, str]:
        connection = self.connect_as(user, password, dbname)
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT session_user, current_user")
            login, acting = cursor.fetchone()
            socket_ = connection._usock  # the driver exposes its TLS socket nowhere else
            protocol = socket_.version() if isinstance(socket_, ssl.SSLSocket) else "none"
        finally:
            connection.close()
        return str(login), str(acting), str(protocol)


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _pairs(parameters: bytes) -> list[tuple[bytes, bytes]]:
    parts = parameters.rstrip(b"\x00").split(b"\x00")
    return list(zip(parts[0::2], parts[1::2], strict=False))


class _ClientMessages:
    """The client's side of a session after the startup: splits the byte stream into
    messages, records each statement executed (simple queries, and extended-protocol
    binds of parsed statements) and rewrites Redshift's role statements."""

    def __init__(self, user: str, record: list[Sent]) -> None:
        self.user = user
        self.record = record
        self.parsed: dict[bytes, str] = {}
        self.pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send upstream for ``chunk`` (complete messages only)."""
        self.pending += chunk
        out = b""
        while len(self.pending) >= 5:
            size = struct.unpack("!i", self.pending[1:5])[0]
            if len(self.pending) < 1 + size:
                break
            kind, body = self.pending[:1], self.pending[5 : 1 + size]
            self.pending = self.pending[1 + size :]
            out += self._message(kind, body)
        return out

    def _message(self, kind: bytes, body: bytes) -> bytes:
        if kind == b"Q":
            text = _redshift_to_postgres(body[:-1].decode())
            self.record.append(Sent(self.user, text))
            body = text.encode() + b"\x00"
        elif kind == b"P":
            name, _, rest = body.partition(b"\x00")
            query, _, tail = rest.partition(b"\x00")
            text = _redshift_to_postgres(query.decode())
            self.parsed[name] = text
            body = name + b"\x00" + text.encode() + b"\x00" + tail
        elif kind == b"B":
            statement = body.split(b"\x00", 2)[1]
            self.record.append(Sent(self.user, self.parsed.get(statement, "")))
        return kind + struct.pack("!i", len(body) + 4) + body


def _as_written(text: str) -> str:
    return re.sub(r"\$\d+", "%s", text)


def _redshift_to_postgres(text: str) -> str:
    text = ROLE_STATEMENT.sub(r"\1 ", text)
    text = re.sub(r"\bCONNECTION\s+LIMIT\s+UNLIMITED\b", "CONNECTION LIMIT -1", text, flags=re.IGNORECASE)
    return _table_drop_grant(text)


def _table_drop_grant(text: str) -> str:
    """A table GRANT or REVOKE naming DROP, as a call of the emulation (the module's
    docstring); any other statement as it is."""
    found = TABLE_GRANT.match(text)
    if found is None or (not found[4] and _OTHER_OBJECTS.match(found[5])):
        return text
    verb, option_for, privileges, _, objects, _, grantee, with_option = found.groups()
    names = [name.strip() for name in privileges.split(",")]
    if "DROP" not in (name.upper() for name in names):
        return text
    rest_names = [name for name in names if name.upper() != "DROP"]
    rest = None
    if rest_names:
        rest = (
            f"{verb}{option_for or ''} {', '.join(rest_names)} ON TABLE {objects} "
            f"{'TO' if verb.upper() == 'GRANT' else 'FROM'} {grantee}{with_option or ''}"
        )
    relations = ", ".join(_literal(name) for name in _split_names(objects))
    option = bool(with_option) if verb.upper() == "GRANT" else bool(option_for)
    unquoted = grantee[1:-1].replace('""', '"') if grantee.startswith('"') else grantee.lower()
    arguments = [_literal(verb.upper()), f"ARRAY[{relations}]::regclass[]", _literal(unquoted), str(option)]
    arguments.append(_literal(rest) if rest else "NULL")
    return f"SELECT redshift_catalog.relation_privilege({', '.join(arguments)})"


def _split_names(objects: str) -> list[str]:
    """A comma-separated list of (possibly quoted) names."""
    names, current, quoted = [], "", False
    for char in objects:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            names.append(current.strip())
            current = ""
        else:
            current += char
    return [*names, current.strip()]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _relay(client: socket.socket, upstream: socket.socket, messages: _ClientMessages) -> None:
    """Both directions in one thread (an SSL socket must not be read and written from two
    threads); server messages are rewritten until the session is ready, then passed as is."""
    starting, pending = True, b""
    while True:
        # Data already decrypted inside the SSL object does not wake select().
        ready: list[socket.socket] = (
            [client] if isinstance(client, ssl.SSLSocket) and client.pending() else []
        )
        if not ready:
            ready, _, _ = select.select([client, upstream], [], [], 30)
            if not ready:
                return
        for source in ready:
            chunk = source.recv(65536)
            if not chunk:
                return
            if source is client:
                upstream.sendall(messages.feed(chunk))
                continue
            if not starting:
                client.sendall(chunk)
                continue
            pending += chunk
            while len(pending) >= 5:
                size = struct.unpack("!i", pending[1:5])[0]
                if len(pending) < 1 + size:
                    break
                kind, body, pending = pending[:1], pending[5 : 1 + size], pending[1 + size :]
                if kind == b"S" and body.startswith(b"server_version\x00"):
                    body = b"server_version\x00" + REDSHIFT_VERSION + b"\x00"
                client.sendall(kind + struct.pack("!i", len(body) + 4) + body)
                if kind in (b"Z", b"E"):
                    starting = False
                    if pending:
                        client.sendall(pending)
                        pending = b""
                    break
