"""Preflight: createSecret's checks for one secret, run by the deployed function, writing nothing.

The event has a top-level key Secrets Manager never sends, so that it can never be
mistaken for a rotation step (an event with both ``Preflight`` and ``Step`` is refused)::

    {"Preflight": {"SecretId": "<ARN or name>", "VersionIds": ["<version id>", ...]}}

``VersionIds`` (optional, at most :data:`MAX_EXTRA_VERSIONS`) names versions without a
staging label to try as well: after an abandoned rotation the database may hold one of
them (``secrets-rotation repair`` passes them).

A refused login is the preflight's only side effect, and on a server that blocks an
account after refused logins in a row (MariaDB ``max_password_errors``, MySQL 8
``FAILED_LOGIN_ATTEMPTS``) it counts. So the preflight stops trying a user's versions once
the database refused ``MaxRefusedLogins`` of them in a row (optional in the event, default
:data:`DEFAULT_MAX_REFUSED`, at most :data:`MAX_REFUSED_LIMIT`), and never more than one
less than the server's limit where the first accepted session could read it (an accepted
login resets the server's count); ``AWSCURRENT``, which the application logs in with
anyway, is always tried. The versions left are reported ``not tried`` and a ``logins
stopped`` check says why.

Who may ask: anyone allowed to invoke the function, so the preflight answers only for
the function's own secrets. It is refused (:class:`~common.errors.PreflightRefusedError`)
unless the secret's ``RotationLambdaARN`` is the invoked function (the Lambda context's
``invoked_function_arn``, qualifier or alias dropped on both sides). An invocation with
no context ARN (a local run that passes no context) is refused too: the function cannot
tell which secrets are its own, and no switch turns the check off (a switch could be
left on in a deployment). Local runs pass a context, e.g. ``devtools.lambda_child.Context``.

What it checks, with the rotation core's own code (:class:`Preflight` is a
:class:`~common.rotation.Rotator` that never calls a writing step): the ``AWSCURRENT``
version's format, the master secret and its server (alternating users), a login over the
configured TLS with every labelled version (which ones the database accepts), and what
the strategy needs of the database (the engine's ``*_capabilities`` methods, read only).
It never stores a version, moves a label or runs a statement that changes anything.

The answer is :meth:`PreflightReport.to_dict`: JSON with names, labels, version ids,
outcomes and reasons, never a password or another secret value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from common.deadline import UNBOUNDED, Deadline
from common.engine import Capability, ConnectionT, Login
from common.errors import (
    AccountBlockedError,
    DatabaseConnectionError,
    DatabaseError,
    DatabaseLoginError,
    EventFormatError,
    PreflightRefusedError,
    RdsError,
    RotationError,
    SecretsManagerError,
    StagingError,
    StepTimeLimitError,
)
from common.observability import logger
from common.rds import DESCRIBE_PERMISSIONS
from common.rotation import (
    PREFLIGHT_KEY,
    Rotator,
    Strategy,
    account_key,
    original_username,
    partner_username,
)
from common.secretsmanager import AWSCURRENT, AWSPENDING, AWSPREVIOUS

if TYPE_CHECKING:
    from common.rds import Endpoint
    from common.secret import DatabaseSecret
    from common.secretsmanager import SecretMetadata

REPORT_FORMAT = "secrets-rotation-preflight/1"
MAX_EXTRA_VERSIONS = 10
#: Refused logins in a row per user after which the preflight stops trying that user's
#: versions, unless the event asks for more (``MaxRefusedLogins``, at most the limit).
DEFAULT_MAX_REFUSED = 2
MAX_REFUSED_LIMIT = 10
LABEL_ORDER = (AWSCURRENT, AWSPENDING, AWSPREVIOUS)

#: What a login with one version came to.
Outcome = Literal["accepted", "refused", "blocked", "unreachable", "no value", "unusable", "not tried"]
#: Whose credentials a version holds, relative to ``AWSCURRENT``'s user: the same user,
#: the other user of its alternating pair (``name``/``name_clone``), or another user (the
#: secret was moved to another user by PutSecretValue): a rotation never recovers with,
#: and repair never moves a label to, another user's credentials.
Relation = Literal["same user", "pair", "other user"]
#: The parts of an unqualified function ARN: ``arn:aws:lambda:<region>:<account>:function:<name>``.
FUNCTION_ARN_PARTS = 7


def invoked_function(context: object) -> str | None:
    """The invoked function's ARN without qualifier or alias, from a Lambda context."""
    arn = getattr(context, "invoked_function_arn", None)
    return unqualified(arn) if isinstance(arn, str) and arn else None


