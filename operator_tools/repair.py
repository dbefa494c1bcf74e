"""``repair SECRET``: get a stuck rotation going again, with the database as the judge.

The deployed function's preflight logs in with every version (labelled ones, and the
newest unlabelled ones, which the database may hold after an abandoned rotation) and
says which the database accepts (it stops trying a user's versions before refused logins
could block the account: ``--max-refused-logins`` asks for more, and the plan's reason
says when it stopped). From that, one plan:

* **discard**: ``AWSCURRENT``'s credentials are accepted: remove ``AWSPENDING`` from the
  stale version (its credentials were never put in effect, or, alternating users, the
  original still works and the next rotation sets the other user again);
* **complete**: ``AWSCURRENT``'s are refused and ``AWSPENDING``'s accepted (setSecret ran):
  move ``AWSCURRENT`` to the pending version, then remove ``AWSPENDING``;
* **hand over**: a single user's ``AWSCURRENT`` is refused and ``AWSPREVIOUS`` accepted
  (a password restored behind the rotation's back): clear a stale ``AWSPENDING`` and start
  a rotation, whose setSecret recovers with ``AWSPREVIOUS``;
* **restore**: otherwise, when some other version is accepted: ``AWSCURRENT`` moves to it.

Every plan keeps the secret's user: it moves a label only to a version of ``AWSCURRENT``'s
own user (single user) or of its alternating pair (``name``/``name_clone``), from the
preflight's ``relation``. A version of another user (the secret was moved to another user
by PutSecretValue) is never made current: repair cannot tell which user is the intended
one, and refuses. "hand over" is chosen only when the rotation's own recovery would
find the accepted credentials (``AWSPREVIOUS`` of the same user on the same server).

For a single user whose secret names a read replica, the database is the writer: the
preflight tries the versions there (the replica may lag, accepting a password its writer
has replaced), and repair refuses when the writer cannot be found.

It refuses when it cannot tell: the database could not be reached, or accepts none of
the versions (of the secret's user). ``AWSCURRENT`` and ``AWSPENDING`` never end on credentials the database
refused; ``AWSPREVIOUS`` follows ``AWSCURRENT`` as in every rotation. For alternating
users, "complete" and "restore" move ``AWSCURRENT`` only to a version that also passes
the proof finishSecret requires (the user acts with the original user's privileges, the
preflight's ``privileges``): repair never makes current what rotation itself would refuse.
Nothing changes without ``--apply``; after it, a second preflight must find ``AWSCURRENT``
accepted (and, where ``AWSCURRENT`` moved, passing that proof).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from operator_tools.aws import AWSCURRENT, AWSPENDING, AWSPREVIOUS, ToolError, stuck_pending, version_with
from operator_tools.suite import DEFAULT_WAIT_S

if TYPE_CHECKING:
    from operator_tools.aws import Aws

Kind = Literal["nothing to do", "discard", "complete", "hand over", "restore", "refuse"]
#: How many of the newest unlabelled versions the preflight tries. More than a rotation
#: itself tries (``common.rotation.UNLABELLED_TRIED``, 3): repair is what runs after the
#: rotation's own recovery failed, e.g. after several abandoned rotations each left a
#: version, and it only reads (a rotation pays a refused login for every one it tries).
UNLABELLED_TRIED = 5
#: The longest pause between two polls of a rotation ``--apply`` started (the pause starts
#: at 1 s and doubles).
MAX_POLL_S = 15.0


@dataclass
class Plan:
    kind: Kind
    reason: str
    actions: list[dict[str, str]] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = []
        for action in self.actions:
            if action["call"] == "RotateSecret":
                lines.append("start a rotation (RotateSecret)")
            elif "MoveToVersionId" in action:
                source = f" from {action['RemoveFromVersionId']}" if action.get("RemoveFromVersionId") else ""
                lines.append(f"move {action['VersionStage']} to version {action['MoveToVersionId']}{source}")
            else:
                lines.append(f"remove {action['VersionStage']} from version {action['RemoveFromVersionId']}")
        return lines


def may_become_current(login: dict[str, Any], strategy: str | None) -> bool:
    """Whether a version's credentials may be made ``AWSCURRENT``: the database accepts
    them and, for alternating users, the user passed finishSecret's privilege proof (a
    function too old to report it gets no label moved)."""
    if login.get("outcome") != "accepted":
        return False
    return strategy != "alternating-users" or login.get("privileges") is True


def own_user(login: dict[str, Any], current_user: object, strategy: str | None) -> bool:
    """Whether a version holds ``AWSCURRENT``'s user (single user) or a user of its
    alternating pair: the preflight's ``relation``, or for a function too old to report
    it, the user names compared (where it reports none, as before: it is accepted)."""
    relation = login.get("relation")
    if AWSCURRENT in (login.get("labels") or []):
        return True
    if relation is None:
        user = login.get("user")
        if not isinstance(user, str) or not isinstance(current_user, str):
            # A function too old to name the users: the privilege proof still guards.
            return True
        relation = (
            "same user" if user == current_user else "pair" if _pair(user, current_user) else "other user"
        )
    return relation == "same user" or (relation == "pair" and strategy == "alternating-users")


def _pair(user: str, other: str) -> bool:
    suffix = "_clone"
    return user.removesuffix(suffix) == other.removesuffix(suffix)


def decide(versions: dict[str, list[str]], report: dict[str, Any]) -> Plan:  # noqa: PLR0911 - one per plan
    """The plan for a secret's labels (``VersionIdsToStages``) and a preflight report."""
    logins, strategy = report.get("logins", []), report.get("strategy")
    current_user = next((x.get("user") for x in logins if AWSCURRENT in (x.get("labels") or [])), None)
    logins = [login for login in logins if own_user(login, current_user, strategy)]
    others = [
        login for login in report.get("logins", []) if login not in logins and login["outcome"] == "accepted"
    ]
    # Only the secret's own user's versions count from here on.
    outcome = {login["version"]: login["outcome"] for login in logins}
    usable = {login["version"] for login in logins if may_become_current(login, strategy)}
    unreachable = [
        login for login in report.get("logins", []) if login["outcome"] in {"unreachable", "blocked"}
    ]
    if unreachable:
        return Plan(
            "refuse", f"cannot tell: {unreachable[0].get('detail') or 'the database could not be reached'}"
        )
    replica = _check(report, "replica")
    if replica is not None and replica.get("ok") is False:
        # A replica that lags accepts what its writer replaced: its answers cannot judge.
        return Plan("refuse", f"cannot tell: {replica.get('detail')} ({replica.get('fix', '')})")
    current, pending = version_with(versions, AWSCURRENT), stuck_pending(versions)
    if current is None:
        return Plan("refuse", f"cannot tell: no version is labelled {AWSCURRENT}")
    if outcome.get(current) == "accepted":
        if pending is None:
            return Plan(
                "nothing to do", f"the database accepts {AWSCURRENT}'s credentials and no rotation is stuck"
            )
        return Plan(
            "discard",
            f"the database accepts {AWSCURRENT}'s credentials; the stale {AWSPENDING} version's "
            "are not needed",
            [_remove(AWSPENDING, pending)],
        )
    if pending is not None and pending in usable:
        return Plan(
            "complete",
            f"the database accepts the {AWSPENDING} version's credentials and refuses {AWSCURRENT}'s: "
            "setSecret ran, finishSecret did not",
            [_move(AWSCURRENT, pending, current), _remove(AWSPENDING, pending)],
        )
    clear = [_remove(AWSPENDING, pending)] if pending is not None else []
    previous = version_with(versions, AWSPREVIOUS)
    if previous is not None and outcome.get(previous) == "accepted" and strategy == "single-user":
        return Plan(
            "hand over",
            f"the database accepts {AWSPREVIOUS}'s credentials: the function's setSecret recovers with them",
            [*clear, {"call": "RotateSecret"}],
        )
    accepted = next((login["version"] for login in logins if login["version"] in usable), None)
    if accepted is None:
        unproven = next((login for login in logins if login["outcome"] == "accepted"), None)
        if unproven is None and others:
            return Plan(
                "refuse",
                f"cannot tell: the database refuses {AWSCURRENT}'s credentials (user {current_user!r}) "
                f"and accepts only another user's, version {others[0]['version']}'s (user "
                f"{others[0].get('user')!r}); repair never switches the secret to another user: "
                f"set {current_user!r}'s password to the {AWSCURRENT} version's by hand, or store "
                "the intended user's credentials as a new version",
            )
        if unproven is not None:
            return Plan(
                "refuse",
                f"the database accepts version {unproven['version']}'s credentials, but user "
                f"{unproven.get('user')!r} does not pass the privilege proof a rotation requires "
                f"({unproven.get('detail') or 'not reported: update the function'}); grant it the "
                "original user's privileges, then run repair again",
            )
        return Plan(
            "refuse",
            "cannot tell: the database accepts none of the versions' credentials; set the user's password "
            f"to the {AWSCURRENT} version's by hand, then run doctor",
        )
    return Plan(
        "restore",
        f"the database accepts version {accepted}'s credentials and refuses {AWSCURRENT}'s",
        [*clear, _move(AWSCURRENT, accepted, current)],
    )


