"""Preflight: createSecret's checks for one secret, run by the deployed function, writing nothing.

The event has a top-level key Secrets Manager never sends, so that it can never be
mistaken for a rotation step (an event with both ``Preflight`` and ``Step`` is refused)::

    {"Preflight": {"SecretId": "<ARN or name>", "VersionIds": ["<version id>", ...]}}

``VersionIds`` (optional, at most :data:`MAX_EXTRA_VERSIONS`) names versions without a
staging label to try as well: after an abandoned rotation the database may hold one of
them (``secrets-rotation repair`` passes them).

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

from common.engine import Capability, ConnectionT
from common.errors import (
    DatabaseConnectionError,
    DatabaseError,
    DatabaseLoginError,
    EventFormatError,
    RotationError,
    SecretsManagerError,
    StagingError,
)
from common.observability import logger
from common.rotation import PREFLIGHT_KEY, Rotator, Strategy, original_username, partner_username
from common.secretsmanager import AWSCURRENT, AWSPENDING, AWSPREVIOUS

if TYPE_CHECKING:
    from common.secret import DatabaseSecret
    from common.secretsmanager import SecretMetadata

REPORT_FORMAT = "secrets-rotation-preflight/1"
MAX_EXTRA_VERSIONS = 10
LABEL_ORDER = (AWSCURRENT, AWSPENDING, AWSPREVIOUS)

#: What a login with one version came to.
Outcome = Literal["accepted", "refused", "unreachable", "no value", "unusable", "not tried"]


@dataclass(frozen=True)
class PreflightRequest:
    """A parsed preflight event."""

    secret_id: str
    version_ids: tuple[str, ...] = ()

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
        return cls(secret_id=secret_id, version_ids=tuple(dict.fromkeys(versions)))


@dataclass(frozen=True)
class Finding:
    """One check: ``ok`` None means not checked (it does not fail the preflight)."""

    check: str
    ok: bool | None
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class VersionLogin:
    """What the database said to one version's credentials."""

    version: str
    labels: tuple[str, ...]
    user: str | None
    outcome: Outcome
    detail: str = ""


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
        return cls(rotator.engine, rotator.store, rotator.settings)

    def answer(self, event: object) -> dict[str, Any]:
        """Answer a preflight event, logging one line as a step does."""
        request = PreflightRequest.parse(event)
        logger.append_keys(step="preflight", secret_id=request.secret_id, engine=self.engine.name)
        try:
            report = self.check(request)
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
        except Exception as error:
            logger.error("preflight failed unexpectedly", extra={"error": type(error).__name__})
            raise
        finally:
            logger.remove_keys(["step", "secret_id", "engine"])

    def check(self, request: PreflightRequest) -> PreflightReport:
        """Every check, in createSecret's order; a failed one ends the report only when
        the checks after it cannot run without it."""
        report = PreflightReport(secret=request.secret_id, engine=self.engine.name)
        try:
            metadata = self.store.describe(request.secret_id)
        except SecretsManagerError as error:
            return report.fail(
                "secret", str(error), "give the function's role secretsmanager:DescribeSecret on the secret"
            )
        report.secret, report.rotation_enabled = metadata.arn, metadata.rotation_enabled
        try:
            current = self._current(metadata)
        except RotationError as error:
            return report.fail(
                "secret format", str(error), f"store a valid {AWSCURRENT} version (README: The secret)"
            )
        strategy = Strategy.of(current)
        report.strategy = strategy.value
        report.checks.append(
            Finding("secret format", ok=True, detail=f"{current.engine} user {current.username!r}")
        )
        master = self._check_master(current, report) if strategy is Strategy.ALTERNATING_USERS else None
        accepted = self._check_logins(metadata, current, request.version_ids, report)
        if strategy is Strategy.ALTERNATING_USERS:
            self._check_master_capabilities(current, master, accepted, report)
        return report

    # -- the parts --------------------------------------------------------------------

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
    ) -> set[str]:
        """Log in with every version; returns the labels whose credentials were accepted.
        A single user's capabilities are read in the first session of that user."""
        accepted: set[str] = set()
        single = Strategy.of(current) is Strategy.SINGLE_USER
        for version, labels in self._versions(metadata, extra):
            name = labels[0] if labels else f"version {version}"
            login = self._try_version(metadata, current, version, labels, name, single, report)
            report.logins.append(login)
            if login.outcome == "accepted":
                accepted.update(labels or (version,))
        report.checks.append(self._login_finding(report.logins, accepted, single))
        if single and not report.capabilities:
            report.capabilities.append(
                _not_checked("change its own password", "no version of this user could log in")
            )
        return accepted

    def _try_version(  # noqa: PLR0917 - one version, described in full
        self,
        metadata: SecretMetadata,
        current: DatabaseSecret,
        version: str,
        labels: tuple[str, ...],
        name: str,
        single: bool,
        report: PreflightReport,
    ) -> VersionLogin:
        try:
            secret = self.store.version(metadata.arn, version, name)
            self._validate_engine(secret)
        except StagingError:
            return VersionLogin(version, labels, None, "no value", "no value stored (or no such version)")
        except RotationError as error:
            return VersionLogin(version, labels, None, "unusable", str(error))
        if not self._same_server(secret, current):
            return VersionLogin(
                version,
                labels,
                secret.username,
                "not tried",
                f"for {secret.host}:{self._port(secret)}, not {AWSCURRENT}'s server",
            )
        login = self._login(secret, name)
        try:
            with self.engine.connect(login) as connection:
                self.engine.verify_session(connection)
                if single and not report.capabilities and secret.username == current.username:
                    report.capabilities.extend(self.engine.own_password_capabilities(connection, login))
        except DatabaseLoginError as error:
            return VersionLogin(version, labels, secret.username, "refused", str(error))
        except DatabaseConnectionError as error:
            return VersionLogin(version, labels, secret.username, "unreachable", str(error))
        except DatabaseError as error:
            # Logged in, then a query failed: the credentials work, the session does not.
            report.checks.append(Finding(f"session of {name}", ok=False, detail=str(error)))
        return VersionLogin(version, labels, secret.username, "accepted")

    @staticmethod
    def _login_finding(logins: list[VersionLogin], accepted: set[str], single: bool) -> Finding:
        unreachable = next((login for login in logins if login.outcome == "unreachable"), None)
        if unreachable is not None:
            return Finding(
                "database login",
                ok=False,
                detail=unreachable.detail,
                fix="check the host, port, security groups and the CA bundle (DB_CA_BUNDLE or "
                "the secret's 'ca_bundle'); TLS is verified and never dropped",
            )
        if AWSCURRENT in accepted:
            return Finding("database login", ok=True, detail=f"{AWSCURRENT} accepted over the configured TLS")
        recoverable = accepted & {AWSPENDING, AWSPREVIOUS}
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
        dbname = current.dbname if self.engine.master_session_on_secret_database else master.dbname
        original = original_username(current.username)
        master_login = self._login(master, "master", dbname=dbname or current.dbname)
        try:
            session = self.engine.open(master_login)
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
                    database=current.dbname or self.engine.default_dbname,
                )
            )
        except DatabaseError as error:
            report.capabilities.append(Capability(what, False, str(error)))
        finally:
            self.engine.close(session)


def _not_checked(what: str, why: str) -> Capability:
    return Capability(what, None, f"not checked: {why}")
