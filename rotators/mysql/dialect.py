"""What differs between MySQL and MariaDB versions, as pure functions of the server's
version string: which statements to send, and how to read ``SHOW GRANTS``.

Kept free of I/O so that the statements for every server family are tested exactly,
including MySQL 8, which the test machine cannot run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

from common.errors import DatabaseOperationError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

Flavour = Literal["mysql", "mariadb"]

#: The connection character set, and its Python codec. A server checks a login against
#: the bytes a password was hashed from; ``PASSWORD(?)`` hashes the connection's bytes,
#: and the mariadb and mysql clients send a password as UTF-8 bytes: so the function
#: connects with this character set and sends its password bytes in this encoding.
CONNECTION_CHARSET = "utf8mb4"
CONNECTION_ENCODING = "utf-8"


class Step(NamedTuple):
    """One statement of a batch: its text, bound parameters, and what it does (for the
    error that names it: never a password, which no batched statement carries)."""

    statement: str
    params: tuple[object, ...]
    what: str


class Batch(NamedTuple):
    """Statements sent in one round trip: ``statement`` with ``params``; ``steps`` are the
    statements it holds, in order. With ``multi`` it is several statements separated by
    ``;``, which the server runs only while the session allows multi-statements."""

    statement: str
    params: tuple[object, ...]
    steps: tuple[Step, ...]
    multi: bool


#: The session variable in which a MariaDB batch records the statement it has reached,
#: so that a failure names the statement that failed.
BATCH_STEP = "@secrets_rotation_step"
#: Statements per batch: 500 grant lines fit in one round trip.
STEPS_PER_BATCH = 1000
#: Bytes of statement text per batch (parameters counted at their quoted worst): a batch
#: stays under ``max_allowed_packet`` however long its grant lines are, even where an
#: operator set it to 1 MiB (MySQL 5.5's and older MariaDB's default; 4 MiB and more
#: since).
BYTES_PER_BATCH = 1 << 19


@dataclass(frozen=True)
class Server:
    """The server family and version, from the handshake's version string."""

    flavour: Flavour
    version: tuple[int, int, int]
    #: Aurora MySQL's own major version (2, 3), from "8.0.mysql_aurora.3.05.2".
    aurora: int | None = None

    @classmethod
    def parse(cls, version_string: str) -> Server:
        text = version_string
        # MariaDB before 11 prefixes its handshake version with "5.5.5-" for old clients.
        if text.startswith("5.5.5-") and "mariadb" in text.lower():
            text = text[len("5.5.5-") :]
        flavour: Flavour = "mariadb" if "mariadb" in text.lower() else "mysql"
        numbers = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
        if numbers is None:
            raise ValueError(f"unrecognised server version {version_string!r}")
        major, minor, patch = (int(part) if part else 0 for part in numbers.groups())
        aurora = re.search(r"mysql_aurora\.(\d+)", text)
        return cls(flavour, (major, minor, patch), int(aurora.group(1)) if aurora else None)

    @property
    def has_alter_user_password(self) -> bool:
        """``ALTER USER ... IDENTIFIED BY``: MySQL 5.7.6+, MariaDB 10.2+."""
        if self.flavour == "mariadb":
            return self.version >= (10, 2, 0)
        return self.version >= (5, 7, 6)

    @property
    def username_limit(self) -> int:
        if self.flavour == "mariadb":
            return 80
        return 32 if self.version >= (5, 7, 8) else 16

    def sends_hash(self, plugin: str) -> bool:
        """Whether a password for an account of ``plugin`` goes over hashed.

        MariaDB writes ``SET PASSWORD = PASSWORD('...')`` to its general log as sent;
        for ``mysql_native_password`` accounts it accepts the hash instead. MySQL 5.7+
        rewrites passwords out of its logs, and its default plugin has no such hash.
        """
        return self.flavour == "mariadb" and plugin == "mysql_native_password"

    @property
    def replaces_current_password(self) -> bool:
        """``ALTER USER CURRENT_USER() ... REPLACE <current>``: MySQL 8.0.13+ and Aurora
        MySQL 3. Where ``password_require_current`` is on, a user changing its own
        password must name its current (primary) one; where it is off, a ``REPLACE``
        given is checked all the same: so it is always sent, and works either way."""
        if self.flavour == "mariadb":
            return False
        return self.version >= (8, 0, 13) or (self.aurora or 0) >= 3

    def change_own_password(self, hashed: bool = False) -> str:
        """The statement a user runs to change its own password (bound parameters: the
        password, or with ``hashed`` its :func:`native_password_hash`; then, where the
        server :attr:`replaces_current_password`, the current primary password)."""
        if hashed:
            return "SET PASSWORD = %s"
        if self.replaces_current_password:
            return "ALTER USER CURRENT_USER() IDENTIFIED BY %s REPLACE %s"
        if self.flavour == "mysql" and self.has_alter_user_password:
            return "ALTER USER CURRENT_USER() IDENTIFIED BY %s"
        # MariaDB: ALTER USER needs the CREATE USER privilege even for oneself.
        return "SET PASSWORD = PASSWORD(%s)"

    @property
    def has_dual_passwords(self) -> bool:
        """``RETAIN CURRENT PASSWORD``: MySQL 8.0.14+ and Aurora MySQL 3 (8.0.23-based);
        MariaDB has no dual passwords."""
        if self.flavour == "mariadb":
            return False
        return self.version >= (8, 0, 14) or (self.aurora or 0) >= 3

    def add_own_password(self) -> str:
        """The statement a user runs to make a new password its primary one and keep the
        current primary as its secondary (parameters: the new password, the current one).

        ``REPLACE`` makes the server check the current password against the *primary*
        only: when an earlier attempt already made the new password primary, the server
        answers ``ER_INCORRECT_CURRENT_PASSWORD`` and the caller, logged in with the
        secondary, sets the primary with :meth:`change_own_password` replacing the new
        password itself (so ``password_require_current`` is met), which keeps the
        secondary as it is. Never an old secondary dropped before the new password works.
        """
        return "ALTER USER CURRENT_USER() IDENTIFIED BY %s REPLACE %s RETAIN CURRENT PASSWORD"

    def set_password(self, hashed: bool = False, require: str = "") -> str:
        """The master user's statement for another account (parameters: user, host,
        password, then ``require``'s own). ``require`` (a ``REQUIRE ...`` clause) goes in
        the same statement, so that the password never opens the account without it;
        a server without ``ALTER USER`` takes none (:attr:`requires_apart`)."""
        clause = f" {require}" if require else ""
        if hashed:
            return f"ALTER USER %s@%s IDENTIFIED BY PASSWORD %s{clause}"
        if self.has_alter_user_password:
            return f"ALTER USER %s@%s IDENTIFIED BY %s{clause}"
        if require:
            raise ValueError("this server takes no REQUIRE with a password")
        return "SET PASSWORD FOR %s@%s = PASSWORD(%s)"

    def create_user(self, hashed: bool = False, require: str = "") -> str:
        """CREATE USER for an account (parameters: user, host, password, then
        ``require``'s own), with its TLS requirement where the server takes it there."""
        clause = f" {require}" if require else ""
        if hashed:
            return f"CREATE USER %s@%s IDENTIFIED BY PASSWORD %s{clause}"
        return f"CREATE USER %s@%s IDENTIFIED BY %s{clause}"

    @property
    def requires_apart(self) -> bool:
        """Whether a TLS requirement needs a statement of its own (``GRANT USAGE ... REQUIRE``):
        servers older than ``CREATE/ALTER USER ... REQUIRE`` (MySQL 5.7.6, MariaDB 10.2)."""
        return not self.has_alter_user_password

    def require_statement(self, require: str) -> str:
        """The statement that sets only an account's TLS requirement (parameters: user,
        host, then ``require``'s own)."""
        if self.requires_apart:
            return f"GRANT USAGE ON *.* TO %s@%s {require}"
        return f"ALTER USER %s@%s {require}"

    @property
    def has_anonymous_blocks(self) -> bool:
        """``BEGIN NOT ATOMIC ... END`` as a statement of its own: MariaDB 10.1.1+."""
        return self.flavour == "mariadb" and self.version >= (10, 1, 1)

    def batches(self, steps: Sequence[Step]) -> list[Batch]:
        """``steps`` in as few round trips as the server allows, in order: at most
        :data:`STEPS_PER_BATCH` statements and about :data:`BYTES_PER_BATCH` bytes each.

        MariaDB: one anonymous compound statement (``BEGIN NOT ATOMIC ... END``), a single
        statement that needs no multi-statement flag; before each statement it records
        its position in :data:`BATCH_STEP`. MySQL has no anonymous blocks: the statements
        are joined by ``;`` and sent while the session allows multi-statements (the
        caller switches them on for the batch only, on the master user's session).
        Either way the server stops at the first failing statement and keeps what the
        ones before it did: every statement is a GRANT, REVOKE or account change that a
        later rotation recomputes from the catalog, so a batch that fails part-way leaves
        nothing the next one cannot fix.

        A statement's text holds names read from the server's catalog (``SHOW GRANTS``
        lines: database, table, column and role names any user with CREATE may choose),
        so it is checked before it is joined: a ``;`` or a comment opener outside quotes
        would let a name end the statement and start another run by the master user.
        Such a step is refused (:class:`~common.errors.DatabaseOperationError`, naming
        the step clipped), never sent."""
        for step in steps:
            unquoted = unquoted_text(step.statement)
            if any(token in unquoted for token in _STATEMENT_BREAKS):
                raise DatabaseOperationError(
                    f"refused to batch {_clipped(step.what)}: its text holds ';' or a comment "
                    "outside quotes (a name read from the catalog that would end the statement)"
                )
        found = []
        for chunk in _chunks(steps):
            params = tuple(param for step in chunk for param in step.params)
            if self.has_anonymous_blocks:
                body = " ".join(
                    f"SET {BATCH_STEP} = {index}; {step.statement};" for index, step in enumerate(chunk)
                )
                found.append(Batch(f"BEGIN NOT ATOMIC {body} END", params, chunk, multi=False))
            elif len(chunk) == 1:
                found.append(Batch(chunk[0].statement, params, chunk, multi=False))
            else:
                found.append(Batch("; ".join(step.statement for step in chunk), params, chunk, multi=True))
        return found

    def default_roles_query(self) -> str | None:
        """Rows of (role, role host) that are the account's default roles (user, host)."""
        if self.flavour == "mariadb" and self.version >= (10, 1, 1):
            return (
                "SELECT default_role, '' FROM mysql.user WHERE User = %s AND Host = %s AND default_role <> ''"
            )
        if self.flavour == "mysql" and self.version >= (8, 0, 0):
            return (
                "SELECT DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST FROM mysql.default_roles "
                "WHERE USER = %s AND HOST = %s"
            )
        return None

    def set_default_roles(self, roles: list[tuple[str, str]]) -> tuple[str, list[str]]:
        """``SET DEFAULT ROLE`` for an account: the statement (account as the last two
        parameters) and the role parameters before them."""
        if self.flavour == "mariadb":
            # MariaDB has one default role, named without a host.
            if not roles:
                return "SET DEFAULT ROLE NONE FOR %s@%s", []
            return "SET DEFAULT ROLE %s FOR %s@%s", [roles[0][0]]
        if not roles:
            return "SET DEFAULT ROLE NONE TO %s@%s", []
        placeholders = ", ".join("%s@%s" for _ in roles)
        return f"SET DEFAULT ROLE {placeholders} TO %s@%s", [part for role in roles for part in role]

    @property
    def resource_limits(self) -> tuple[tuple[str, str], ...]:
        """An account's resource limits: (``mysql.user`` column, the ``WITH`` option that
        sets it). MariaDB 10.1+ adds ``MAX_STATEMENT_TIME`` (seconds, a decimal)."""
        limits = (
            ("max_questions", "MAX_QUERIES_PER_HOUR"),
            ("max_updates", "MAX_UPDATES_PER_HOUR"),
            ("max_connections", "MAX_CONNECTIONS_PER_HOUR"),
            ("max_user_connections", "MAX_USER_CONNECTIONS"),
        )
        if self.flavour == "mariadb" and self.version >= (10, 1, 1):
            return (*limits, ("max_statement_time", "MAX_STATEMENT_TIME"))
        return limits

    def limits_clause(self, limits: Sequence[object]) -> tuple[str, list[object]]:
        """``WITH MAX_...`` for an account's :attr:`resource_limits` (numbers as
        ``mysql.user`` holds them, in that order; 0 is none), bound."""
        options = " ".join(f"{option} %s" for _, option in self.resource_limits)
        return f"WITH {options}", list(limits)

    @property
    def replica_status(self) -> str:
        """The statement that lists the server's replication sources (one row per source,
        none on a server that replicates from nothing); it needs MariaDB's SLAVE MONITOR
        (10.5.9+; REPLICATION CLIENT before) or MySQL's REPLICATION CLIENT. MariaDB lists
        every named connection with ``ALL``; MySQL's statement lists every channel."""
        if self.flavour == "mariadb":
            return "SHOW ALL SLAVES STATUS"
        return "SHOW REPLICA STATUS" if self.version >= (8, 0, 22) else "SHOW SLAVE STATUS"