def unqualified(function_arn: str) -> str:
    """A function ARN without its version or alias (``...:function:name:alias``)."""
    return ":".join(function_arn.split(":")[:FUNCTION_ARN_PARTS])


@dataclass(frozen=True)
class PreflightRequest:
    """A parsed preflight event."""

    secret_id: str
    version_ids: tuple[str, ...] = ()
    max_refused: int = DEFAULT_MAX_REFUSED

    @classmethod
    def parse(cls, event: object) -> PreflightRequest:
        """Validate the event; raises EventFormatError naming what is wrong."""
        if not isinstance(event, Mapping) or not isinstance(event.get(PREFLIGHT_KEY), Mapping):
            raise EventFormatError(f"a preflight event is {{{PREFLIGHT_KEY!r}: {{'SecretId': ...}}}}")
        if "Step" in event:
            raise EventFormatError(f"an event with both {PREFLIGHT_KEY!r} and 'Step' is ambiguous")
        body = event[PREFLIGHT_KEY]
        secret_id = body.get("SecretId")
        if not isinstance(secret_id, str) or not secret_id:
            raise EventFormatError("the preflight event lacks 'SecretId' or it is not a string")
        versions = body.get("VersionIds", [])
        if not isinstance(versions, list) or not all(isinstance(v, str) and v for v in versions):
            raise EventFormatError("the preflight event's 'VersionIds' is not a list of version ids")
        if len(versions) > MAX_EXTRA_VERSIONS:
            raise EventFormatError(f"the preflight event names more than {MAX_EXTRA_VERSIONS} versions")
        max_refused = body.get("MaxRefusedLogins", DEFAULT_MAX_REFUSED)
        if not isinstance(max_refused, int) or isinstance(max_refused, bool):
            raise EventFormatError("the preflight event's 'MaxRefusedLogins' is not a whole number")
        if not 0 <= max_refused <= MAX_REFUSED_LIMIT:
            raise EventFormatError(f"the preflight event's 'MaxRefusedLogins' is not 0..{MAX_REFUSED_LIMIT}")
        return cls(secret_id=secret_id, version_ids=tuple(dict.fromkeys(versions)), max_refused=max_refused)


@dataclass(frozen=True)
class Finding:
    """One check: ``ok`` None means not checked (it does not fail the preflight)."""

    check: str
    ok: bool | None
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class VersionLogin:
    """What the database said to one version's credentials.

    ``privileges`` (alternating users, accepted logins only): whether the session passes
    testSecret's and finishSecret's proof that the user acts with the original user's
    privileges; None where not checked (single user, or the login was not accepted).
    ``relation``: the version's user relative to ``AWSCURRENT``'s (:data:`Relation`);
    None when the version could not be read."""

    version: str
    labels: tuple[str, ...]
    user: str | None
    outcome: Outcome
    detail: str = ""
    privileges: bool | None = None
    relation: Relation | None = None


#: The ``database login`` check's fix for a login that failed other than refused, the
#: first that applies.
_FAILED_LOGIN_FIXES: dict[Outcome, str] = {
    "blocked": "the server blocks the account after refused logins in a row: unblock it (MariaDB: "
    "FLUSH PRIVILEGES; MySQL 8: ALTER USER ... ACCOUNT UNLOCK), then run the preflight again",
    "unreachable": "check the host, port, security groups and the CA bundle (DB_CA_BUNDLE or "
    "the secret's 'ca_bundle'); TLS is verified and never dropped",
}


def _failed_login(error: DatabaseError) -> Outcome:
    """A login's outcome for the error that ended it (``Engine.open``'s contract)."""
    if isinstance(error, DatabaseLoginError):
        return "refused"
    return "blocked" if isinstance(error, AccountBlockedError) else "unreachable"


