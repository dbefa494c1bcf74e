"""A build whose wheels and the template's Architecture disagree: nothing stops it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM = os.environ.get("SAM_CLI") or next(
    (str(p) for p in (ROOT / ".venv-sam/bin/sam", Path("/work/main/.venv-sam/bin/sam")) if p.exists()),
    str(ROOT / ".venv-sam/bin/sam"),
)


def _elf_machines(directory: Path) -> set[str]:
    machines = set()
    for module in directory.rglob("*.so*"):
        head = module.read_bytes()[:20]
        if head[:4] == b"\x7fELF":
            machines.add({62: "x86_64", 183: "aarch64"}.get(int.from_bytes(head[18:20], "little"), "other"))
    return machines


@pytest.mark.skipif(not Path(SAM).exists(), reason=f"SAM CLI not found at {SAM} (make sam-cli)")
def test_sam_build_for_arm64_without_the_makefile_variable_packages_x86_wheels(tmp_path: Path) -> None:
    """`sam build --parameter-overrides Architecture=arm64` (SAM's own way to choose the
    parameter) without LAMBDA_ARCHITECTURE in the environment is refused, naming the
    variable: SAM does not tell a makefile build the template's Architecture, so the
    Makefile has no default under SAM that could package x86-64 wheels for an arm64
    function. (The other half, `make build LAMBDA_ARCHITECTURE=arm64` then a plain `sam
    deploy`, is held by the pinned built template: tests/deploy/test_architecture_pin.py.)
    (Attack round 3 found the x86-64 wheels packaged without a word.)"""
    environment = {k: v for k, v in os.environ.items() if k != "LAMBDA_ARCHITECTURE"}
    environment.update(SAM_CLI_TELEMETRY="0", PYENV_VERSION="3.11.7:3.12.1:3.13.0")
    result = subprocess.run(
        [
            SAM,
            "build",
            "PostgreSQLRotationFunction",
            "--build-in-source",
            "--build-dir",
            str(tmp_path / "build"),
            "--template-file",
            str(ROOT / "template.yaml"),
            "--parameter-overrides",
            "Architecture=arm64",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        check=False,
    )
    if result.returncode != 0:  # refused, for the right reason
        assert "LAMBDA_ARCHITECTURE is not set" in result.stdout + result.stderr, result.stderr[-2000:]
        return
    machines = _elf_machines(tmp_path / "build" / "PostgreSQLRotationFunction")
    assert machines == {"aarch64"}, f"an Architecture=arm64 build packaged compiled modules for {machines}"