def _check(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The preflight report's check ``name``, if it made one."""
    found: dict[str, Any] | None = next((c for c in report.get("checks", []) if c.get("check") == name), None)
    return found


def _remove(label: str, version: str) -> dict[str, str]:
    return {"call": "UpdateSecretVersionStage", "VersionStage": label, "RemoveFromVersionId": version}


def _move(label: str, to: str, source: str | None) -> dict[str, str]:
    action = {"call": "UpdateSecretVersionStage", "VersionStage": label, "MoveToVersionId": to}
    if source:
        action["RemoveFromVersionId"] = source
    return action


@dataclass(frozen=True)
class Outcome:
    """What ``--apply`` came to: ``finished`` False when the rotation it started was still
    running when the wait ran out (not a failure: the function may yet finish it)."""

    finished: bool
    message: str


@dataclass
class Repair:
    """A repair of one secret: ``plan()`` looks, ``apply()`` acts.

    ``wait_s`` bounds how long ``apply()`` waits for a rotation it started ("hand over"):
    ``RotateSecret`` only starts one, and Secrets Manager runs the four steps afterwards."""

    aws: Aws
    secret_id: str
    function: str | None = None
    wait_s: float = DEFAULT_WAIT_S
    max_refused: int | None = None
    arn: str = ""
    versions: dict[str, list[str]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def plan(self) -> Plan:
        secret = self.aws.client("secretsmanager").describe_secret(SecretId=self.secret_id)
        self.arn, self.versions = secret["ARN"], dict(secret.get("VersionIdsToStages", {}))
        self.function = self.function or secret.get("RotationLambdaARN")
        if not self.function:
            return Plan(
                "refuse",
                "cannot tell: the secret has no rotation function, and a function's preflight "
                "answers only for its own secrets",
            )
        self.report = self.aws.preflight(self.function, self.arn, self._unlabelled(), self.max_refused)
        if self.report.get("secret") is None or not self.report.get("logins"):
            failing = [c for c in self.report.get("checks", []) if c.get("ok") is False]
            why = failing[0]["detail"] if failing else "the preflight tried no login"
            return Plan("refuse", f"cannot tell: {why}")
        plan = decide(self.versions, self.report)
        stopped = _check(self.report, "logins stopped")
        if stopped is not None:
            # The plan rests on fewer versions than asked for: say so, and how to try more.
            plan.reason += f"; the preflight {stopped['detail']} ({stopped.get('fix', '')})"
        replica = _check(self.report, "replica")
        if replica is not None and replica.get("ok") is True:
            plan.reason += f"; {replica['detail']}"
        return plan

    def _unlabelled(self) -> list[str]:
        """The newest unlabelled versions, newest first, ties in the listing's order later
        first: the order of the rotation's own ``SecretStore.unlabelled_versions``, which
        this command cannot import (it is installed alone, with boto3 only)."""
        listed = self.aws.client("secretsmanager").list_secret_version_ids(
            SecretId=self.arn, IncludeDeprecated=True, MaxResults=100
        )["Versions"]
        order = sorted(range(len(listed)), key=lambda i: (_timestamp(listed[i].get("CreatedDate")), i))
        newest = [listed[i] for i in reversed(order) if not listed[i].get("VersionStages")]
        return [str(v["VersionId"]) for v in newest[:UNLABELLED_TRIED]]

    def apply(self, plan: Plan) -> Outcome:
        """Carry out ``plan``, wait (at most ``wait_s``) for a rotation it started, then prove
        with a second preflight that ``AWSCURRENT``'s credentials are accepted; ToolError when
        anything moved under us or the proof fails."""
        sm = self.aws.client("secretsmanager")
        now_labels = dict(sm.describe_secret(SecretId=self.arn).get("VersionIdsToStages", {}))
        if now_labels != self.versions:
            raise ToolError(
                "the labels changed since the preflight (a rotation running?): nothing done; run repair again"
            )
        started = None
        for action in plan.actions:
            if action["call"] == "RotateSecret":
                started = self.aws.start_rotation(self.arn)
            else:
                sm.update_secret_version_stage(
                    SecretId=self.arn, **{k: v for k, v in action.items() if k != "call"}
                )
        if started is not None and not self._rotated(started):
            return Outcome(
                False,
                f"rotation started (version {started}), not finished within {self.wait_s:g} s; "
                "check `secrets-rotation status`",
            )
        return Outcome(True, self._prove(moved=any("MoveToVersionId" in a for a in plan.actions)))

    def _rotated(self, version: str) -> bool:
        """Wait, polling DescribeSecret with back-off, until ``version`` is ``AWSCURRENT``
        and no ``AWSPENDING`` is left; False when ``wait_s`` ran out first."""
        sm, deadline, delay = self.aws.client("secretsmanager"), self.aws.clock() + self.wait_s, 1.0
        seen = False
        while True:
            labels = dict(sm.describe_secret(SecretId=self.arn).get("VersionIdsToStages", {}))
            if AWSCURRENT in labels.get(version, []) and stuck_pending(labels) is None:
                return True
            # Seen pending once, then neither pending nor current: it will not finish.
            held = {AWSCURRENT, AWSPENDING} & set(labels.get(version, []))
            if seen and not held:
                raise ToolError(
                    f"the rotation repair started (version {version}) lost {AWSPENDING} without becoming "
                    f"{AWSCURRENT}: someone cancelled it; run doctor"
                )
            seen = seen or bool(held)
            remaining = deadline - self.aws.clock()
            if remaining <= 0:
                return False
            self.aws.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_POLL_S)

    def _prove(self, *, moved: bool) -> str:
        """The second preflight: ``AWSCURRENT`` accepted (and, where the repair moved it,
        fit to be current: :func:`may_become_current`), no rotation stuck."""
        assert self.function is not None  # plan() refused otherwise
        after = dict(
            self.aws.client("secretsmanager").describe_secret(SecretId=self.arn).get("VersionIdsToStages", {})
        )
        report = self.aws.preflight(self.function, self.arn)
        current = version_with(after, AWSCURRENT)
        login: dict[str, Any] = next((x for x in report.get("logins", []) if x["version"] == current), {})
        if login.get("outcome") != "accepted" or (
            moved and not may_become_current(login, report.get("strategy"))
        ):
            raise ToolError(
                f"after the repair the database does not accept {AWSCURRENT}'s credentials ({current})"
            )
        stuck = stuck_pending(after)
        if stuck is not None:
            raise ToolError(f"after the repair version {stuck} is still labelled {AWSPENDING}")
        return f"done: the database accepts {AWSCURRENT} (version {current}); no rotation is stuck"


def _timestamp(created: object) -> float:
    return created.timestamp() if isinstance(created, datetime) else 0.0
