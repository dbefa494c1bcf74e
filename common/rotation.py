"""The rotation state machine: Secrets Manager's four-step protocol, once, for every engine.

Contract (see the README for the long form):

* Every step first checks that rotation is enabled, that the token is a version of the
  secret, and that it carries ``AWSPENDING``; a token already ``AWSCURRENT`` means there
  is nothing to do (finishSecret then only clears a left-over ``AWSPENDING``).
* Every step is safe to run again from any state a crash can leave, and none leaves a
  labelled version whose credentials cannot log in.
* A secret with ``masterarn`` rotates by alternating users (``<user>`` and
  ``<user>_clone``), or, on engines whose users hold two passwords
  (``Engine.master_adds_password``), by the master giving the same user a second
  password; any other rotates its single user's password, keeping the current one
  beside the new where the engine can (``Engine.add_password``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Generic, Literal

from common.deadline import UNBOUNDED, Deadline
from common.engine import ConnectionT, Engine, Login
from common.errors import (
    DatabaseLoginError,
    DatabaseOperationError,
    EventFormatError,
    RotationError,
    RotationNotEnabledError,
    SecretFormatError,
    SecretMismatchError,
    StagingError,
    UnexpectedError,
)
from common.observability import logger, metrics
from common.rds import RdsDirectory, normal_host, same_host
from common.redaction import clip, redact, register
from common.replicas import ReplicaWait
from common.secretsmanager import AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretMetadata, SecretStore

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from common.passwords import PasswordPolicy
    from common.rds import Endpoint, Topology
    from common.secret import DatabaseSecret
    from common.settings import Settings

Step = Literal["createSecret", "setSecret", "testSecret", "finishSecret"]
STEPS: tuple[Step, ...] = ("createSecret", "setSecret", "testSecret", "finishSecret")
# The top-level key of an operator's preflight event (common.preflight), which Secrets
# Manager never sends.
PREFLIGHT_KEY = "Preflight"
CLONE_SUFFIX = "_clone"
#: How many of the newest unlabelled versions a single-user rotation tries when every
#: labelled version is refused (Secrets Manager keeps about 100).
UNLABELLED_TRIED = 3
MASTER_WHAT = "the master secret (key 'masterarn')"


class Strategy(Enum):
    """How a secret rotates."""

    SINGLE_USER = "single-user"
    ALTERNATING_USERS = "alternating-users"
    #: With a master secret, on engines whose users hold two passwords: the same user.
    DUAL_PASSWORDS = "dual-passwords"

    @classmethod
    def of(cls, secret: DatabaseSecret, engine: Engine[ConnectionT]) -> Strategy:
        """The one place the strategy is decided: a master secret means alternating users,
        or dual passwords on an engine whose users hold two (``master_adds_password``)."""
        if not secret.masterarn:
            return cls.SINGLE_USER
        return cls.DUAL_PASSWORDS if engine.master_adds_password else cls.ALTERNATING_USERS


def original_username(username: str) -> str:
    """The user whose privileges the alternating pair shares."""
    return username[: -len(CLONE_SUFFIX)] if username.endswith(CLONE_SUFFIX) else username


def partner_username(username: str) -> str:
    """The other user of the alternating pair."""
    if username.endswith(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    return username + CLONE_SUFFIX


def _single_outcome(kept: bool, label: str, where: str = "") -> str:
    """setSecret's log line for a single user's change made with the ``label`` login:
    ``kept`` when the server holds the current password beside the pending one."""
    if kept:
        return f"pending password added beside the {label} one{where}"
    return f"password changed with the {label} credentials{where}"


def account_key(host: str, port: int, user: str) -> tuple[str, int, str]:
    """An account's key for :attr:`Rotator.lockouts` and :attr:`Rotator.accepted`."""
    return normal_host(host), port, user


def is_preflight(event: object) -> bool:
    """Whether an invocation asks for a preflight rather than a rotation step."""
    return isinstance(event, Mapping) and PREFLIGHT_KEY in event


@dataclass(frozen=True)
class RotationEvent:
    """A parsed invocation: ``SecretId`` may be an ARN or a name."""

    step: Step
    secret_id: str
    token: str
    rotation_token: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, event: object) -> RotationEvent:
        """Validate the event Secrets Manager sends; raises EventFormatError."""
        if not isinstance(event, Mapping):
            raise EventFormatError("the event is not a JSON object")
        values: dict[str, str] = {}
        for key in ("Step", "SecretId", "ClientRequestToken"):
            value = event.get(key)
            if not isinstance(value, str) or not value:
                raise EventFormatError(f"the event lacks '{key}' or it is not a string")
            values[key] = value
        step = next((known for known in STEPS if known == values["Step"]), None)
        if step is None:
            raise EventFormatError(
                f"the event's Step {clip(values['Step'])!r} is not one of {', '.join(STEPS)}"
            )
        rotation_token = event.get("RotationToken")
        if rotation_token is not None and not isinstance(rotation_token, str):
            raise EventFormatError("the event's 'RotationToken' is not a string")
        register(rotation_token)
        return cls(
            step=step,
            secret_id=values["SecretId"],
            token=values["ClientRequestToken"],
            rotation_token=rotation_token or None,
        )


