"""`pip install .` gives the `secrets-rotation` command and needs boto3 only."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = set(sys.stdlib_module_names) | {"boto3", "botocore", "operator_tools"}


def test_the_tool_imports_nothing_but_the_standard_library_and_boto3() -> None:
    for module in sorted((ROOT / "operator_tools").glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in ALLOWED, f"{module.name} imports {name}"


def test_the_wheel_holds_the_command_and_requires_boto3_only(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = tmp_path.glob("secrets_rotation-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"operator_tools"}
    assert "secrets-rotation = operator_tools.cli:main" in entry_points
    requires = [
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    ]
    assert [requirement.split("<")[0].split(">")[0] for requirement in requires] == ["boto3"]


def test_the_command_answers_help_without_aws() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "operator_tools.cli", "repair", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and "--apply" in result.stdout
    usage = subprocess.run(
        [sys.executable, "-m", "operator_tools.cli", "doctor"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 2 and "secret" in usage.stderr
