"""Redshift's catalog: what a pair of users holds, read in a fixed number of set-based
statements, and the statements that give the clone exactly what the original holds.

No function here talks to a server: readers take a ``run(statement, params)`` callable,
so the statements and their parsing are tested on their own.

What is read (each a single statement for both users of the pair, whatever the number of
objects): group membership (``pg_group``), Redshift roles granted to the user
(``svv_user_grants``), privileges on the cluster's local databases, on schemas, on tables,
views (late-binding and materialised included: they are ``pg_class`` rows like views)
and on functions and stored procedures (``pg_proc_info``), default privileges for every
object type (``pg_default_acl``: ``r`` tables, ``f`` functions, ``p`` procedures), and
column-level grants (``svv_column_privileges``), and the users' attributes (``pg_user``:
``CREATEDB``, ``CREATEUSER``), set on the clone with ``ALTER USER`` so that drift
(``ALTER USER clone CREATEDB``) is undone at the next rotation, and the users'
``CONNECTION LIMIT`` (``pg_user_info.useconnlimit``, superusers only), likewise.

Grant options are privileges of their own (``SELECT WITH GRANT OPTION``, ``*`` in an ACL)
for tables, schemas, routines and default privileges, granted ``WITH GRANT OPTION`` and
taken back with ``REVOKE GRANT OPTION FOR``. Redshift's REVOKE has no ``CASCADE`` (its
syntax ends in ``[ RESTRICT ]``): when the clone has passed a privilege on with a grant
option the original no longer holds, taking the privilege or option back fails
("dependent privileges exist": the stand-in's behaviour, which is PostgreSQL's, unverified
on a cluster) and the rotation stops with an error that says so, having taken back nothing
from the users the clone granted to (that is for their owner to decide, not the
rotation); once those grants are revoked, the next rotation completes. Table privileges
include ``TRUNCATE`` and Redshift's ``DROP``.
Limits: Redshift documents ``has_table_privilege`` for SELECT, INSERT, UPDATE, DELETE,
DROP and REFERENCES only; ``TRUNCATE`` and the ``WITH GRANT OPTION`` forms are checked
on the PostgreSQL stand-in, not on a cluster, and ``DROP`` on the stand-in's emulation
(PostgreSQL has no such privilege: see :mod:`devtools.redshift`). Redshift's table
``ALTER`` privilege is not read or granted: no documented catalog function or view shows
it for a user (``has_table_privilege`` and ``svv_relation_privileges`` do not list it),
so a clone may lack it.

Default privileges are compared both ways: those the original receives from an owner
(the clone receives the same), and those the original grants as owner of its future
objects (``ALTER DEFAULT PRIVILEGES FOR USER original ... TO reporting``: the clone gets
the counterpart ``FOR USER clone``, so tables it creates reach the same grantees).

Privileges on objects are the user's effective privileges (``has_*_privilege``, by object
id: a name would be resolved in the session's rights and fail with "permission denied for
schema" where the session lacks ``USAGE``), so that a clone gets what the original holds
as owner, directly, or through ``PUBLIC``; memberships are aligned first, so what comes
through a group or role is not granted again directly. Objects the clone owns are left out
on both sides: an owner's rights are not the rotation's to revoke. Internal schemas
(``pg_catalog``, ``information_schema``, ``pg_internal``, ``pg_automv``, temporary and
toast schemas) are skipped. Databases created from a datashare are left alone: their
privileges are granted per datashare and Redshift refuses a statement that mixes them
with a local database's (every database gets statements of its own here anyway).

Who may read what: superusers (the master user) see every row. Any user may evaluate
``has_*_privilege`` for another user and read ``pg_group``, ``pg_default_acl`` and the
object catalogs, but ``svv_user_grants`` and ``svv_column_privileges`` show other users
only their own rows: those two are :data:`MASTER_ONLY` and left out of the pending
user's proof (setSecret compared them as the master user).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from common.errors import DatabaseOperationError

# Every statement here is composed of this module's constants; user and object names
# travel as parameters (reads) or quoted identifiers (grants).
Run = Callable[[str, tuple[Any, ...]], list[list[Any]]]

#: Schemas whose objects are the system's, never the user's (Redshift and PostgreSQL).
INTERNAL_SCHEMAS = ("pg_catalog", "information_schema", "pg_internal", "pg_automv")
_USER_SCHEMA = (
    "n.nspname NOT IN ({}) AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast%'"
).format(", ".join(f"'{schema}'" for schema in INTERNAL_SCHEMAS))
#: The two users of the pair, as rows of pg_user (parameters: original, clone).
_PAIR = "pg_user u WHERE u.usename IN (%s, %s)"
#: Objects the clone owns are left out (parameter: clone).
_NOT_CLONES = "NOT IN (SELECT usesysid FROM pg_user WHERE usename = %s)"

#: Grant options are read as privileges of their own (``SELECT WITH GRANT OPTION``), so
#: that a clone holding ``SELECT`` without the option differs from an original holding both.
GRANT_OPTION = " WITH GRANT OPTION"


def _with_grant_options(privileges: tuple[str, ...]) -> tuple[str, ...]:
    return privileges + tuple(privilege + GRANT_OPTION for privilege in privileges)


#: Redshift's ALTER table privilege is not read: no documented catalog function shows it.
TABLE_PRIVILEGES = _with_grant_options(
    ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "DROP")
)
#: Redshift's schema ALTER and DROP privileges (``has_schema_privilege``) are not read
#: either: the stand-in (PostgreSQL) has no such privileges to test them on; the README
#: lists them as not covered.
SCHEMA_PRIVILEGES = _with_grant_options(("USAGE", "CREATE"))
ROUTINE_PRIVILEGES = _with_grant_options(("EXECUTE",))
DATABASE_PRIVILEGES = ("CREATE", "TEMP")
#: aclitem letters in default privileges.
#: A letter followed by ``*`` carries the grant option.
ACL_LETTERS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "x": "REFERENCES", "X": "EXECUTE"}
#: pg_default_acl.defaclobjtype -> the object class ALTER DEFAULT PRIVILEGES names.
DEFAULT_OBJECT_TYPES = {"r": "TABLES", "f": "FUNCTIONS", "p": "PROCEDURES"}
#: Names per GRANT statement: long lists are split, so that no statement grows unbounded.
NAMES_PER_STATEMENT = 200


class Target(NamedTuple):
    """What a privilege is on. ``kind`` is one of group, role, database, schema, table,
    function, procedure, default, column; the other fields are raw (unquoted) names:
    ``schema`` and ``name`` of the object (``name`` is the owner for a default privilege,
    the table for a column), ``detail`` the argument types of a function, the object type
    letter of a default privilege, or the column."""

    kind: str
    name: str
    schema: str = ""
    detail: str = ""


Privileges = dict[Target, frozenset[str]]


class Read(NamedTuple):
    """One catalog statement and how its rows become (user, target, privileges)."""

    statement: str
    params: Callable[[str, str], tuple[str, ...]]
    rows: Callable[[list[Any]], Iterable[tuple[str, Target, frozenset[str]]]]


def _held(names: Sequence[str], flags: Sequence[Any]) -> frozenset[str]:
    return frozenset(name for name, flag in zip(names, flags, strict=True) if flag)


def _pair(original: str, clone: str) -> tuple[str, ...]:
    return (original, clone)


def _pair_but_clones(original: str, clone: str) -> tuple[str, ...]:
    return (original, clone, clone)


def _held_by_pair(
    names: Sequence[str], *, source: str, where: str, function: str, oid: str, privileges: Sequence[str]
) -> str:
    """The rows of ``source`` on which either user of the pair holds one of
    ``privileges``: the user, ``names``, then one flag per privilege."""
    flags = ", ".join(f"{function}(u.usename, {oid}, '{privilege}')" for privilege in privileges)
    width = 1 + len(names) + len(privileges)
    columns = ", ".join(f"c{index}" for index in range(width))
    held = " OR ".join(f"t.c{index}" for index in range(1 + len(names), width))
    return (
        f"SELECT * FROM (SELECT u.usename, {', '.join(names)}, {flags} "  # noqa: S608 - constants only
        f"FROM {source}, {_PAIR} AND {where}) AS t ({columns}) WHERE {held}"
    )


GROUPS = Read(
    f"SELECT u.usename, g.groname FROM pg_group g, {_PAIR} AND u.usesysid = ANY(g.grolist)",  # noqa: S608 - constants only
    _pair,
    lambda row: [(str(row[0]), Target("group", str(row[1])), frozenset({"MEMBER"}))],
)
ROLES = Read(
    "SELECT user_name, role_name, admin_option FROM svv_user_grants WHERE user_name IN (%s, %s)",
    _pair,
    lambda row: [
        (str(row[0]), Target("role", str(row[1])), frozenset({"MEMBER", "ADMIN"} if row[2] else {"MEMBER"}))
    ],
)
DATABASES = Read(
    _held_by_pair(
        ["d.datname"],
        source="pg_database d",
        where="d.datname IN (SELECT database_name FROM svv_redshift_databases WHERE database_type = 'local')",
        function="has_database_privilege",
        oid="d.oid",
        privileges=DATABASE_PRIVILEGES,
    ),
    _pair,
    lambda row: [(str(row[0]), Target("database", str(row[1])), _held(DATABASE_PRIVILEGES, row[2:]))],
)
SCHEMAS = Read(
    _held_by_pair(
        ["n.nspname"],
        source="pg_namespace n",
        where=f"{_USER_SCHEMA} AND n.nspowner {_NOT_CLONES}",
        function="has_schema_privilege",
        oid="n.oid",
        privileges=SCHEMA_PRIVILEGES,
    ),
    _pair_but_clones,
    lambda row: [(str(row[0]), Target("schema", str(row[1])), _held(SCHEMA_PRIVILEGES, row[2:]))],
)
# Tables, views, late-binding and materialised views.
RELATIONS = Read(
    _held_by_pair(
        ["n.nspname", "c.relname"],
        source="pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
        where=f"c.relkind IN ('r', 'v', 'm') AND {_USER_SCHEMA} AND c.relowner {_NOT_CLONES}",
        function="has_table_privilege",
        oid="c.oid",
        privileges=TABLE_PRIVILEGES,
    ),
    _pair_but_clones,
    lambda row: [(str(row[0]), Target("table", str(row[2]), str(row[1])), _held(TABLE_PRIVILEGES, row[3:]))],
)
# Functions and stored procedures; pg_proc_info tells them apart (prokind).
ROUTINES = Read(
    _held_by_pair(
        ["n.nspname", "p.proname", "oidvectortypes(p.proargtypes)", "p.prokind"],
        source="pg_proc_info p JOIN pg_namespace n ON n.oid = p.pronamespace",
        where=f"p.prokind IN ('f', 'p') AND {_USER_SCHEMA} AND p.proowner {_NOT_CLONES}",
        function="has_function_privilege",
        oid="p.prooid",
        privileges=ROUTINE_PRIVILEGES,
    ),
    _pair_but_clones,
    lambda row: [
        (
            str(row[0]),
            Target("procedure" if row[4] == "p" else "function", str(row[2]), str(row[1]), str(row[3])),
            _held(ROUTINE_PRIVILEGES, row[5:]),
        )
    ],
)
#: User attributes (``ALTER USER ... CREATEDB``, ``CREATEUSER``: the superuser flag);
#: pg_user is readable by every user, so the pending user's proof compares them too.
USER_ATTRIBUTES = ("CREATEDB", "CREATEUSER")
ATTRIBUTES = Read(
    f"SELECT u.usename, u.usecreatedb, u.usesuper FROM {_PAIR}",  # noqa: S608 - constants only
    _pair,
    lambda row: [
        (str(row[0]), Target("attribute", attribute), frozenset({attribute}))
        for attribute, flag in zip(USER_ATTRIBUTES, row[1:], strict=True)
        if flag
    ],
)
#: The user's CONNECTION LIMIT: ``UNLIMITED`` or a number (text), one value per user.
CONNECTION_LIMIT = Read(
    "SELECT usename, useconnlimit FROM pg_user_info WHERE usename IN (%s, %s)",
    _pair,
    lambda row: [(str(row[0]), Target("connection limit", ""), frozenset({str(row[1]).strip().upper()}))],
)
COLUMNS = Read(
    "SELECT identity_name, namespace_name, relation_name, column_name, privilege_type "  # noqa: S608 - constants only
    "FROM svv_column_privileges WHERE identity_type = 'user' AND identity_name IN (%s, %s) "
    f"AND namespace_name NOT IN ({', '.join(repr(schema) for schema in INTERNAL_SCHEMAS)})",
    _pair,
    lambda row: [
        (str(row[0]), Target("column", str(row[2]), str(row[1]), str(row[3])), frozenset({str(row[4])}))
    ],
)


def _default_rows(
    users: tuple[str, str],
) -> Callable[[list[Any]], Iterable[tuple[str, Target, frozenset[str]]]]:
    def rows(row: list[Any]) -> Iterable[tuple[str, Target, frozenset[str]]]:
        owner, schema, objtype, acl = str(row[0]), str(row[1] or ""), str(row[2]), str(row[3] or "")
        if objtype not in DEFAULT_OBJECT_TYPES:
            return []
        # The clone's own item in its own default ACL is its right as owner, which the
        # original's counterpart (its "owned default" targets) does not carry.
        found = [
            (user, Target("default", owner, schema, objtype), granted)
            for user in users
            if not user == owner == users[1] and (granted := default_grants(acl, user))
        ]
        if owner in users:
            found.extend(
                (owner, Target("owned default", grantee, schema, objtype), granted)
                for grantee, granted in acl_grants(acl)
                if grantee not in (owner, *users) and granted
            )
        return found

    return rows


DEFAULTS_STATEMENT = (
    "SELECT pg_get_userbyid(d.defacluser), n.nspname, d.defaclobjtype, d.defaclacl::text "
    "FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace"
)

#: Rows of these are visible to a user only for itself (pg_user_info: to superusers
#: only): read by the master user alone.
MASTER_ONLY = (ROLES, COLUMNS, CONNECTION_LIMIT)
MEMBERSHIPS = (GROUPS, ROLES)


def reads(original: str, clone: str, *, master: bool) -> list[Read]:
    """The statements that read what ``original`` and ``clone`` hold; ``master`` is
    whether the session sees every row (the master user) or only its own (a pending user)."""
    every = [ATTRIBUTES, CONNECTION_LIMIT, GROUPS, ROLES, DATABASES, SCHEMAS, RELATIONS, ROUTINES, COLUMNS]
    defaults = Read(DEFAULTS_STATEMENT, lambda _o, _c: (), _default_rows((original, clone)))
    return [read for read in [*every, defaults] if master or read not in MASTER_ONLY]


def privileges_of_pair(run: Run, original: str, clone: str, *, master: bool) -> tuple[Privileges, Privileges]:
    """What ``original`` and ``clone`` hold, in ``len(reads(...))`` statements."""
    found: dict[str, dict[Target, frozenset[str]]] = {original: {}, clone: {}}
    for read in reads(original, clone, master=master):
        for row in run(read.statement, read.params(original, clone)):
            for user, target, granted in read.rows(row):
                if granted and user in found:
                    found[user][target] = found[user].get(target, frozenset()) | granted
    return found[original], found[clone]


def differences(wanted: Mapping[Target, frozenset[str]], held: Mapping[Target, frozenset[str]]) -> list[str]:
    """Readable differences, for errors: ``+`` what ``held`` lacks, ``-`` what it has too much."""
    none = frozenset[str]()
    found = []
    for target in sorted(set(wanted) | set(held)):
        missing, extra = (
            wanted.get(target, none) - held.get(target, none),
            held.get(target, none) - wanted.get(target, none),
        )
        for sign, privileges in (("+", missing), ("-", extra)):
            if privileges:
                found.append(f"{sign}{','.join(sorted(privileges))} on {describe(target)}")
    return found


def describe(target: Target) -> str:
    """A target as a message names it (no statement is built from this)."""
    if target.kind in ("default", "owned default"):
        where = f" in schema {target.schema}" if target.schema else ""
        objects = DEFAULT_OBJECT_TYPES[target.detail].lower()
        if target.kind == "owned default":
            return f"default privileges on own {objects} for {target.name or 'PUBLIC'}{where}"
        return f"default privileges on {objects} of {target.name}{where}"
    if target.kind == "attribute":
        return f"user attribute {target.name}"
    if target.kind == "connection limit":
        return "CONNECTION LIMIT"
    if target.kind == "column":
        return f"column {target.schema}.{target.name}.{target.detail}"
    qualified = f"{target.schema}.{target.name}" if target.schema else target.name
    arguments = f"({target.detail})" if target.kind in ("function", "procedure") else ""
    return f"{target.kind} {qualified}{arguments}"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def object_sql(target: Target) -> str:
    """The object as GRANT names it (after ON TABLE / SCHEMA / FUNCTION / ...)."""
    qualified = f"{quote(target.schema)}.{quote(target.name)}" if target.schema else quote(target.name)
    if target.kind in ("function", "procedure"):
        return f"{qualified}({target.detail})"
    return qualified


def membership_statements(wanted: Privileges, held: Privileges, clone: str) -> list[str]:
    """Groups and roles: give ``clone`` exactly the memberships in ``wanted``."""
    grantee, none = quote(clone), frozenset[str]()
    statements: list[str] = []
    for target in sorted({t for t in (*wanted, *held) if t.kind in ("group", "role")}):
        want, have = wanted.get(target, none), held.get(target, none)
        name = quote(target.name)
        if target.kind == "group":
            if want and not have:
                statements.append(f"ALTER GROUP {name} ADD USER {grantee}")
            elif have and not want:
                statements.append(f"ALTER GROUP {name} DROP USER {grantee}")
        elif not want:
            statements.append(f"REVOKE ROLE {name} FROM {grantee}")
        elif "ADMIN" in want and "ADMIN" not in have:
            statements.append(f"GRANT ROLE {name} TO {grantee} WITH ADMIN OPTION")
        elif not have:
            statements.append(f"GRANT ROLE {name} TO {grantee}")
        elif "ADMIN" in have and "ADMIN" not in want:
            statements.append(f"REVOKE ADMIN OPTION FOR ROLE {name} FROM {grantee}")
    return statements


_ON = {"schema": "SCHEMA", "table": "TABLE", "function": "FUNCTION", "procedure": "PROCEDURE"}


def object_statements(wanted: Privileges, held: Privileges, clone: str) -> list[str]:
    """Databases, schemas, relations, routines, default privileges and columns: the
    GRANT and REVOKE statements that give ``clone`` exactly ``wanted``. Objects that need
    the same change share a statement (up to :data:`NAMES_PER_STATEMENT` names), so that
    the number of statements grows with the kinds of change, not with the objects;
    databases get one statement each (Redshift refuses a datashare database and a local
    one in one statement), default privileges one per owner, schema and object type."""
    grantee, none = quote(clone), frozenset[str]()
    batches: dict[tuple[str, str, frozenset[str]], list[str]] = defaultdict(list)
    columns: dict[tuple[str, Target, str], list[str]] = defaultdict(list)
    singles: list[str] = []
    for target in sorted({t for t in (*wanted, *held) if t.kind not in ("group", "role")}):
        add = wanted.get(target, none) - held.get(target, none)
        drop = held.get(target, none) - wanted.get(target, none)
        for verb, privileges in (("GRANT", add), ("REVOKE", drop)):
            if not privileges:
                continue
            if target.kind in _SINGLES:
                singles.extend(_single_statements(verb, privileges, target, grantee))
            elif target.kind == "column":
                table = target._replace(kind="table", detail="")
                for privilege in sorted(privileges):
                    columns[(verb, table, privilege)].append(quote(target.detail))
            else:
                for split_verb, split in _split_grant_options(verb, privileges):
                    batches[(split_verb, _ON[target.kind], split)].append(object_sql(target))
    statements = list(singles)
    for (verb, on, privileges), names in sorted(
        batches.items(), key=lambda item: (item[0][0], item[0][1], sorted(item[0][2]))
    ):
        for start in range(0, len(names), NAMES_PER_STATEMENT):
            chunk = ", ".join(names[start : start + NAMES_PER_STATEMENT])
            statements.append(_grant(verb, privileges, f"{on} {chunk}", grantee))
    for (verb, table, privilege), names in sorted(columns.items()):
        statements.append(
            _grant(
                verb, frozenset({f"{privilege} ({', '.join(names)})"}), f"TABLE {object_sql(table)}", grantee
            )
        )
    return statements


_SINGLES = ("attribute", "connection limit", "database", "default", "owned default")


def _single_statements(verb: str, privileges: frozenset[str], target: Target, grantee: str) -> list[str]:
    """The statements of a target that shares none with others: a user attribute, a
    database, a default privilege (one per owner, schema and object type)."""
    if target.kind == "attribute":
        return [f"ALTER USER {grantee} {'' if verb == 'GRANT' else 'NO'}{target.name}"]
    if target.kind == "connection limit":
        # The wanted value replaces the held one: one statement, on the GRANT side only.
        return [
            f"ALTER USER {grantee} CONNECTION LIMIT {connection_limit(p)}"
            for p in privileges
            if verb == "GRANT"
        ]
    if target.kind == "database":
        return [_grant(verb, privileges, f"DATABASE {quote(target.name)}", grantee)]
    # A default privilege the original grants to others as owner: the clone, as owner,
    # grants the same; otherwise one the original receives from an owner.
    owner, receiver = (
        (grantee, _grantee_sql(target.name))
        if target.kind == "owned default"
        else (
            quote(target.name),
            grantee,
        )
    )
    scope = f"FOR USER {owner}" + (f" IN SCHEMA {quote(target.schema)}" if target.schema else "")
    on = DEFAULT_OBJECT_TYPES[target.detail]
    return [
        f"ALTER DEFAULT PRIVILEGES {scope} {_grant(split_verb, split, on, receiver)}"
        for split_verb, split in _split_grant_options(verb, privileges)
    ]


def connection_limit(value: str) -> str:
    """A CONNECTION LIMIT as ALTER USER takes it: a number or UNLIMITED, never other text."""
    if value.isdigit():
        return str(int(value))
    if value == "UNLIMITED":
        return value
    raise DatabaseOperationError(f"unexpected connection limit {value!r} in pg_user_info")


def _grantee_sql(name: str) -> str:
    """A grantee as an aclitem names it: empty for PUBLIC, ``group x`` for a group."""
    if not name:
        return "PUBLIC"
    if name.startswith("group "):
        return "GROUP " + quote(name.removeprefix("group "))
    return quote(name)


def _split_grant_options(verb: str, privileges: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    """A change of plain privileges and grant options as statements can make it: verbs
    ``GRANT``, ``GRANT*`` (with grant option), ``REVOKE`` (the privilege and its option),
    ``REVOKE*`` (the option alone); the privileges named plainly."""
    options = frozenset(p.removesuffix(GRANT_OPTION) for p in privileges if p.endswith(GRANT_OPTION))
    plain = frozenset(p for p in privileges if not p.endswith(GRANT_OPTION))
    if verb == "GRANT":
        found = [("GRANT", plain - options), ("GRANT*", options)]
    else:
        found = [("REVOKE", plain), ("REVOKE*", options - plain)]
    return [(split_verb, split) for split_verb, split in found if split]


def _grant(verb: str, privileges: frozenset[str], on: str, grantee: str) -> str:
    listed = ", ".join(sorted(privileges))
    if verb == "GRANT":
        return f"GRANT {listed} ON {on} TO {grantee}"
    if verb == "GRANT*":
        return f"GRANT {listed} ON {on} TO {grantee}{GRANT_OPTION}"
    if verb == "REVOKE*":
        return f"REVOKE GRANT OPTION FOR {listed} ON {on} FROM {grantee}"
    return f"REVOKE {listed} ON {on} FROM {grantee}"


def default_grants(acl: str, user: str) -> frozenset[str]:
    """The privileges an ``aclitem[]`` text gives ``user`` (``{user=arwd/owner,...}``);
    Redshift writes a group's item as ``group name=r/owner``, which names no user."""
    granted: set[str] = set()
    for grantee, privileges in acl_grants(acl):
        if grantee == user:
            granted |= privileges
    return frozenset(granted)