@dataclass
class LoginBudget:
    """How many refused logins in a row the preflight risks per user (see the module)."""

    asked: int
    lockout: int | None = None
    lockout_read: bool = False
    refused: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def allowed(self) -> int:
        """Refused logins in a row allowed per user: never as many as block the account."""
        return self.asked if self.lockout is None else max(min(self.asked, self.lockout - 1), 0)

    def may_try(self, user: str, refused: int, *, always: bool = False) -> bool:
        """Whether to try a version of ``user``, whose account the database refused
        ``refused`` logins in a row (this container's count: :attr:`Rotator.refused`);
        ``always``: a login the application makes anyway, tried unless a refusal is
        already counted."""
        self.refused[user] = refused
        if refused < self.allowed or (always and refused == 0):
            return True
        self.skipped[user] = self.skipped.get(user, 0) + 1
        return False

    def why(self, user: str) -> str:
        return (
            f"not tried: the database refused {self.refused.get(user, 0)} logins in a row for "
            f"{user!r}; another refused login could block the account"
        )

    def finding(self) -> Finding | None:
        """The ``logins stopped`` check, when versions were left untried."""
        if not self.skipped:
            return None
        users = ", ".join(f"{count} of {user!r}" for user, count in sorted(self.skipped.items()))
        limit = f"; the server blocks after {self.lockout}" if self.lockout is not None else ""
        return Finding(
            "logins stopped",
            ok=None,
            detail=f"stopped after {self.allowed} refused logins in a row per user{limit}, so as not "
            f"to block the account: {users} versions not tried",
            fix=f"to try more, ask for them (MaxRefusedLogins, up to {MAX_REFUSED_LIMIT}; "
            "secrets-rotation --max-refused-logins N), knowing each refused login counts "
            "towards the server's limit",
        )


@dataclass
class PreflightReport:
    """The preflight's answer; :meth:`to_dict` is what the function returns."""

    secret: str
    engine: str
    rotation_enabled: bool | None = None
    strategy: str | None = None
    checks: list[Finding] = field(default_factory=list)
    logins: list[VersionLogin] = field(default_factory=list)
    capabilities: list[Capability] = field(default_factory=list)
    #: Whether a session of the secret's own user found its host a read replica (None:
    #: no session could tell); not part of the answer, whose ``replica`` check says it.
    on_replica: bool | None = None

    def fail(self, check: str, error: Exception | str, fix: str) -> PreflightReport:
        """Record a failed check; returns the report (a check that ends it returns this)."""
        self.checks.append(Finding(check, ok=False, detail=str(error), fix=fix))
        return self

    @property
    def ok(self) -> bool:
        return all(finding.ok is not False for finding in self.checks) and all(
            capability.held is not False for capability in self.capabilities
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "secret": self.secret,
            "engine": self.engine,
            "ok": self.ok,
            "rotation_enabled": self.rotation_enabled,
            "strategy": self.strategy,
            "checks": [vars(finding) for finding in self.checks],
            "logins": [{**vars(login), "labels": list(login.labels)} for login in self.logins],
            "capabilities": [vars(capability) for capability in self.capabilities],
        }


