"""What differs between MySQL and MariaDB versions, as pure functions of the server's
version string: which statements to send, and how to read ``SHOW GRANTS``.

Kept free of I/O so that the statements for every server family are tested exactly,
including MySQL 8, which the test machine cannot run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence

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
#: Statements per batch: 500 grant lines fit in one round trip, and no batch comes near
#: ``max_allowed_packet`` (4 MiB on the oldest supported servers).
STEPS_PER_BATCH = 1000


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

    def change_own_password(self, hashed: bool = False) -> str:
        """The statement a user runs to change its own password (one bound parameter: the
        password, or with ``hashed`` its :func:`native_password_hash`)."""
        if hashed:
            return "SET PASSWORD = %s"
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
        only: when an earlier attempt already made another password primary, the server
        answers ``ER_INCORRECT_CURRENT_PASSWORD`` and the caller, logged in with the
        secondary, sets the primary with :meth:`change_own_password`, which keeps the
        secondary as it is. Never an old secondary dropped before the new password works.
        """
        return "ALTER USER CURRENT_USER() IDENTIFIED BY %s REPLACE %s RETAIN CURRENT PASSWORD"

    def set_password(self, hashed: bool = False) -> str:
        """The master user's statement for another account (parameters: user, host, password)."""
        if hashed:
            return "ALTER USER %s@%s IDENTIFIED BY PASSWORD %s"
        if self.has_alter_user_password:
            return "ALTER USER %s@%s IDENTIFIED BY %s"
        return "SET PASSWORD FOR %s@%s = PASSWORD(%s)"

    def create_user(self, hashed: bool = False) -> str:
        """CREATE USER for an account (parameters: user, host, password)."""
        if hashed:
            return "CREATE USER %s@%s IDENTIFIED BY PASSWORD %s"
        return "CREATE USER %s@%s IDENTIFIED BY %s"

    @property
    def has_anonymous_blocks(self) -> bool:
        """``BEGIN NOT ATOMIC ... END`` as a statement of its own: MariaDB 10.1.1+."""
        return self.flavour == "mariadb" and self.version >= (10, 1, 1)

    def batches(self, steps: Sequence[Step]) -> list[Batch]:
        """``steps`` in as few round trips as the server allows, in order.

        MariaDB: one anonymous compound statement (``BEGIN NOT ATOMIC ... END``), a single
        statement that needs no multi-statement flag; before each statement it records
        its position in :data:`BATCH_STEP`. MySQL has no anonymous blocks: the statements
        are joined by ``;`` and sent while the session allows multi-statements (the
        caller switches them on for the batch only, on the master user's session, whose
        statements are all the function's own). Either way the server stops at the first
        failing statement and keeps what the ones before it did: every statement is a
        GRANT, REVOKE or account change that a later rotation recomputes from the
        catalog, so a batch that fails part-way leaves nothing the next one cannot fix."""
        found = []
        for start in range(0, len(steps), STEPS_PER_BATCH):
            chunk = tuple(steps[start : start + STEPS_PER_BATCH])
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


_ACCOUNT_OPTIONS = re.compile(r" (IDENTIFIED (BY|VIA|WITH) .*|REQUIRE .*|WITH MAX_.*)$")


@dataclass(frozen=True, order=True)
class Grant:
    """One ``SHOW GRANTS`` line with the grantee taken out: ``what`` is the text between
    ``GRANT`` and ``TO <account>``, ``option`` is what follows the account."""

    what: str
    option: str

    @property
    def is_usage_only(self) -> bool:
        return self.what.upper().startswith("USAGE ON *.*")

    def grant(self) -> str:
        """The GRANT statement for an account given as the last two parameters."""
        option = f" {_literal_percent(self.option)}" if self.option else ""
        return f"GRANT {_literal_percent(self.what)} TO %s@%s{option}"

    def revokes(self) -> list[str]:
        """The REVOKE statements that undo this grant (account as the last two parameters)."""
        what = _literal_percent(self.what)
        statements = [f"REVOKE {what} FROM %s@%s"]
        if "GRANT OPTION" in self.option.upper() and " ON " in what.upper():
            target = what[what.upper().index(" ON ") + len(" ON ") :]
            statements.append(f"REVOKE GRANT OPTION ON {target} FROM %s@%s")
        return statements


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
                what = line[len("GRANT ") : position]
                option = _ACCOUNT_OPTIONS.sub("", line[position + len(marker) :]).strip()
                grants.add(Grant(what, option))
                break
        else:
            raise ValueError(f"unexpected SHOW GRANTS line for {user!r}@{host!r}")
    return grants
