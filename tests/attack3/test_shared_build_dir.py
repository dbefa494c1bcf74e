"""Two `sam local invoke` stacks on one build output (`make local-invoke --built DIR`
twice, or the suite and a user's run on the same `sam build`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devtools.sam_local import SamLocalStack

if TYPE_CHECKING:
    from pathlib import Path


def test_two_stacks_on_one_build_overwrite_and_delete_each_others_ca_bundle(tmp_path: Path) -> None:
    """place_ca_bundle gives each stack's CA a name of its own in the function's build
    output, so two stacks on the same build dir neither overwrite (a TLS failure
    mid-rotation, after createSecret stored a pending version) nor, on stop(), delete
    the CA the other still uses. (Attack round 3 found one shared path.)"""
    built = tmp_path / "build"
    (built / "PostgreSQLRotationFunction").mkdir(parents=True)
    first_ca, second_ca = tmp_path / "first.pem", tmp_path / "second.pem"
    first_ca.write_text("first throwaway CA\n")
    second_ca.write_text("second throwaway CA\n")
    first, second = SamLocalStack(built), SamLocalStack(built)
    first_name = first.place_ca_bundle("PostgreSQLRotationFunction", str(first_ca))
    second.place_ca_bundle("PostgreSQLRotationFunction", str(second_ca))
    seen_by_first = (built / "PostgreSQLRotationFunction" / first_name).read_text()
    assert seen_by_first == "first throwaway CA\n", f"the first stack's functions now read {seen_by_first!r}"
    second.stop()  # never started: removes only what it placed
    assert (built / "PostgreSQLRotationFunction" / first_name).read_text() == "first throwaway CA\n"
    first.stop()
    assert not list((built / "PostgreSQLRotationFunction").iterdir()), "a placed CA outlived its stack"
