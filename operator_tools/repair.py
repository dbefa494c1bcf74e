"""``repair SECRET``: get a stuck rotation going again, with the database as the judge.

The deployed function's preflight logs in with every version (labelled ones, and the
newest unlabelled ones, which the database may hold after an abandoned rotation) and
says which the database accepts. From that, one plan:

* **discard**: ``AWSCURRENT``'s credentials are accepted: remove ``AWSPENDING`` from the
  stale version (its credentials were never put in effect, or, alternating users, the
  original still works and the next rotation sets the other user again);
* **complete**: ``AWSCURRENT``'s are refused and ``AWSPENDING``'s accepted (setSecret ran):
  move ``AWSCURRENT`` to the pending version, then remove ``AWSPENDING``;
* **hand over**: a single user's ``AWSCURRENT`` is refused and ``AWSPREVIOUS`` accepted
  (a password restored behind the rotation's back): clear a stale ``AWSPENDING`` and start
  a rotation, whose setSecret recovers with ``AWSPREVIOUS``;
* **restore**: otherwise, when some other version is accepted: ``AWSCURRENT`` moves to it.

It refuses when it cannot tell: the database could not be reached, or accepts none of
the versions. ``AWSCURRENT`` and ``AWSPENDING`` never end on credentials the database
refused; ``AWSPREVIOUS`` follows ``AWSCURRENT`` as in every rotation. Nothing changes
without ``--apply``; after it, a second preflight must find ``AWSCURRENT`` accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from operator_tools.aws import AWSCURRENT, AWSPENDING, AWSPREVIOUS, ToolError, stuck_pending, version_with

if TYPE_CHECKING:
    from operator_tools.aws import Aws

Kind = Literal["nothing to do", "discard", "complete", "hand over", "restore", "refuse"]
#: How many of the newest unlabelled versions the preflight tries.
UNLABELLED_TRIED = 5


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


def decide(versions: dict[str, list[str]], report: dict[str, Any]) -> Plan:  # noqa: PLR0911 - one per plan
    """The plan for a secret's labels (``VersionIdsToStages``) and a preflight report."""
    outcome = {login["version"]: login["outcome"] for login in report.get("logins", [])}
    unreachable = [login for login in report.get("logins", []) if login["outcome"] == "unreachable"]
    if unreachable:
        return Plan(
            "refuse", f"cannot tell: {unreachable[0].get('detail') or 'the database could not be reached'}"
        )
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
    if pending is not None and outcome.get(pending) == "accepted":
        return Plan(
            "complete",
            f"the database accepts the {AWSPENDING} version's credentials and refuses {AWSCURRENT}'s: "
            "setSecret ran, finishSecret did not",
            [_move(AWSCURRENT, pending, current), _remove(AWSPENDING, pending)],
        )
    clear = [_remove(AWSPENDING, pending)] if pending is not None else []
    previous = version_with(versions, AWSPREVIOUS)
    if (
        previous is not None
        and outcome.get(previous) == "accepted"
        and report.get("strategy") == "single-user"
    ):
        return Plan(
            "hand over",
            f"the database accepts {AWSPREVIOUS}'s credentials: the function's setSecret recovers with them",
            [*clear, {"call": "RotateSecret"}],
        )
    accepted = next(
        (login["version"] for login in report.get("logins", []) if login["outcome"] == "accepted"), None
    )
    if accepted is None:
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


def _remove(label: str, version: str) -> dict[str, str]:
    return {"call": "UpdateSecretVersionStage", "VersionStage": label, "RemoveFromVersionId": version}


def _move(label: str, to: str, source: str | None) -> dict[str, str]:
    action = {"call": "UpdateSecretVersionStage", "VersionStage": label, "MoveToVersionId": to}
    if source:
        action["RemoveFromVersionId"] = source
    return action


@dataclass
class Repair:
    """A repair of one secret: ``plan()`` looks, ``apply()`` acts."""

    aws: Aws
    secret_id: str
    function: str | None = None
    arn: str = ""
    versions: dict[str, list[str]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def plan(self) -> Plan:
        secret = self.aws.client("secretsmanager").describe_secret(SecretId=self.secret_id)
        self.arn, self.versions = secret["ARN"], dict(secret.get("VersionIdsToStages", {}))
        self.function = self.function or secret.get("RotationLambdaARN")
        if not self.function:
            return Plan(
                "refuse", "cannot tell: the secret has no rotation function to run the preflight (--function)"
            )
        self.report = self.aws.preflight(self.function, self.arn, self._unlabelled())
        if self.report.get("secret") is None or not self.report.get("logins"):
            failing = [c for c in self.report.get("checks", []) if c.get("ok") is False]
            why = failing[0]["detail"] if failing else "the preflight tried no login"
            return Plan("refuse", f"cannot tell: {why}")
        return decide(self.versions, self.report)

    def _unlabelled(self) -> list[str]:
        listed = self.aws.client("secretsmanager").list_secret_version_ids(
            SecretId=self.arn, IncludeDeprecated=True
        )
        unlabelled = [v for v in listed["Versions"] if not v.get("VersionStages")]
        unlabelled.sort(key=lambda v: v.get("CreatedDate") or 0, reverse=True)
        return [v["VersionId"] for v in unlabelled[:UNLABELLED_TRIED]]

    def apply(self, plan: Plan) -> str:
        """Carry out ``plan``, then prove with a second preflight that ``AWSCURRENT``'s
        credentials are accepted; ToolError when anything moved under us or the proof fails."""
        sm = self.aws.client("secretsmanager")
        now_labels = dict(sm.describe_secret(SecretId=self.arn).get("VersionIdsToStages", {}))
        if now_labels != self.versions:
            raise ToolError(
                "the labels changed since the preflight (a rotation running?): nothing done; run repair again"
            )
        for action in plan.actions:
            if action["call"] == "RotateSecret":
                self.aws.start_rotation(self.arn)
            else:
                sm.update_secret_version_stage(
                    SecretId=self.arn, **{k: v for k, v in action.items() if k != "call"}
                )
        assert self.function is not None  # plan() refused otherwise
        after = dict(sm.describe_secret(SecretId=self.arn).get("VersionIdsToStages", {}))
        report = self.aws.preflight(self.function, self.arn)
        current = version_with(after, AWSCURRENT)
        outcome = {login["version"]: login["outcome"] for login in report.get("logins", [])}
        if outcome.get(current or "") != "accepted":
            raise ToolError(
                f"after the repair the database does not accept {AWSCURRENT}'s credentials ({current})"
            )
        stuck = stuck_pending(after)
        if stuck is not None:
            raise ToolError(f"after the repair version {stuck} is still labelled {AWSPENDING}")
        return f"done: the database accepts {AWSCURRENT} (version {current}); no rotation is stuck"