def acl_grants(acl: str) -> list[tuple[str, frozenset[str]]]:
    """Each item of an ``aclitem[]`` text as (grantee, privileges): the grantee unquoted,
    empty for PUBLIC; a letter followed by ``*`` carries the grant option."""
    found = []
    for item in _acl_items(acl):
        grantee, _, rest = item.rpartition("=")
        letters, granted = rest.partition("/")[0], set()
        for index, letter in enumerate(letters):
            if letter in ACL_LETTERS:
                granted.add(ACL_LETTERS[letter])
                if letters[index + 1 : index + 2] == "*":
                    granted.add(ACL_LETTERS[letter] + GRANT_OPTION)
        found.append((_unquote(grantee), frozenset(granted)))
    return found


def _acl_items(acl: str) -> list[str]:
    """The elements of an array's text form: an element holding quotes, commas or spaces
    is quoted as a whole, with backslash escapes inside."""
    text = acl.strip()
    body = text[1:-1] if text.startswith("{") and text.endswith("}") else text
    items: list[str] = []
    current: list[str] = []
    quoted, index = False, 0
    while index < len(body):
        char = body[index]
        if quoted and char == "\\" and index + 1 < len(body):
            current.append(body[index + 1])
            index += 1
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if body:
        items.append("".join(current))
    return items


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if len(name) >= 2 and name[0] == name[-1] == '"' else name
