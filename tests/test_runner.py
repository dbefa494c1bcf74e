"""The README's main command: a whole local rotation on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ([], ["[4/4] finishSecret done", "old password refused by the server"]),
        (
            ["--strategy", "alternating", "--rotations", "2"],
            ["rotation 2/2", "acting as 'app_user'", "previous user 'app_user_clone' still logs in"],
        ),
        (
            ["--engine", "mariadb", "--strategy", "alternating"],
            ["throwaway mariadb", "[4/4] finishSecret done", "previous user 'app_user' still logs in"],
        ),
        (["--engine", "mariadb"], ["[4/4] finishSecret done", "old password refused by the server"]),
        (["--engine", "mongodb"], ["[4/4] finishSecret done", "old password refused by the server"]),
        (["--engine", "redshift", "--strategy", "alternating"], ["[4/4] finishSecret done", "still logs in"]),
    ],
)
def test_local_runner_rotates_for_real(arguments: list[str], expected: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.rotate", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for text in expected:
        assert text in result.stdout
    assert "logins refused by the server during the rotation: 0" in result.stdout
    assert "Traceback" not in result.stderr
