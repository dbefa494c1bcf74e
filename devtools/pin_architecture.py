"""``make build``'s last step: pin the built template to the architecture the wheels were
built for, so that a later plain ``sam deploy`` cannot deploy them on the other one.

The Makefile's artifacts each hold a ``lambda-architecture`` file naming the
architecture of their compiled wheels (``LAMBDA_ARCHITECTURE``; SAM does not tell a
makefile build the template's ``Architecture``). This checks that every artifact of the
build says ``ARCHITECTURE``, then rewrites the built template's ``Architecture``
parameter to allow that value only, as its default: ``sam deploy`` from the build (no
override, samconfig's settings) deploys what was built, and
``--parameter-overrides Architecture=<other>`` is refused by CloudFormation before
anything changes. Run by SAM CLI's own Python (``python -m devtools.pin_architecture
BUILD_DIR ARCHITECTURE``), whose YAML helper wrote the template (CloudFormation's tags
kept as they were).
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The file each artifact of a Makefile build holds: the architecture of its wheels.
RECORD = "lambda-architecture"


def pin(build_dir: Path, architecture: str) -> list[str]:
    """Check every artifact's record against ``architecture`` and pin the built template;
    the problems found instead (nothing is changed when there is one)."""
    from samcli.yamlhelper import yaml_dump, yaml_parse

    problems = []
    artifacts = [d for d in sorted(build_dir.iterdir()) if d.is_dir()]
    if not artifacts:
        problems.append(f"{build_dir} holds no built artifact")
    for artifact in artifacts:
        record = artifact / RECORD
        built = record.read_text().strip() if record.is_file() else None
        if built != architecture:
            problems.append(f"{artifact.name} was built for {built or 'an unrecorded architecture'}")
    template_file = build_dir / "template.yaml"
    template = yaml_parse(template_file.read_text())
    parameter = template.get("Parameters", {}).get("Architecture")
    if parameter is None:
        problems.append(f"{template_file} has no Architecture parameter")
    if problems:
        return problems
    parameter["Default"] = architecture
    parameter["AllowedValues"] = [architecture]
    parameter["Description"] = (
        f"Pinned by `make build`: this build's compiled wheels are {architecture} only "
        f"(rebuild with `make build LAMBDA_ARCHITECTURE=...` for another)."
    )
    template_file.write_text(yaml_dump(template))
    return []


def main(argv: list[str]) -> int:
    build_dir, architecture = Path(argv[0]), argv[1]
    problems = pin(build_dir, architecture)
    for problem in problems:
        print(f"pin-architecture (building for {architecture}): {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
