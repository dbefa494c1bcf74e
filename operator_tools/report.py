"""Check results and how the tools print them: one line per check, or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal, TextIO

#: ``unknown``: could not be verified; ``info``: a finding that is neither pass nor fail.
Status = Literal["pass", "fail", "unknown", "skipped", "info"]
MARKS: dict[Status, str] = {"pass": "✔", "fail": "✘", "unknown": "?", "skipped": "-", "info": "·"}


@dataclass(frozen=True)
class Result:
    """One check: ``reason`` says what was found, ``fix`` what to do when it is not a pass.
    Neither ever holds a secret value."""

    check: str
    status: Status
    reason: str
    fix: str = ""


def passed(check: str, reason: str) -> Result:
    return Result(check, "pass", reason)


def failed(check: str, reason: str, fix: str) -> Result:
    return Result(check, "fail", reason, fix)


def unknown(check: str, reason: str, fix: str = "") -> Result:
    return Result(check, "unknown", reason, fix)


def skipped(check: str, reason: str) -> Result:
    return Result(check, "skipped", reason)


def print_results(title: str, results: list[Result], out: TextIO) -> None:
    width = max((len(result.check) for result in results), default=0)
    print(title, file=out)
    for result in results:
        print(f"{MARKS[result.status]} {result.check:<{width}}  {result.reason}", file=out)
        if result.fix and result.status in ("fail", "unknown"):
            print(f"  {'':<{width}}  fix: {result.fix}", file=out)
    failures = sum(result.status == "fail" for result in results)
    print(
        f"{failures} check{'s' if failures != 1 else ''} failed" if failures else "all checks passed",
        file=out,
    )


def print_json(document: dict[str, Any], out: TextIO) -> None:
    json.dump(document, out, indent=2, default=str)
    print(file=out)


def results_json(results: list[Result]) -> list[dict[str, Any]]:
    return [asdict(result) for result in results]