@contextmanager
def reported_step(engine: str, event: object, calls: Callable[[], int]) -> Iterator[Callable[[str], None]]:
    """Log and measure one invocation, whatever fails inside it (building the function's
    settings included): one "rotation step done" or "rotation step failed" line with the
    reason, and the step's metrics. Yields a callable that records the outcome."""
    started = time.perf_counter()
    calls_before = calls()
    step = event.get("Step") if isinstance(event, Mapping) else None
    metrics.add_dimension(name="Engine", value=engine)
    metrics.add_dimension(name="Step", value=str(step) if step in STEPS else "invalid")
    outcome: list[str] = []
    try:
        yield outcome.append
    except RotationError as error:
        metrics.add_metric(name="StepFailed", unit="Count", value=1)
        # Our messages never carry a value; the mask is the safety net for what Lambda
        # prints and returns as the invocation's error.
        error.args = (redact(str(error)),)
        logger.error("rotation step failed", extra={"error": type(error).__name__, "reason": str(error)})
        raise
    except Exception as error:  # noqa: BLE001 - replaced by an error of ours, never swallowed
        metrics.add_metric(name="StepFailed", unit="Count", value=1)
        # A foreign exception may quote its input: the runtime would print and return its
        # message as is. Its traceback goes to the (masked) log; what leaves is ours.
        reason = f"{type(error).__name__}: {clip(redact(str(error)), 300)}"
        logger.error("rotation step failed unexpectedly", extra={"reason": reason}, exc_info=True)
        raise UnexpectedError(reason) from None
    else:
        metrics.add_metric(name="StepSucceeded", unit="Count", value=1)
        logger.info("rotation step done", extra={"outcome": outcome[0] if outcome else ""})
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        metrics.add_metric(name="StepDuration", unit="Milliseconds", value=elapsed_ms)
        metrics.add_metric(name="SecretsManagerCalls", unit="Count", value=calls() - calls_before)
        metrics.flush_metrics()
        # Powertools keeps the set when POWERTOOLS_METRICS_DISABLED is on: clear it so
        # dimensions do not pile up across invocations of a warm container.
        metrics.clear_metrics()
        logger.remove_keys(["step", "secret_id", "version", "engine", "secret_arn", "user"])


