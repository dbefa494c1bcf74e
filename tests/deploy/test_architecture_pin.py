"""`make build`'s pin: the built template allows only the architecture every artifact's
wheels were built for (devtools/pin_architecture.py, run by SAM CLI's Python), so a
plain `sam deploy` deploys what was built and an override to the other is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = next(
    (p for p in (ROOT / ".venv-sam/bin/python", Path("/work/main/.venv-sam/bin/python")) if p.exists()),
    None,
)
if SAM_PYTHON is None:
    reason = "SAM CLI's virtualenv is missing (make sam-cli)"
    if os.environ.get("CI"):
        pytest.fail(f"cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

ARTIFACTS = ("SharedLayer", "PostgreSQLRotationFunction")


def _build(tmp_path: Path, records: dict[str, str | None]) -> Path:
    """A build dir as `sam build` leaves it: the template and artifacts with records."""
    build = tmp_path / "build"
    build.mkdir()
    shutil.copyfile(ROOT / "template.yaml", build / "template.yaml")
    for artifact, architecture in records.items():
        (build / artifact).mkdir()
        if architecture is not None:
            (build / artifact / "lambda-architecture").write_text(f"{architecture}\n")
    return build


def _pin(build: Path, architecture: str) -> subprocess.CompletedProcess[str]:
    assert SAM_PYTHON is not None
    return subprocess.run(
        [str(SAM_PYTHON), "-m", "devtools.pin_architecture", str(build), architecture],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _parameter(build: Path) -> dict[str, object]:
    assert SAM_PYTHON is not None
    code = (
        "import json, sys; from samcli.yamlhelper import yaml_parse; "
        "t = yaml_parse(open(sys.argv[1]).read()); "
        "print(json.dumps([t['Parameters']['Architecture'], t['Globals']['Function']['Architectures']]))"
    )
    shown = subprocess.run(
        [str(SAM_PYTHON), "-c", code, str(build / "template.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )

    parameter, architectures = json.loads(shown.stdout)
    assert architectures == [{"Ref": "Architecture"}], "the rest of the template changed"
    return dict(parameter)


def test_a_build_for_arm64_pins_the_template_to_arm64(tmp_path: Path) -> None:
    build = _build(tmp_path, dict.fromkeys(ARTIFACTS, "arm64"))
    result = _pin(build, "arm64")
    assert result.returncode == 0, result.stderr
    parameter = _parameter(build)
    assert parameter["Default"] == "arm64"
    assert parameter["AllowedValues"] == ["arm64"]


def test_an_artifact_built_for_the_other_architecture_is_refused_and_nothing_pinned(tmp_path: Path) -> None:
    build = _build(tmp_path, {"SharedLayer": "arm64", "PostgreSQLRotationFunction": "x86_64"})
    before = (build / "template.yaml").read_text()
    result = _pin(build, "arm64")
    assert result.returncode == 1
    assert "PostgreSQLRotationFunction was built for x86_64" in result.stderr
    assert (build / "template.yaml").read_text() == before


def test_an_artifact_without_a_record_is_refused(tmp_path: Path) -> None:
    build = _build(tmp_path, {"SharedLayer": "x86_64", "PostgreSQLRotationFunction": None})
    result = _pin(build, "x86_64")
    assert result.returncode == 1
    assert "PostgreSQLRotationFunction was built for an unrecorded architecture" in result.stderr