class Preflight(Rotator[ConnectionT]):
    """The rotation core's checks, run for a report instead of a rotation.

    A subclass so that it runs the very methods createSecret and setSecret run; it adds
    no writing path and calls none of the steps."""

    @classmethod
    def of(cls, rotator: Rotator[ConnectionT]) -> Preflight[ConnectionT]:
        """A preflight sharing ``rotator``'s engine, Secrets Manager client and settings."""
        preflight = cls(rotator.engine, rotator.store, rotator.settings, rotator.rds)
        # One record per container of what the server counts: a preflight's refused logins
        # count towards the steps' stop, and the steps' towards the preflight's.
        preflight.lockouts, preflight.accepted, preflight.refused = (
            rotator.lockouts,
            rotator.accepted,
            rotator.refused,
        )
        return preflight

    def answer(
        self, event: object, function_arn: str | None, deadline: Deadline = UNBOUNDED
    ) -> dict[str, Any]:
        """Answer a preflight event for the function ``function_arn`` (the invoked one,
        unqualified: :func:`invoked_function`), logging one line as a step does.
        Raises PreflightRefusedError for a secret that is not this function's, and
        StepTimeLimitError when a login or an RDS call would not fit before ``deadline``
        (the invocation's, as a step's)."""
        self._begin(deadline)
        request = PreflightRequest.parse(event)
        logger.append_keys(step="preflight", secret_id=request.secret_id, engine=self.engine.name)
        try:
            report = self.check(request, function_arn)
            failed = [f.check for f in report.checks if f.ok is False]
            failed += [c.what for c in report.capabilities if c.held is False]
            logger.info(
                "preflight done",
                extra={
                    "outcome": "ok" if report.ok else "problems found",
                    "failed": failed,
                    "logins": {login.version: login.outcome for login in report.logins},
                },
            )
            return report.to_dict()
        except RotationError as error:
            logger.error("preflight refused", extra={"error": type(error).__name__, "reason": str(error)})
            raise
        except Exception as error:
            logger.error("preflight failed unexpectedly", extra={"error": type(error).__name__})
            raise
        finally:
            logger.remove_keys(["step", "secret_id", "engine"])

    def check(self, request: PreflightRequest, function_arn: str | None) -> PreflightReport:
        """Every check, in createSecret's order; a failed one ends the report only when
        the checks after it cannot run without it. Nothing is read but the secret's
        description unless the secret is ``function_arn``'s own (see the module)."""
        report = PreflightReport(secret=request.secret_id, engine=self.engine.name)
        # What RDS says now, not what a rotation was told; each call only if it fits.
        self.rds.begin(None, self.deadline.require)
        try:
            metadata = self.store.describe(request.secret_id)
        except SecretsManagerError as error:
            return report.fail(
                "secret", str(error), "give the function's role secretsmanager:DescribeSecret on the secret"
            )
        self._require_own(metadata, function_arn)
        report.secret, report.rotation_enabled = metadata.arn, metadata.rotation_enabled
        try:
            current = self._current(metadata)
        except StepTimeLimitError:
            raise  # the function's time, not the secret: the preflight stops, naming it
        except RotationError as error:
            return report.fail(
                "secret format", str(error), f"store a valid {AWSCURRENT} version (README: The secret)"
            )
        strategy = Strategy.of(current, self.engine)
        report.strategy = strategy.value
        report.checks.append(
            Finding("secret format", ok=True, detail=f"{current.engine} user {current.username!r}")
        )
        # Dual passwords with a master: the master acts as for alternating users, on the
        # same user (the engine's alternate_user_capabilities says what it checks).
        with_master = strategy is not Strategy.SINGLE_USER
        master = self._check_master(current, report) if with_master else None
        budget = LoginBudget(request.max_refused)
        accepted = self._check_logins(metadata, current, request.version_ids, report, budget)
        if strategy is Strategy.ALTERNATING_USERS:
            self._check_current_privileges(report)
        if with_master:
            self._check_master_capabilities(current, master, accepted, report)
        return report

    # -- the parts --------------------------------------------------------------------

    @staticmethod
    def _require_own(metadata: SecretMetadata, function_arn: str | None) -> None:
        if function_arn is None:
            raise PreflightRefusedError(
                "the preflight was invoked without a Lambda context naming the function: "
                "it answers only for the function's own secrets"
            )
        if metadata.rotation_lambda_arn is None:
            raise PreflightRefusedError(
                f"secret {metadata.arn} has no rotation function: the preflight answers only "
                "for the function's own secrets"
            )
        if unqualified(metadata.rotation_lambda_arn) != function_arn:
            raise PreflightRefusedError(
                f"secret {metadata.arn} is rotated by another function: the preflight answers only "
                "for the function's own secrets"
            )

    def _check_master(self, current: DatabaseSecret, report: PreflightReport) -> DatabaseSecret | None:
        try:
            master = self._master(current)
        except SecretsManagerError as error:
            report.fail(
                "master secret",
                str(error),
                "give the function's role secretsmanager:GetSecretValue on the master "
                "secret (the template's MasterSecretArnPattern)",
            )
            return None
        except StepTimeLimitError:
            raise
        except RdsError as error:
            report.fail(
                "master secret",
                str(error),
                f"give the function's role {DESCRIBE_PERMISSIONS} (the template's RdsLookups)",
            )
            return None
        except RotationError as error:
            report.fail(
                "master secret",
                str(error),
                "the master secret must be a valid secret for the same host and port",
            )
            return None
        report.checks.append(
            Finding("master secret", ok=True, detail=f"user {master.username!r} on the same server")
        )
        return master

    def _versions(
        self, metadata: SecretMetadata, extra: tuple[str, ...]
    ) -> list[tuple[str, tuple[str, ...]]]:
        """(version id, labels): AWSCURRENT, AWSPENDING, AWSPREVIOUS, other labels, then
        the unlabelled versions asked for."""

        def rank(item: tuple[str, tuple[str, ...]]) -> int:
            return min((LABEL_ORDER.index(x) for x in item[1] if x in LABEL_ORDER), default=len(LABEL_ORDER))

        labelled = sorted(((v, tuple(labels)) for v, labels in metadata.versions.items() if labels), key=rank)
        known = {version for version, _ in labelled}
        return labelled + [(version, ()) for version in extra if version not in known]

    def _check_logins(
        self,
        metadata: SecretMetadata,
        current: DatabaseSecret,
        extra: tuple[str, ...],
        report: PreflightReport,
        budget: LoginBudget,
    ) -> set[str]:
        """Log in with every version the budget allows; returns the labels whose
        credentials were accepted. A single user's capabilities, and the server's lockout,
        are read in the first session that fits.

        A single user's password lives on the writer when the secret names a read replica
        (setSecret changes it there, ``Rotator._set_single_on_writer``), and a replica that
        lags or stopped applying still accepts the password the writer has replaced: so
        there the versions are judged by logins on the writer (found through RDS, as
        setSecret finds it), and the replica's own answers are only reported."""
        single = Strategy.of(current, self.engine) is Strategy.SINGLE_USER
        accepted = self._log_in_with_each(metadata, current, extra, report, budget)
        on_replica = report.on_replica
        if on_replica is None and single:
            on_replica = self.rds.is_reader(current)  # no session could tell: RDS may
        if single and on_replica:
            writer = self._replica_writer(current, report)
            if writer is not None:
                replica_logins, report.logins, report.capabilities = report.logins, [], []
                # The writer counts its own refused logins (its lockout: as read so far).
                budget = LoginBudget(budget.asked, budget.lockout, budget.lockout_read)
                accepted = self._log_in_with_each(metadata, current, extra, report, budget, writer)
                seen = ", ".join(f"{(x.labels or (x.version,))[0]} {x.outcome}" for x in replica_logins)
                report.checks.append(
                    Finding(
                        "replica",
                        ok=True,
                        detail=f"{current.host} is a read replica: the password changes on its writer "
                        f"{writer.host}:{writer.port}, where the versions were tried (on the replica "
                        f"itself, which may lag: {seen or 'no login'})",
                    )
                )
        report.checks.append(self._login_finding(report.logins, accepted, single))
        stopped = budget.finding()
        if stopped is not None:
            report.checks.append(stopped)
        if single and not report.capabilities:
            report.capabilities.append(
                _not_checked("change its own password", "no version of this user could log in")
            )
        return accepted

    def _log_in_with_each(  # noqa: PLR0917 - the parts of one pass, spelled out
        self,
        metadata: SecretMetadata,
        current: DatabaseSecret,
        extra: tuple[str, ...],
        report: PreflightReport,
        budget: LoginBudget,
        server: Endpoint | None = None,
    ) -> set[str]:
        """One pass over the versions, on the secrets' host or on ``server``; adds to
        ``report.logins`` and returns the labels (or ids) accepted."""
        accepted: set[str] = set()
        single = Strategy.of(current, self.engine) is Strategy.SINGLE_USER
        for version, labels in self._versions(metadata, extra):
            name = labels[0] if labels else f"version {version}"
            login = self._try_version(
                metadata, current, (version, labels, name), single, report, budget, server=server
            )
            report.logins.append(login)
            if login.outcome == "accepted":
                accepted.update(labels or (version,))
        return accepted

    def _replica_writer(self, current: DatabaseSecret, report: PreflightReport) -> Endpoint | None:
        """The writer of the replica ``current`` names (RDS), or None with a failed check."""
        try:
            return self.rds.writer_for(current)
        except RdsError as error:
            report.fail(
                "replica",
                f"{error}: the versions were tried on the replica only, which may lag its writer",
                f"give the function's role {DESCRIBE_PERMISSIONS}, or name the database in the "
                "secret ('dbInstanceIdentifier' or 'dbClusterIdentifier'): a rotation needs the writer too",
            )
            return None

    def _within_budget(
        self, budget: LoginBudget, account: tuple[str, int, str], user: str, labels: tuple[str, ...]
    ) -> bool:
        """Whether ``budget`` allows a login to ``account``, counting the refused logins in
        a row this container saw (steps and earlier preflights: :attr:`Rotator.refused`)
        and the limit any of them learnt. ``AWSCURRENT``'s login is tried (the application
        makes it all day long) unless a refused one is already counted: then it counts
        like any other."""
        if budget.lockout is None:
            budget.lockout = self.lockouts.get(account)
        return budget.may_try(user, self.refused.get(account, 0), always=AWSCURRENT in labels)

    def _try_version(  # noqa: PLR0917 - one version, described in full, one return per outcome
        self,
        metadata: SecretMetadata,
        current: DatabaseSecret,
        which: tuple[str, tuple[str, ...], str],
        single: bool,
        report: PreflightReport,
        budget: LoginBudget,
        *,
        server: Endpoint | None = None,
    ) -> VersionLogin:
        """``which``: (version id, labels, name); ``server``: log in there rather than on
        the secrets' host (a replica's writer)."""
        version, labels, name = which
        try:
            secret = self.store.version(metadata.arn, version, name)
            self._validate_engine(secret)
        except StagingError:
            return VersionLogin(version, labels, None, "no value", "no value stored (or no such version)")
        except StepTimeLimitError:
            raise
        except RotationError as error:
            return VersionLogin(version, labels, None, "unusable", str(error))
        relation = user_relation(secret.username, current.username)
        if not self._same_server(secret, current):
            return VersionLogin(
                version,
                labels,
                secret.username,
                "not tried",
                f"for {secret.host}:{self._port(secret)}, not {AWSCURRENT}'s server",
                relation=relation,
            )
        login = self._login(secret, name, server=server)
        account = account_key(login.host, login.port, login.username)
        if not self._within_budget(budget, account, secret.username, labels):
            return VersionLogin(
                version, labels, secret.username, "not tried", budget.why(secret.username), relation=relation
            )
        privileges: tuple[bool | None, str] = (None, "")
        opened = False
        try:
            with self._connect(login) as connection:
                opened = True
                self.refused.pop(account, None)
                self.engine.verify_session(connection)
                if not budget.lockout_read and (lockout := self._read_lockout(connection, login, budget)):
                    report.checks.append(lockout)
                if single and not report.capabilities and secret.username == current.username:
                    if server is None:
                        report.on_replica = self.engine.is_replica(connection)
                    report.capabilities.extend(self.engine.own_password_capabilities(connection, login))
                if not single:
                    privileges = self._acts_as_original(connection, secret, current)
        except (DatabaseLoginError, AccountBlockedError, DatabaseConnectionError) as error:
            outcome = _failed_login(error)
            if outcome == "refused" and not opened:
                self._count_refused(account, name)
            return VersionLogin(version, labels, secret.username, outcome, str(error), relation=relation)
        except DatabaseError as error:
            # Logged in, then a query failed: the credentials work, the session does not.
            report.checks.append(Finding(f"session of {name}", ok=False, detail=str(error)))
        held, why = privileges
        return VersionLogin(
            version, labels, secret.username, "accepted", why, privileges=held, relation=relation
        )

    def _read_lockout(self, connection: ConnectionT, login: Login, budget: LoginBudget) -> Finding | None:
        """The server's lockout after refused logins (read once, in the first session),
        which caps the budget; None for an engine that has none to read."""
        budget.lockout_read = True
        try:
            lockout = self.engine.login_lockout(connection, login)
        except DatabaseError as error:
            return Finding("login lockout", ok=None, detail=f"could not be read: {error}")
        budget.lockout = lockout.limit
        account = account_key(login.host, login.port, login.username)
        if lockout.limit is None:
            self.lockouts.pop(account, None)
        else:
            self.lockouts[account] = lockout.limit
        if not lockout.known:
            return None
        if lockout.limit is None:
            return Finding("login lockout", ok=True, detail=f"{lockout.detail}: refused logins block nobody")
        return Finding(
            "login lockout",
            ok=True,
            detail=f"{lockout.detail}; the preflight risks at most {budget.allowed} refused logins "
            "in a row per user",
        )

    def _acts_as_original(
        self, connection: ConnectionT, secret: DatabaseSecret, current: DatabaseSecret
    ) -> tuple[bool, str]:
        """testSecret's and finishSecret's privilege proof for one accepted version of an
        alternating pair (read only): whether the version may become ``AWSCURRENT``."""
        original = original_username(current.username)
        if original_username(secret.username) != original:
            return False, f"user {secret.username!r} is not one of {original!r}'s pair"
        try:
            self.engine.verify_privileges(
                connection, original=original, user=secret.username, database=self._secret_database(secret)
            )
        except DatabaseError as error:
            return False, str(error)
        return True, ""

    @staticmethod
    def _login_finding(logins: list[VersionLogin], accepted: set[str], single: bool) -> Finding:
        for outcome, fix in _FAILED_LOGIN_FIXES.items():
            failed = next((login for login in logins if login.outcome == outcome), None)
            if failed is not None:
                return Finding("database login", ok=False, detail=failed.detail, fix=fix)
        if AWSCURRENT in accepted:
            return Finding("database login", ok=True, detail=f"{AWSCURRENT} accepted over the configured TLS")
        # setSecret recovers only with its own user's credentials (never another user's).
        recoverable = {
            label
            for login in logins
            if login.outcome == "accepted" and login.relation == "same user"
            for label in login.labels
        } & {AWSPENDING, AWSPREVIOUS}
        if single and recoverable:
            label = sorted(recoverable)[0]
            return Finding(
                "database login",
                ok=True,
                detail=f"{AWSCURRENT} refused, {label} accepted: the next rotation recovers with it",
                fix="secrets-rotation repair (if a rotation is stuck)",
            )
        return Finding(
            "database login",
            ok=False,
            detail=f"the database accepts none of the labelled versions' credentials "
            f"({', '.join(sorted(accepted)) or 'none'} accepted)",
            fix="set the user's password to the AWSCURRENT version's, or run secrets-rotation repair",
        )

    @staticmethod
    def _check_current_privileges(report: PreflightReport) -> None:
        current = next((login for login in report.logins if AWSCURRENT in login.labels), None)
        if current is None or current.privileges is None:
            return
        if current.privileges:
            detail = f"user {current.user!r} acts with the original user's privileges"
            report.checks.append(Finding("privileges", ok=True, detail=detail))
            return
        report.fail(
            "privileges",
            current.detail,
            "rotate (the next rotation makes the other user of the pair current), or grant "
            "this user what the original user holds",
        )

    def _check_master_capabilities(
        self,
        current: DatabaseSecret,
        master: DatabaseSecret | None,
        accepted: set[str],
        report: PreflightReport,
    ) -> None:
        what = "create and alter the other user"
        if master is None:
            report.capabilities.append(_not_checked(what, "the master secret could not be used"))
            return
        if AWSCURRENT not in accepted:
            # As setSecret: the master credentials go only to a host that has accepted the
            # secret's own credentials (a secret must not point them elsewhere).
            report.capabilities.append(
                _not_checked(what, f"the master user logs in only after {AWSCURRENT}'s credentials did")
            )
            return
        original = original_username(current.username)
        try:
            session = self.engine.open(self.engine.bounded(self._master_login(current, master)))
        except DatabaseError as error:
            report.fail(
                "master login", str(error), "the master secret's credentials must log in to this server"
            )
            return
        report.checks.append(Finding("master login", ok=True, detail=f"user {master.username!r} accepted"))
        try:
            report.capabilities.extend(
                self.engine.alternate_user_capabilities(
                    session,
                    original=original,
                    clone=partner_username(original),
                    database=self._secret_database(current),
                    current=self._login(current, AWSCURRENT),
                )
            )
        except DatabaseError as error:
            report.capabilities.append(Capability(what, False, str(error)))
        finally:
            self.engine.close(session)


def user_relation(user: str, current: str) -> Relation:
    """``user``'s :data:`Relation` to ``current``, ``AWSCURRENT``'s user."""
    if user == current:
        return "same user"
    return "pair" if original_username(user) == original_username(current) else "other user"


def _not_checked(what: str, why: str) -> Capability:
    return Capability(what, None, f"not checked: {why}")
