"""The ``secrets-rotation`` command: ``doctor``, ``status`` and ``repair``.

Exit status: 0 when all is well (or, for ``repair``, the plan was shown or carried out),
1 when a check failed, a secret is stuck or overdue, or a repair was refused or failed,
2 for a usage error, 3 when ``repair --apply`` started a rotation that was still running
when ``--wait`` ran out (not a failure: check ``secrets-rotation status``). Imports boto3
only when a subcommand runs.
"""

from __future__ import annotations

import argparse
import io
import sys
from typing import TYPE_CHECKING, TextIO

from operator_tools.suite import DEFAULT_WAIT_S

if TYPE_CHECKING:
    from collections.abc import Sequence

    from operator_tools.aws import Aws

#: ``repair --apply`` started a rotation still running when the wait ran out.
EXIT_IN_PROGRESS = 3


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="secrets-rotation", description="Check, list and repair Secrets Manager rotations of this suite."
    )
    root.add_argument("--region", help="AWS region (default: the profile's or AWS_DEFAULT_REGION)")
    root.add_argument("--profile", help="AWS profile name")
    commands = root.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser(
        "doctor", help="check one secret and its rotation function, one line per check"
    )
    doctor.add_argument("secret", help="secret name or ARN")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    add_max_refused(doctor)
    status = commands.add_parser("status", help="every secret this suite's functions rotate, one row each")
    status.add_argument(
        "--stack", default="secrets-rotation", help="the stack of the functions (default: %(default)s)"
    )
    status.add_argument(
        "--function",
        action="append",
        default=[],
        help="a function name or ARN (repeatable; replaces --stack)",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    repair = commands.add_parser(
        "repair", help="get a stuck rotation going again (shows the plan; --apply acts)"
    )
    repair.add_argument("secret", help="secret name or ARN")
    repair.add_argument(
        "--function",
        help="function to run the preflight (default: the secret's rotation function; another "
        "function refuses: a preflight answers only for its own secrets)",
    )
    repair.add_argument("--apply", action="store_true", help="carry out the plan")
    repair.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help="how long --apply waits for a rotation it started (default: %(default)g); "
        f"exit status {EXIT_IN_PROGRESS} when it is still running then",
    )
    repair.add_argument("--json", action="store_true", help="print JSON")
    add_max_refused(repair)
    return root


def add_max_refused(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-refused-logins",
        type=int,
        metavar="N",
        help="let the preflight risk N refused logins in a row per user (default: the function's, "
        "2; never as many as the server's lockout, where it can read it): every refused login "
        "counts towards MariaDB's max_password_errors or MySQL's FAILED_LOGIN_ATTEMPTS",
    )


def main(argv: Sequence[str] | None = None, *, aws: Aws | None = None, out: TextIO | None = None) -> int:
    arguments = parser().parse_args(argv)
    out = out or sys.stdout
    if aws is None:
        from operator_tools.aws import Aws

        aws = Aws(arguments.region, profile=arguments.profile)
    from operator_tools.aws import AWS_ERRORS, ToolError

    try:
        if arguments.command == "doctor":
            return run_doctor(aws, arguments, out)
        if arguments.command == "status":
            return run_status(aws, arguments, out)
        return run_repair(aws, arguments, out)
    except (ToolError, *AWS_ERRORS) as error:
        print(f"secrets-rotation: {error}", file=sys.stderr)
        return 1


def run_doctor(aws: Aws, arguments: argparse.Namespace, out: TextIO) -> int:
    """Everything the doctor prints goes through the mask of the secret's credentials."""
    from operator_tools.doctor import diagnose
    from operator_tools.masking import Masker
    from operator_tools.report import print_json, print_results, results_json

    masker = Masker()
    results = diagnose(aws, arguments.secret, masker, arguments.max_refused_logins)
    ok = not any(result.status == "fail" for result in results)
    shown = io.StringIO()
    if arguments.json:
        print_json({"secret": arguments.secret, "ok": ok, "checks": results_json(results)}, shown)
    else:
        print_results(f"secrets-rotation doctor {arguments.secret} ({aws.region})", results, shown)
    out.write(masker.mask(shown.getvalue()))
    return 0 if ok else 1


def run_status(aws: Aws, arguments: argparse.Namespace, out: TextIO) -> int:
    from operator_tools.report import print_json
    from operator_tools.status import collect, rows_json, suite_functions, table

    functions = suite_functions(aws, arguments.stack, arguments.function)
    rows = collect(aws, functions)
    ok = not any(row.stuck or row.overdue for row in rows)
    if arguments.json:
        print_json({"functions": sorted(functions), "ok": ok, "secrets": rows_json(rows)}, out)
    else:
        print("\n".join(table(rows)), file=out)
        by = ", ".join(sorted(functions)) or "no function"
        print(f"{len(rows)} secret{'s' if len(rows) != 1 else ''} rotated by {by}", file=out)
    return 0 if ok else 1


def run_repair(aws: Aws, arguments: argparse.Namespace, out: TextIO) -> int:
    from operator_tools.repair import Repair
    from operator_tools.report import print_json

    repair = Repair(
        aws,
        arguments.secret,
        arguments.function,
        wait_s=arguments.wait,
        max_refused=arguments.max_refused_logins,
    )
    plan = repair.plan()
    document = {
        "secret": repair.arn or arguments.secret,
        "plan": plan.kind,
        "reason": plan.reason,
        "actions": plan.actions,
        "applied": False,
    }
    outcome = None
    acts = plan.kind not in ("refuse", "nothing to do")
    if arguments.apply and acts:
        outcome = repair.apply(plan)
        document |= {"applied": True, "finished": outcome.finished, "outcome": outcome.message}
    if arguments.json:
        print_json(document, out)
    else:
        print(f"secrets-rotation repair {arguments.secret}: {plan.kind}", file=out)
        print(f"  why: {plan.reason}", file=out)
        for number, line in enumerate(plan.describe(), 1):
            print(f"  {number}. {line}", file=out)
        if acts and not arguments.apply:
            print("  nothing changed: run again with --apply to carry this out", file=out)
        if outcome:
            print(f"  {outcome.message}", file=out)
    if outcome is not None and not outcome.finished:
        return EXIT_IN_PROGRESS
    return 1 if plan.kind == "refuse" else 0


if __name__ == "__main__":
    sys.exit(main())