def native_password_hash(password: str) -> str:
    """``mysql_native_password``'s stored form: ``*`` and SHA1(SHA1(password)) in hex, of
    the password's bytes in the connection's encoding (what ``PASSWORD(?)`` hashes)."""
    import hashlib

    inner = hashlib.sha1(password.encode(CONNECTION_ENCODING)).digest()  # noqa: S324 - the plugin's own scheme
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


REQUIRE_CLAUSES = {"": "NONE", "ANY": "SSL", "X509": "X509"}


def require_clause(ssl_type: str, cipher: str, issuer: str, subject: str) -> tuple[str, list[str]]:
    """``REQUIRE ...`` for an account's TLS requirement (``mysql.user`` columns), with its
    parameters; names and ciphers are bound, never spliced."""
    if ssl_type.upper() in REQUIRE_CLAUSES:
        return f"REQUIRE {REQUIRE_CLAUSES[ssl_type.upper()]}", []
    parts, params = [], []
    for keyword, value in (("CIPHER", cipher), ("ISSUER", issuer), ("SUBJECT", subject)):
        if value:
            parts.append(f"{keyword} %s")
            params.append(value)
    return "REQUIRE " + (" AND ".join(parts) if parts else "SSL"), params


def account_forms(user: str, host: str) -> tuple[str, ...]:
    """How ``SHOW GRANTS`` writes an account: back-quoted (MySQL 8, MariaDB) or quoted
    (MySQL 5.7)."""

    def backquoted(name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def quoted(name: str) -> str:
        return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return (f"{backquoted(user)}@{backquoted(host)}", f"{quoted(user)}@{quoted(host)}")


#: The grant's own options after the account in a ``SHOW GRANTS`` line, found outside
#: quotes among the account's options (``IDENTIFIED BY PASSWORD '*...'``, ``REQUIRE ...``,
#: ``MAX_...`` limits) that MariaDB prints on the same line and that are not copied from it.
_GRANT_OPTIONS = (("GRANT OPTION", "WITH GRANT OPTION"), ("ADMIN OPTION", "WITH ADMIN OPTION"))


@dataclass(frozen=True, order=True)
class Grant:
    """One ``SHOW GRANTS`` line with the grantee taken out: ``what`` is the text between
    ``GRANT`` and ``TO <account>`` with its column lists in one form (sorted, back-quoted:
    the server lists a table's columns in no fixed order), ``option`` the grant's own
    option (``WITH GRANT OPTION``, ``WITH ADMIN OPTION`` or empty). Never an account
    option, so never a password hash."""

    what: str
    option: str

    @property
    def is_usage_only(self) -> bool:
        """``USAGE ON *.*``, which every account holds (with the grant option it is a grant)."""
        return self.what.upper().startswith("USAGE ON *.*") and not self.option

    def grant(self) -> str:
        """The GRANT statement for an account given as the last two parameters."""
        option = f" {_literal_percent(self.option)}" if self.option else ""
        return f"GRANT {_literal_percent(self.what)} TO %s@%s{option}"

    def revokes(self) -> list[str]:
        """The REVOKE statements that undo this grant (account as the last two parameters)."""
        what = _literal_percent(self.what)
        statements = [f"REVOKE {what} FROM %s@%s"]
        on = find_on(what)
        if "GRANT OPTION" in self.option.upper() and on is not None:
            statements.append(f"REVOKE GRANT OPTION ON {what[on + len(' ON ') :]} FROM %s@%s")
        return statements


#: What may end a statement or hide the rest of it, outside quotes.
_STATEMENT_BREAKS = (";", "--", "#", "/*")
_QUOTES = "`'\""


def _quoted_spans(text: str) -> Iterator[tuple[int, int, int]]:
    """(start, end, parenthesis depth) of each run of ``text`` outside quotes."""
    depth, start, index = 0, 0, 0
    while index < len(text):
        char = text[index]
        if char in _QUOTES:
            yield start, index, depth
            index = start = _quote_end(text, index)
            continue
        if char in "()":
            yield start, index, depth
            depth += 1 if char == "(" else -1
            start = index + 1
        index += 1
    yield start, len(text), depth


def unquoted_text(text: str) -> str:
    """``text`` with every quoted or back-quoted part left out (a space in its place)."""
    return " ".join(text[start:end] for start, end, _ in _quoted_spans(text))


def find_on(what: str) -> int | None:
    """Where the `` ON `` before a grant's object starts in a grant's text (``SELECT
    (`col`) ON `db`.`t```), outside quotes and parentheses; None for a role grant."""
    for start, end, depth in _quoted_spans(what):
        position = what.upper().find(" ON ", start, end) if depth == 0 else -1
        if position >= 0:
            return position
    return None


def _quote_end(text: str, index: int) -> int:
    """The index just past the quoted part that opens at ``index``, read as the server's
    tokenizer reads it: a back-quoted name ends at a single back quote (a doubled one is
    part of the name); a quoted string also at a doubled quote, and a backslash escapes
    the next character in it (MySQL's default ``sql_mode``)."""
    quote, index = text[index], index + 1
    while index < len(text):
        if quote != "`" and text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            if text[index + 1 : index + 2] == quote:
                index += 2
                continue
            return index + 1
        index += 1
    return index


def _clipped(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _chunks(steps: Sequence[Step]) -> Iterator[tuple[Step, ...]]:
    """``steps`` in runs of at most :data:`STEPS_PER_BATCH` steps and about
    :data:`BYTES_PER_BATCH` bytes (a step longer than that goes alone)."""
    chunk: list[Step] = []
    size = 0
    for step in steps:
        # A parameter is sent quoted, every character escaped at worst.
        length = (
            len(step.statement.encode(CONNECTION_ENCODING))
            + 64
            + sum(2 * len(str(param).encode(CONNECTION_ENCODING)) + 2 for param in step.params)
        )
        if chunk and (len(chunk) >= STEPS_PER_BATCH or size + length > BYTES_PER_BATCH):
            yield tuple(chunk)
            chunk, size = [], 0
        chunk.append(step)
        size += length
    if chunk:
        yield tuple(chunk)


def _literal_percent(text: str) -> str:
    # Grant text is sent with bound parameters, where a literal % (a host or database
    # pattern) must be doubled.
    return text.replace("%", "%%")


def parse_grants(lines: list[str], user: str, host: str) -> set[Grant]:
    """The grants of ``user``@``host`` from its ``SHOW GRANTS`` lines; a line that does not
    name the account as its grantee is refused rather than guessed at."""
    grants = set()
    forms = account_forms(user, host)
    for line in lines:
        if line.upper().startswith("SET DEFAULT ROLE"):
            continue  # MariaDB lists the default role here; it is copied on its own
        for form in forms:
            marker = f" TO {form}"
            position = line.rfind(marker)
            if line.upper().startswith("GRANT ") and position > 0:
                what = normalised_what(line[len("GRANT ") : position])
                # Quoted parts (a password hash, a REQUIRE SUBJECT) never count.
                after = f" {' '.join(unquoted_text(line[position + len(marker) :]).upper().split())} "
                option = " ".join(full for words, full in _GRANT_OPTIONS if f" {words} " in after)
                grants.add(Grant(what, option))
                break
        else:
            raise ValueError(f"unexpected SHOW GRANTS line for {user!r}@{host!r}")
    return grants


def _split_outside(text: str) -> list[str]:
    """``text`` split at its commas outside quotes and parentheses, each part stripped."""
    parts, start = [], 0
    for begin, end, depth in _quoted_spans(text):
        if depth == 0:
            for index in range(begin, end):
                if text[index] == ",":
                    parts.append(text[start:index].strip())
                    start = index + 1
    parts.append(text[start:].strip())
    return parts


def _column_name(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1].replace("``", "`")
    if not text or any(char in text for char in _QUOTES + "()"):
        raise ValueError("unrecognised column list in a SHOW GRANTS line")
    return text


def _backquoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def privileges_of(what: str) -> list[tuple[str, list[str]]]:
    """A grant's privileges and the columns each covers (``SELECT (`b`, `a`), INSERT ON
    ...`` -> ``[("SELECT", ["a", "b"]), ("INSERT", [])]``: names unquoted and sorted); none
    for a role grant. A column list not in the server's forms is refused (``ValueError``)."""
    on = find_on(what)
    if on is None:
        return []
    found: list[tuple[str, list[str]]] = []
    for part in _split_outside(what[:on]):
        opening = next((end for _, end, _ in _quoted_spans(part) if end < len(part)), None)
        if opening is None or part[opening] != "(" or not part.endswith(")"):
            found.append((part, []))
            continue
        columns = [_column_name(column) for column in _split_outside(part[opening + 1 : -1])]
        found.append((part[:opening].strip(), sorted(columns)))
    return found


def normalised_what(what: str) -> str:
    """A grant's text in one form whatever order or quoting the server printed its column
    lists in (MariaDB lists a clone's columns in another order than the original's):
    columns back-quoted and sorted. Still a valid grant's text, sent as it is."""
    on = find_on(what)
    if on is None:
        return what
    privileges = [
        f"{name} ({', '.join(_backquoted(column) for column in columns)})" if columns else name
        for name, columns in privileges_of(what)
    ]
    return ", ".join(privileges) + what[on:]


def grant_difference(wanted: set[Grant], held: set[Grant], limit: int = 3) -> str:
    """What ``held`` lacks of ``wanted`` and has beyond it, as grant lines (clipped, at most
    ``limit`` of each), for the error that names the difference; empty when they match.
    Grant lines carry no password: :class:`Grant` holds none."""
    parts = []
    for label, grants in (("missing", wanted - held), ("extra", held - wanted)):
        if grants:
            shown = [_clipped(f"{grant.what} {grant.option}".strip()) for grant in sorted(grants)[:limit]]
            more = f" and {len(grants) - limit} more" if len(grants) > limit else ""
            parts.append(f"{label}: {'; '.join(shown)}{more}")
    return ", ".join(parts)
