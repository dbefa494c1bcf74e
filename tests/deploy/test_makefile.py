"""The Makefile as a new user meets it: what each target would run (``make -n``)."""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy.template import ROOT


def dry_run(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``make -n -B``: every command the target would run, none run."""
    return subprocess.run(
        ["make", "-n", "-B", *arguments], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )


def test_following_a_deployed_secret_needs_no_database_packages() -> None:
    commands = dry_run("rotate", "ARGS=--secret-id arn:aws:secretsmanager:eu-west-1:1:secret:x").stdout
    installs = [line for line in commands.splitlines() if "install-system-deps" in line]
    assert installs == ["scripts/install-system-deps python"]
    assert "devtools.rotate --secret-id" in commands


def test_the_local_rotation_installs_the_database_servers() -> None:
    commands = dry_run("rotate").stdout.splitlines()
    assert "scripts/install-system-deps" in commands


@pytest.mark.parametrize(
    ("architecture", "platform"), [("x86_64", "manylinux2014_x86_64"), ("arm64", "manylinux2014_aarch64")]
)
def test_wheels_follow_the_architecture(architecture: str, platform: str) -> None:
    result = dry_run("build-SharedLayer", "ARTIFACTS_DIR=/nowhere", f"LAMBDA_ARCHITECTURE={architecture}")
    assert result.returncode == 0, result.stderr
    assert f"--platform {platform} -r common/requirements.txt" in result.stdout


def test_an_unknown_architecture_is_refused() -> None:
    result = dry_run("build-SharedLayer", "ARTIFACTS_DIR=/nowhere", "LAMBDA_ARCHITECTURE=sparc")
    assert result.returncode != 0
    assert 'LAMBDA_ARCHITECTURE must be x86_64 or arm64, not "sparc"' in result.stderr


def test_make_build_sets_the_template_parameter_too() -> None:
    commands = dry_run("build", "LAMBDA_ARCHITECTURE=arm64").stdout
    expected = "LAMBDA_ARCHITECTURE=arm64 .venv-sam/bin/sam build --parameter-overrides Architecture=arm64"
    assert expected in commands