class Rotator(Generic[ConnectionT]):
    """Runs one step of a rotation for one engine. Steps are methods, one per step."""

    def __init__(
        self,
        engine: Engine[ConnectionT],
        store: SecretStore,
        settings: Settings,
        rds: RdsDirectory | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.settings = settings
        # RDS answers where a master or a replica's writer is; its client is built lazily.
        self.rds = rds or RdsDirectory()
        # One attempt on the replica: a login, then a statement (a position or a proof).
        self.replica_wait = ReplicaWait(
            engine, settings.replica_wait, login_seconds=settings.connect_timeout + settings.statement_timeout
        )
        self.deadline: Deadline = UNBOUNDED
        #: Refused logins in a row after which the server blocks an account, by (host,
        #: port, user), as read (``Engine.login_lockout``) in a session accepted after
        #: refused ones: no session can read it before one is accepted, so the later steps
        #: of a rotation this container serves stop short of it (see _log_in_with_first).
        self.lockouts: dict[tuple[str, int, str], int] = {}
        #: The version (its label) a session was accepted with after refused ones, by
        #: account as :attr:`lockouts`: a later step tries it first; forgotten once refused.
        self.accepted: dict[tuple[str, int, str], str] = {}
        #: Refused logins in a row this container saw, by account as :attr:`lockouts`:
        #: every login of every step, retry and preflight counts (an accepted one resets
        #: it), as the server counts them, so that no sequence of them reaches a learnt
        #: limit (:meth:`_check_lockout`). Shared with the preflight (``Preflight.of``).
        self.refused: dict[tuple[str, int, str], int] = {}

    @cached_property
    def password_policy(self) -> PasswordPolicy:
        """The engine's policy with the deployment's overrides; read when first needed, so
        that a bad variable fails a step (logged and counted) rather than the import."""
        return self.engine.password_policy.with_environment(self.settings.environ or {})

    # -- the protocol -------------------------------------------------------------

    def run(self, event: object, deadline: Deadline = UNBOUNDED) -> str:
        """Run the step the event names; returns what it did (for the log). Logins and
        waits for a replica stop before ``deadline`` (StepTimeLimitError)."""
        self._begin(deadline)
        request = RotationEvent.parse(event)
        logger.append_keys(
            step=request.step,
            secret_id=clip(request.secret_id),
            version=clip(request.token),
            engine=self.engine.name,
        )
        metadata = self.store.describe(request.secret_id)
        # RDS membership answers are fetched afresh once per rotation (a replica promoted
        # since is a database of its own), then reused by its later steps; each RDS call
        # starts only when the step has time for it.
        self.rds.begin(request.token, deadline.require)
        logger.remove_keys(["secret_id"])
        logger.append_keys(secret_arn=metadata.arn)
        if self._nothing_to_do(request, metadata):
            return "nothing to do"
        steps: dict[Step, Callable[[RotationEvent, SecretMetadata], str]] = {
            "createSecret": self.create_secret,
            "setSecret": self.set_secret,
            "testSecret": self.test_secret,
            "finishSecret": self.finish_secret,
        }
        return steps[request.step](request, metadata)

    def _begin(self, deadline: Deadline) -> None:
        """Bound what follows (logins, waits for a replica, the engine's own waits) by
        ``deadline``; a step or a preflight calls this first."""
        self.deadline = self.replica_wait.deadline = deadline
        self.engine.start_step(deadline)

    def _nothing_to_do(self, request: RotationEvent, metadata: SecretMetadata) -> bool:
        """The checks every step makes first; True when the token is already current."""
        if not metadata.rotation_enabled:
            raise RotationNotEnabledError(f"secret {metadata.arn} does not have rotation enabled")
        labels = metadata.versions.get(request.token)
        if labels is None:
            raise StagingError(
                f"version {clip(request.token)} is not a version of secret {metadata.arn}, "
                "or carries no staging label"
            )
        if AWSCURRENT in labels:
            if request.step == "finishSecret" and AWSPENDING in labels:
                # A finishSecret that moved AWSCURRENT and then stopped: finish the cleanup.
                self.store.remove_label(metadata.arn, AWSPENDING, request.token)
            return True
        if AWSPENDING not in labels:
            raise StagingError(
                f"version {clip(request.token)} of secret {metadata.arn} is not labelled {AWSPENDING}"
            )
        return False

    # -- the four steps ------------------------------------------------------------

    def create_secret(self, request: RotationEvent, metadata: SecretMetadata) -> str:
        """Store the pending version: the current secret with a new password (and, for
        alternating users, the other user's name). A retry keeps the first password.

        Checks come first, so that a secret that cannot be rotated is refused before
        anything is stored: the current version's format, the master secret's server,
        and a login (the database answers, its certificate matches, the credentials work).
        """
        current = self._current(metadata)
        strategy = Strategy.of(current, self.engine)
        if strategy is not Strategy.SINGLE_USER:
            self._master(current)
            self._log_in_with_first([(AWSCURRENT, current)], current, self._verify)
            username = current.username
            if strategy is Strategy.ALTERNATING_USERS:
                username = partner_username(current.username)
        else:
            # A single user whose current password is refused may be half-way through this
            # very rotation (setSecret applied the pending password, then the function
            # stopped) or may have been restored to its previous password.
            used = self._log_in_with_first(
                self._single_user_logins(
                    metadata, current, lambda: self._stored_pending(request, metadata, current)
                ),
                current,
                self._verify_own_rotation,
            )
            if used == AWSPENDING:
                return "pending version already stored and in effect"
            username = current.username
        pending = current.with_credentials(
            username, self.password_policy.generate(), f"{AWSPENDING} ({request.token})"
        )
        logger.append_keys(user=username)
        if self.store.put_pending(metadata.arn, request.token, pending, request.rotation_token):
            return "pending version stored"
        self._pending(request, metadata, current)  # what an earlier attempt stored must agree
        return "pending version already had a value"

    def set_secret(self, request: RotationEvent, metadata: SecretMetadata) -> str:
        """Make the database accept the pending credentials."""
        current = self._current(metadata)
        pending = self._pending(request, metadata, current)
        logger.append_keys(user=pending.username)
        strategy = Strategy.of(current, self.engine)
        if strategy is Strategy.ALTERNATING_USERS:
            return self._set_alternating(current, pending)
        if strategy is Strategy.DUAL_PASSWORDS:
            return self._set_dual(current, pending)
        return self._set_single(metadata, current, pending)

    def test_secret(self, request: RotationEvent, metadata: SecretMetadata) -> str:
        """Log in with the pending credentials and prove they hold what they must. The
        pending version is checked against the current one as in setSecret: steps may
        run out of order, and the strategy (which proof is due) is the current version's."""
        current = self._current(metadata)
        pending = self._pending(request, metadata, current)
        logger.append_keys(user=pending.username)
        strategy = Strategy.of(current, self.engine)
        try:
            self._prove(pending, strategy)
        except DatabaseLoginError:
            # A reader or read replica may not have the password changed on its writer yet
            # (engines that tell their position waited in setSecret); any other host refuses.
            if not self.rds.is_reader(pending):
                raise
            self.replica_wait.for_login(lambda: self._prove(pending, strategy))
        return "pending credentials work"

    def finish_secret(self, request: RotationEvent, metadata: SecretMetadata) -> str:
        """Move ``AWSCURRENT`` to the token (``AWSPREVIOUS`` follows), then clear
        ``AWSPENDING``. In this order a crash in between leaves the new version current
        and a retry only clears the label.

        Nothing moves unless the pending version has a value, passes setSecret's checks
        and testSecret's proof: a finishSecret run out of order (before setSecret, or
        before createSecret) must not make refused credentials current. The values are
        cached by version id, so a warm container pays no extra Secrets Manager call."""
        current = self._current(metadata)
        pending = self._pending(request, metadata, current)
        logger.append_keys(user=pending.username)
        self._prove(pending, Strategy.of(current, self.engine), settle=current)
        current_version = metadata.version_with(AWSCURRENT)
        self.store.move_label(metadata.arn, AWSCURRENT, request.token, current_version)
        self.store.remove_label(metadata.arn, AWSPENDING, request.token)
        return f"{AWSCURRENT} moved from version {current_version}"

    def _prove(
        self, pending: DatabaseSecret, strategy: Strategy, settle: DatabaseSecret | None = None
    ) -> None:
        """Log in with the pending credentials; for alternating users, prove the pending
        user acts with the original user's privileges.

        ``settle`` (finishSecret's current version): where the engine's session proves no
        password (``Engine.proves_password``: a managed user checked by its status only),
        nothing would stop a finishSecret run before setSecret from making current a
        password the user does not hold; so the pending password is applied again beside
        the current one (an idempotent change) before the labels move."""
        with self._connect(self._login(pending, AWSPENDING)) as connection:
            if settle is not None and not self.engine.proves_password(connection):
                held = self.engine.add_password(
                    connection, user=pending.username, keep=settle.password, new=pending.password
                )
                if not held:
                    raise DatabaseOperationError(
                        f"user {pending.username!r}: no login proves its password and it cannot hold two"
                    )
            self.engine.verify_session(connection)
            if strategy is Strategy.ALTERNATING_USERS:
                self.engine.verify_privileges(
                    connection,
                    original=original_username(pending.username),
                    user=pending.username,
                    database=pending.dbname or self.engine.default_dbname,
                )

    # -- setSecret strategies ---------------------------------------------------------

    def _set_single(self, metadata: SecretMetadata, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        outcome: list[str] = []

        def apply(connection: ConnectionT, login: Login) -> None:
            if login.label == AWSPENDING:
                self.engine.verify_session(connection)
                return
            if self.engine.is_replica(connection):
                outcome.append(self._set_single_on_writer(metadata, current, pending, connection))
                return
            outcome.append(_single_outcome(self._apply_pending(connection, login, pending), login.label))
            # The database now holds the pending password: what it held before is no guide.
            self.accepted.pop(account_key(login.host, login.port, login.username), None)

        used = self._log_in_with_first(
            self._single_user_logins(metadata, current, lambda: pending), current, apply
        )
        if used == AWSPENDING:
            return "pending credentials already in effect"
        return outcome[-1]

    def _apply_pending(self, connection: ConnectionT, login: Login, pending: DatabaseSecret) -> bool:
        """Logged in as the user, make it accept the pending password; True when the
        server keeps the current one beside it (dual passwords: no session is refused
        between setSecret and finishSecret), False when it was replaced."""
        if self.engine.add_password(
            connection, user=login.username, keep=login.password, new=pending.password
        ):
            return True
        self.engine.change_own_password(connection, login, pending.password)
        return False

    def _set_single_on_writer(
        self, metadata: SecretMetadata, current: DatabaseSecret, pending: DatabaseSecret, replica: ConnectionT
    ) -> str:
        """The secret's host is a read-only replica: change the password with the user's
        own session on its writer (found through RDS), then wait for the replica. Returns
        what was done, for the step's log line."""
        writer = self.rds.writer_for(current)
        positions: list[str | None] = []
        outcome = ["pending credentials already in effect on the writer"]

        def change(connection: ConnectionT, login: Login) -> None:
            if login.label != AWSPENDING:
                kept = self._apply_pending(connection, login, pending)
                outcome.append(_single_outcome(kept, login.label, " on the writer"))
            positions.append(self.engine.write_position(connection))

        used = self._log_in_with_first(
            self._single_user_logins(metadata, current, lambda: pending), current, change, server=writer
        )
        logger.info("password set on the writer", extra={"writer": writer.host, "label": used})
        self.replica_wait.for_position(replica, positions[-1])
        return outcome[-1]

    def _set_alternating(self, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        # Prove the secret's own credentials work on this host before the master
        # credentials act on it: the secret alone must not be able to point the master
        # user at another server or user (a confused deputy).
        self._log_in_with_first([(AWSCURRENT, current)], current, self._verify)
        master = self._master(current)
        with self._connect(self._master_login(current, master)) as connection:
            original = original_username(current.username)
            # The core proved this login above; engines read which account it opens.
            self.engine.set_alternate_user(
                connection,
                original=original,
                clone=partner_username(original),
                user=pending.username,
                password=pending.password,
                database=self._secret_database(current),
                current=self._login(current, AWSCURRENT),
            )
            on_reader = not same_host(current.host, master.host)
            position = self.engine.write_position(connection) if on_reader else None
        if position is not None:
            # The secret names a reader of the master's database: wait, in a session of the
            # current user (unchanged), until it has the pending user's password.
            self._log_in_with_first(
                [(AWSCURRENT, current)],
                current,
                lambda replica, _: self.replica_wait.for_position(replica, position),
            )
        return f"user {pending.username!r} set by the master user"

    def _set_dual(self, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        # The confused-deputy guard of alternating users, then the master user makes the
        # same user accept the pending and the current password (and no older one), so
        # that no session with AWSCURRENT is refused at any point of the rotation.
        self._log_in_with_first([(AWSCURRENT, current)], current, self._verify)
        master = self._master(current)
        with self._connect(self._master_login(current, master)) as connection:
            if not self.engine.add_password(
                connection, user=current.username, keep=current.password, new=pending.password
            ):
                raise DatabaseOperationError(
                    f"user {current.username!r} cannot hold two passwords on this server"
                )
        return f"user {pending.username!r} given the pending password by the master user"

    def _master_login(self, current: DatabaseSecret, master: DatabaseSecret) -> Login:
        """The master user's login for managing ``current``'s pair (setSecret and the
        preflight): on the secret's database for engines whose user management happens
        there, else on the master secret's own (the secret's when the master names none)."""
        dbname = current.dbname if self.engine.master_session_on_secret_database else master.dbname
        return self._login(master, "master", dbname=dbname or current.dbname)

    def _secret_database(self, secret: DatabaseSecret) -> str | None:
        """The database the alternating pair's privileges are compared on."""
        return secret.dbname or self.engine.default_dbname

    # -- logging in --------------------------------------------------------------------

    def _log_in_with_first(
        self,
        candidates: Iterable[tuple[str, DatabaseSecret]],
        current: DatabaseSecret,
        act: Callable[[ConnectionT, Login], None],
        server: Endpoint | None = None,
    ) -> str:
        """Log in with each labelled version in turn and run ``act`` in the first session
        the server accepts; returns that label. Only a refused login moves on to the next
        candidate: an unreachable server or a TLS failure stops at once. ``server`` logs in
        elsewhere than the secrets' host (a replica's writer).

        Where the server blocks an account after refused logins in a row (MariaDB's
        ``max_password_errors``, MySQL 8's ``FAILED_LOGIN_ATTEMPTS``) and an earlier
        step read that limit, it stops one refused login short of it, saying so: an
        account blocked until an administrator unblocks it is worse than a rotation that
        stops (an accepted login resets the count). The count is this container's
        (:attr:`refused`): the refused logins of earlier steps, retries and preflights
        count too, so a retried step may stop before its first login."""
        tried: list[str] = []
        last_error: DatabaseLoginError | None = None
        for label, secret in candidates:
            login = self._login(secret, label, server=server)
            account = account_key(login.host, login.port, login.username)
            self._check_lockout(account, login, tried, last_error)
            logger.debug("logging in", extra={"label": label, "user": login.username, "port": login.port})
            opened = False
            try:
                with self._connect(login) as connection:
                    opened = True
                    if self.refused.pop(account, 0) or tried:
                        self._note_lockout(connection, login, account)
                    self._remember_accepted(account, label)
                    act(connection, login)
            except DatabaseLoginError as error:
                if not opened:  # a login act() makes elsewhere (a writer) is not this account's
                    self._count_refused(account, label)
                tried.append(label)
                logger.warning("credentials refused", extra={"label": label, "user": secret.username})
                last_error = error
                continue
            return label
        where = f"{server.host}:{server.port}" if server else f"{current.host}:{self._port(current)}"
        if server is None and not current.host:
            where = f"the endpoint of {current.user_arn}"  # a managed user's, found by the engine
        raise DatabaseLoginError(
            f"user {current.username!r} could not log in to {where} with the {', '.join(tried)} credentials"
        ) from last_error

    def _check_lockout(
        self,
        account: tuple[str, int, str],
        login: Login,
        tried: list[str],
        last_error: DatabaseLoginError | None,
    ) -> None:
        """Raise DatabaseLoginError instead of a login that, refused, would reach the
        server's learnt limit for ``account`` (:attr:`lockouts`, :attr:`refused`)."""
        limit, refused = self.lockouts.get(account), self.refused.get(account, 0)
        if limit is None or refused < limit - 1:
            return
        here = f" ({', '.join(tried)} in this step)" if tried else ""
        raise DatabaseLoginError(
            f"user {login.username!r} on {login.host}:{login.port}: not logging in with the "
            f"{login.label} credentials: the database counts {refused} refused login{'s' * (refused != 1)} "
            f"in a row{here} and blocks the account after {limit} (until FLUSH PRIVILEGES), so this function "
            "tries no more logins for it while its container lives; put a labelled version's "
            "password back on the server (`secrets-rotation repair` in a new container, e.g. "
            "after any change to the function's configuration, says which), then retry"
        ) from last_error

    def _count_refused(self, account: tuple[str, int, str], label: str) -> None:
        """Count a refused login for ``account``; a remembered version refused is forgotten."""
        self.refused[account] = self.refused.get(account, 0) + 1
        if self.accepted.get(account) == label:
            del self.accepted[account]

    def _remember_accepted(self, account: tuple[str, int, str], label: str) -> None:
        """Note which version the database accepted for ``account`` (:attr:`accepted`);
        ``AWSCURRENT`` and ``AWSPENDING``, tried first anyway, are not kept."""
        if label in {AWSCURRENT, AWSPENDING}:
            self.accepted.pop(account, None)
        else:
            self.accepted[account] = label

    def _note_lockout(self, connection: ConnectionT, login: Login, account: tuple[str, int, str]) -> None:
        """Remember the server's lockout for ``account`` (see :attr:`lockouts`); a limit
        that cannot be read is not guessed."""
        try:
            lockout = self.engine.login_lockout(connection, login)
        except RotationError as error:
            logger.warning("login lockout not read", extra={"reason": str(error)})
            return
        if lockout.limit is None:
            self.lockouts.pop(account, None)
        else:
            self.lockouts[account] = lockout.limit

    def _connect(self, login: Login) -> AbstractContextManager[ConnectionT]:
        """A session for ``login``, bounded by the step's deadline (``Engine.connect``)."""
        return self.engine.connect(login)

    def _verify(self, connection: ConnectionT, login: Login) -> None:
        self.engine.verify_session(connection)

    def _verify_own_rotation(self, connection: ConnectionT, login: Login) -> None:
        self.engine.verify_session(connection)
        self.engine.check_own_rotation(connection, login)

    def _single_user_logins(
        self,
        metadata: SecretMetadata,
        current: DatabaseSecret,
        pending: Callable[[], DatabaseSecret | None],
    ) -> Iterator[tuple[str, DatabaseSecret]]:
        """Current first (the happy path: no refused login), then pending (an earlier
        attempt already changed the password), then the versions without a label created
        after the current one (an abandoned rotation whose ``AWSPENDING`` an operator
        removed: the database may hold its password), then previous (a password restored
        behind the rotation's back), then the older versions without a label; at most
        :data:`UNLABELLED_TRIED` unlabelled ones, newest first. Each is read only when the
        one before was refused.

        The likeliest first: where the server blocks an account after a few refused
        logins in a row (MariaDB ``max_password_errors``), which no session can read
        before one is accepted, an abandoned rotation is found before a guess at
        ``AWSPREVIOUS`` counts against the account. The version an earlier step in this
        container found the database holding (:attr:`accepted`) comes first of all: with
        a lockout limit of 2, ``AWSCURRENT`` refused again would leave no other try."""
        held = self.accepted.get(account_key(current.host, self._port(current), current.username))
        if held is None:
            yield AWSCURRENT, current
            yield from self._recovery_logins(metadata, current, pending)
            return
        # Read in full (only in a container that saw AWSCURRENT refused); a stable sort
        # keeps the others' order.
        found = [(AWSCURRENT, current), *self._recovery_logins(metadata, current, pending)]
        yield from sorted(found, key=lambda candidate: candidate[0] != held)

    def _recovery_logins(
        self,
        metadata: SecretMetadata,
        current: DatabaseSecret,
        pending: Callable[[], DatabaseSecret | None],
    ) -> Iterator[tuple[str, DatabaseSecret]]:
        """:meth:`_single_user_logins` after ``AWSCURRENT``, in the likeliest order."""
        pending_secret = pending()
        if pending_secret is not None:
            yield AWSPENDING, pending_secret
        newer, older = self.store.unlabelled_versions_around(
            metadata.arn, UNLABELLED_TRIED, metadata.version_with(AWSCURRENT)
        )
        yield from self._unlabelled(metadata, current, newer)
        previous_version = metadata.version_with(AWSPREVIOUS)
        if previous_version is not None:
            previous = self.store.version(metadata.arn, previous_version, AWSPREVIOUS)
            if self._same_user(previous, current):
                yield AWSPREVIOUS, previous
        yield from self._unlabelled(metadata, current, older)

    def _unlabelled(
        self, metadata: SecretMetadata, current: DatabaseSecret, version_ids: list[str]
    ) -> Iterator[tuple[str, DatabaseSecret]]:
        """The versions ``version_ids`` that are for ``current``'s user and server."""
        for version_id in version_ids:
            label = f"unlabelled version {version_id}"
            try:
                candidate = self.store.version(metadata.arn, version_id, label)
            except RotationError as error:
                # Not a secret of this shape (or not readable): it cannot be the one in effect.
                logger.warning("unlabelled version skipped", extra={"label": label, "reason": str(error)})
                continue
            if self._same_user(candidate, current):
                yield label, candidate

    def _same_user(self, secret: DatabaseSecret, current: DatabaseSecret) -> bool:
        """Whether another version is for the same user on the same server as ``current``."""
        return (
            secret.engine in self.engine.engines
            and self._same_server(secret, current)
            and secret.username == current.username
        )

    # -- reading and checking versions --------------------------------------------

    def _master(self, current: DatabaseSecret) -> DatabaseSecret:
        """The master secret (its server from RDS when RDS manages it), refused unless it
        is for the same server as ``current`` or RDS lists ``current``'s host as a reader
        endpoint, reader instance or read replica of the master's database."""
        master, topology = self._master_secret(current)
        self._validate_engine(master)
        try:
            self._require_same_server(master, current, "the master secret")
        except SecretMismatchError as mismatch:
            self._require_reader_of_master(master, current, topology, mismatch)
        # The master would change its own password: every secret that uses it would then
        # hold a master password the database refuses. Alternating users touch both users
        # of the pair; dual passwords touch the secret's own user only.
        if Strategy.of(current, self.engine) is Strategy.DUAL_PASSWORDS:
            if master.username == current.username:
                raise SecretMismatchError(
                    f"user {current.username!r} is the master secret's own user: "
                    "dual passwords need a master user apart from the secret's"
                )
            return master
        original = original_username(current.username)
        if master.username in (original, partner_username(original)):
            raise SecretMismatchError(
                f"user {current.username!r} is the master secret's own user (or its alternate): "
                "alternating users need a master user apart from the pair"
            )
        return master

    def _master_secret(self, current: DatabaseSecret) -> tuple[DatabaseSecret, Topology | None]:
        """The master secret's current value and RDS topology, as ``RdsDirectory.completed``
        gives them; the master's tags are read through the store."""
        masterarn = str(current.masterarn)
        raw = self.store.current_object(masterarn, MASTER_WHAT)
        why = "the master secret: the function reads its tags to find an RDS-managed master's database"
        return self.rds.completed(
            masterarn,
            raw,
            f"{MASTER_WHAT} {AWSCURRENT}",
            lambda: self.store.system_tags(masterarn, why),
            dbname=current.dbname,
        )

    def _require_reader_of_master(
        self,
        master: DatabaseSecret,
        current: DatabaseSecret,
        topology: Topology | None,
        mismatch: SecretMismatchError,
    ) -> None:
        """Accept ``current`` on another host of the master's RDS database; otherwise
        raise ``mismatch``, with what RDS said."""
        database = topology or self.rds.shared_database(master, current)
        if database is None:
            raise mismatch
        if not self.rds.serves(database, current.host):
            raise SecretMismatchError(
                f"{mismatch}; RDS does not list {current.host} as a host of {database.name}, "
                "the master secret's database"
            ) from None
        logger.info("the secret's host serves the master's database", extra={"database": database.name})

    def _stored_pending(
        self, request: RotationEvent, metadata: SecretMetadata, current: DatabaseSecret
    ) -> DatabaseSecret | None:
        """The pending version if an earlier attempt stored it (validated), else None."""
        try:
            return self._pending(request, metadata, current)
        except StagingError:
            return None

    def _current(self, metadata: SecretMetadata) -> DatabaseSecret:
        version = metadata.version_with(AWSCURRENT)
        if version is None:
            raise StagingError(f"secret {metadata.arn} has no version labelled {AWSCURRENT}")
        current = self.store.version(metadata.arn, version, AWSCURRENT)
        self._validate_engine(current)
        if current.user_arn and current.masterarn:
            # A managed user's passwords change through the service's API with the
            # function's role: a master session would act on the master's own user.
            raise SecretFormatError(
                f"secret version {current.where} has both 'user_arn' and 'masterarn': a managed "
                "(ElastiCache or MemoryDB) user rotates without a master secret"
            )
        if Strategy.of(current, self.engine) is Strategy.ALTERNATING_USERS:
            longest = max(len(current.username), len(partner_username(current.username)))
            limit = self.engine.username_limit(current.engine)
            if longest > limit:
                raise SecretFormatError(
                    f"user names {current.username!r} and {partner_username(current.username)!r} "
                    f"must fit in {limit} characters for alternating users on {current.engine!r}"
                )
        return current

    def _pending(
        self, request: RotationEvent, metadata: SecretMetadata, current: DatabaseSecret
    ) -> DatabaseSecret:
        pending = self.store.version(metadata.arn, request.token, AWSPENDING)
        self._validate_engine(pending)
        self._require_same_server(pending, current, f"the {AWSPENDING} version")
        expected = current.username
        if Strategy.of(current, self.engine) is Strategy.ALTERNATING_USERS:
            expected = partner_username(current.username)
        if pending.username != expected:
            raise SecretMismatchError(
                f"the {AWSPENDING} version is for user {pending.username!r}; "
                f"the {Strategy.of(current, self.engine).value} strategy expects {expected!r}"
            )
        if pending.masterarn != current.masterarn:
            raise SecretMismatchError(
                f"the {AWSPENDING} version's 'masterarn' differs from {AWSCURRENT}'s: "
                "the strategy cannot change in the middle of a rotation"
            )
        if pending.password == current.password:
            raise SecretMismatchError(f"the {AWSPENDING} version has the same password as {AWSCURRENT}")
        return pending

    def _server(self, secret: DatabaseSecret) -> tuple[str, int]:
        """The server a version names: host (case-insensitive) and port, the engine's
        default port when the version has none, so that two descriptions of one server
        compare equal."""
        return normal_host(secret.host), self._port(secret)

    def _same_server(self, secret: DatabaseSecret, current: DatabaseSecret) -> bool:
        # A managed (ElastiCache, MemoryDB) user may have no endpoint at all: its user ARN
        # is then what names where its passwords live.
        return self._server(secret) == self._server(current) and secret.user_arn == current.user_arn

    def _require_same_server(self, secret: DatabaseSecret, current: DatabaseSecret, what: str) -> None:
        if not self._same_server(secret, current):
            raise SecretMismatchError(
                f"{what} is for {self._named(secret)} but {AWSCURRENT} is for {self._named(current)}"
            )

    def _named(self, secret: DatabaseSecret) -> str:
        """Where a version's credentials live: host:port, and the managed user's ARN."""
        where = f"{secret.host}:{self._port(secret)}"
        if secret.user_arn is None:
            return where
        return f"user_arn {secret.user_arn} at {where}" if secret.host else f"user_arn {secret.user_arn}"

    def _validate_engine(self, secret: DatabaseSecret) -> None:
        if secret.engine not in self.engine.engines:
            served = ", ".join(sorted(self.engine.engines))
            raise SecretFormatError(
                f"secret version {secret.where} has engine {secret.engine!r}; this function serves {served}"
            )

    def _port(self, secret: DatabaseSecret) -> int:
        return secret.port or self.engine.default_port

    def _login(
        self, secret: DatabaseSecret, label: str, dbname: str | None = None, server: Endpoint | None = None
    ) -> Login:
        """``secret``'s login; ``server``: on another host than the secret's (a replica's writer)."""
        login = Login.for_secret(self.engine, secret, label, self.settings, dbname)
        return login if server is None else dataclasses.replace(login, host=server.host, port=server.port)
