"""What the PostgreSQL engine reads from the catalog to keep the clone exactly the
original, and how a stored role setting becomes a statement again (pure, tested alone).

Every query here binds its values as parameters and names no identifier (see the
engine's docstring on ``%``); statements that name roles are composed by the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg2.sql import Composable

#: Role attributes that grant something; the clone holds exactly the original's.
#: Only a superuser may change the last three (PostgreSQL 15 refuses a CREATEROLE master).
ATTRIBUTES = ("createdb", "createrole", "replication", "bypassrls", "superuser")
SUPERUSER_ONLY = frozenset({"replication", "bypassrls", "superuser"})

#: Per role: each attribute of ATTRIBUTES (in order), from pg_roles.
ATTRIBUTES_QUERY = (
    "SELECT rolname, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolsuper "
    "FROM pg_catalog.pg_roles WHERE rolname IN (%(original)s, %(clone)s)"
)

#: The clone's role memberships other than plain membership in the original
#: (another role, or the original WITH ADMIN OPTION): (role name, is the original).
EXTRA_MEMBERSHIPS_QUERY = (
    "SELECT r.rolname, r.rolname = %(original)s FROM pg_catalog.pg_auth_members m "
    "JOIN pg_catalog.pg_roles r ON r.oid = m.roleid "
    "JOIN pg_catalog.pg_roles c ON c.oid = m.member "
    "WHERE c.rolname = %(clone)s AND (r.rolname <> %(original)s OR m.admin_option)"
)

#: What the clone owns, or holds privileges on, in this database and among shared objects
#: (what REASSIGN OWNED and DROP OWNED act on): one description per object.
DEPENDENCIES_QUERY = (
    "SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) "
    "FROM pg_catalog.pg_shdepend d JOIN pg_catalog.pg_roles c ON c.oid = d.refobjid "
    "WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND c.rolname = %(clone)s "
    "AND d.deptype IN ('o', 'a', 'r') "
    "AND d.dbid IN (0, (SELECT oid FROM pg_catalog.pg_database "
    "WHERE datname = pg_catalog.current_database())) "
    "ORDER BY 1"
)

#: Role settings, global (database NULL) and per database: (role, database, "name=value").
SETTINGS_QUERY = (
    "SELECT r.rolname, db.datname, pg_catalog.unnest(s.setconfig) FROM pg_catalog.pg_db_role_setting s "
    "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole "
    "LEFT JOIN pg_catalog.pg_database db ON db.oid = s.setdatabase "
    "WHERE r.rolname IN (%(original)s, %(clone)s)"
)

#: Whether the session's role may act as each role (REASSIGN/DROP OWNED need both).
HAS_PRIVILEGES_QUERY = (
    "SELECT pg_catalog.pg_has_role(current_user, %(clone)s, 'USAGE'), "
    "pg_catalog.pg_has_role(current_user, %(original)s, 'USAGE'), "
    "(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)"
)

# Parameters PostgreSQL stores as a list of identifiers, quoted where needed (GUC_LIST_QUOTE).
_LIST_QUOTED = frozenset(
    {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"}
)

Setting = tuple[str | None, str]  # (database or None for every database, parameter name)


def settings_by_role(rows: list[tuple[str, str | None, str]]) -> dict[str, dict[Setting, str]]:
    """SETTINGS_QUERY's rows as role -> {(database, name): stored value}."""
    found: dict[str, dict[Setting, str]] = {}
    for role, database, entry in rows:
        name, _, stored = entry.partition("=")
        found.setdefault(role, {})[(database, name)] = stored
    return found


def split_list(stored: str) -> list[str]:
    """The elements of a stored list parameter (``a, "B c", public``): the inverse of the
    server's quoting, so each element can be sent back as a literal."""
    elements: list[str] = []
    position, length = 0, len(stored)
    while position < length:
        while position < length and stored[position] == " ":
            position += 1
        if position < length and stored[position] == '"':
            position += 1
            element = []
            while position < length:
                if stored[position] == '"':
                    if stored[position + 1 : position + 2] == '"':
                        element.append('"')
                        position += 2
                        continue
                    position += 1
                    break
                element.append(stored[position])
                position += 1
            elements.append("".join(element))
            position = stored.find(",", position)
        else:
            comma = stored.find(",", position)
            elements.append(stored[position : comma if comma >= 0 else length].strip())
            position = comma
        if position < 0:
            break
        position += 1
    return elements


def setting_value(name: str, stored: str) -> Composable:
    """The value part of ``ALTER ROLE ... SET name = <value>`` for a stored setting, every
    element a literal (never spliced: a role may set its own parameters)."""
    from psycopg2 import sql

    if name in _LIST_QUOTED:
        return sql.SQL(", ").join(sql.Literal(element) for element in split_list(stored))
    return sql.Literal(stored)
