"""Session fixtures for the deployment checks: SAM CLI, one ``sam build``, the runtime's Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devtools.sam_local import sam_build
from tests.deploy.template import ROOT, functions, load

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(scope="session")
def sam_cli() -> str:
    """SAM CLI from its own virtualenv (``make sam-cli``), or ``SAM_CLI``."""
    path = os.environ.get("SAM_CLI") or str(ROOT / ".venv-sam" / "bin" / "sam")
    if not Path(path).exists():
        pytest.fail(f"SAM CLI not found at {path}: run `make sam-cli` (the test target does)")
    return path


def session_build(architecture: str) -> Callable[..., Iterator[Path]]:
    """A session fixture: ``sam build`` of the whole template for ``architecture``."""

    @pytest.fixture(scope="session")
    def build(sam_cli: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
        build_dir = tmp_path_factory.mktemp(f"sam-build-{architecture}")
        sam_build(sam_cli, build_dir, architecture)
        yield build_dir
        shutil.rmtree(build_dir, ignore_errors=True)

    return build


built = session_build("x86_64")  # the default
built_arm64 = session_build("arm64")


@pytest.fixture(scope="session")
def runtime_python() -> str:
    """The interpreter of the template's Lambda runtime: ``RUNTIME_PYTHON``, or
    ``python3.13`` on PATH (pyenv's, here).

    Debian 12 has no Python 3.13; the checks that run built code under it are skipped
    there, with a reason saying how to get one, and every other check still runs.
    """
    runtimes = {function.runtime for function in functions(load())}
    assert len(runtimes) == 1, runtimes
    name = runtimes.pop()
    environment = dict(os.environ)
    if shutil.which("pyenv") and "PYENV_VERSION" not in environment:
        # pyenv's shims find a version only when PYENV_VERSION names it.
        versions = subprocess.run(
            ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False
        )
        environment["PYENV_VERSION"] = ":".join(versions.stdout.split())
    wanted = name.removeprefix("python")
    found = os.environ.get("RUNTIME_PYTHON") or shutil.which(name)
    probe = (
        subprocess.run(
            [found, "-c", "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
        )
        if found
        else None
    )
    if probe is None or probe.returncode != 0 or probe.stdout.splitlines()[1:] != [wanted]:
        pytest.skip(
            f"no Python {wanted} (the template's {name} runtime) on PATH, so the built functions "
            f"cannot be run: install one (`pyenv install {wanted}`, or `uv python install {wanted}`) "
            f"and put {name} on PATH, or set RUNTIME_PYTHON to its path"
        )
    return probe.stdout.splitlines()[0]


@pytest.fixture(scope="session")
def runtime_boto3(runtime_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """boto3 as the Lambda runtime provides it (the functions do not package it)."""
    target = tmp_path_factory.mktemp("runtime-boto3")
    version = subprocess.run(
        [runtime_python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--only-binary=:all:",
            "--python-version",
            version,
            "--target",
            str(target),
            "boto3",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return target
