"""The local Lambda image's architecture and its cache (no image is built here)."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest

from devtools.lambda_image import (
    STALE_AFTER,
    ArchitectureMismatch,
    host_architecture,
    image_architecture,
    prune_cache,
    publish,
    recipe_hash,
)
from devtools.sam_local import invoke_architecture

if TYPE_CHECKING:
    from pathlib import Path

INTERPRETER = "Python 3.13.0 (main) [GCC 12.2.0]"


@pytest.mark.parametrize(("machine", "architecture"), [("x86_64", "x86_64"), ("aarch64", "arm64")])
def test_the_image_is_the_machines_architecture(
    machine: str, architecture: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAMBDA_ARCHITECTURE", raising=False)
    assert image_architecture(machine=machine) == architecture
    monkeypatch.setenv("LAMBDA_ARCHITECTURE", architecture)
    assert image_architecture(machine=machine) == architecture


@pytest.mark.parametrize(("machine", "requested"), [("x86_64", "arm64"), ("aarch64", "x86_64")])
def test_an_architecture_other_than_the_machines_is_refused(
    machine: str, requested: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_ARCHITECTURE", requested)
    with pytest.raises(ArchitectureMismatch, match=f"LAMBDA_ARCHITECTURE={requested} but this machine is"):
        image_architecture(machine=machine)


@pytest.mark.parametrize("stand_in", [True, False])
def test_an_unknown_architecture_is_refused_by_name_not_as_a_mismatch(stand_in: bool) -> None:
    with pytest.raises(ValueError, match="'sparc'") as refused:
        image_architecture("sparc", machine="x86_64", stand_in=stand_in)
    assert not isinstance(refused.value, ArchitectureMismatch)


@pytest.mark.parametrize(("machine", "requested"), [("x86_64", "arm64"), ("aarch64", "x86_64")])
def test_an_image_of_the_callers_is_taken_to_be_the_requested_architecture(
    machine: str, requested: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host rule is the stand-in's: AWS's image may be the other architecture."""
    monkeypatch.setenv("LAMBDA_ARCHITECTURE", requested)
    assert image_architecture(machine=machine, stand_in=False) == requested
    monkeypatch.delenv("LAMBDA_ARCHITECTURE")
    assert image_architecture(machine=machine, stand_in=False) != requested  # this machine's


def test_the_image_of_the_callers_is_what_lambda_invoke_image_says(monkeypatch: pytest.MonkeyPatch) -> None:
    other = "arm64" if host_architecture() == "x86_64" else "x86_64"
    monkeypatch.setenv("LAMBDA_ARCHITECTURE", other)
    monkeypatch.setenv("LAMBDA_INVOKE_IMAGE", "public.ecr.aws/lambda/python:3.13")
    assert invoke_architecture() == other
    monkeypatch.delenv("LAMBDA_INVOKE_IMAGE")
    with pytest.raises(ArchitectureMismatch):
        invoke_architecture()


def test_the_architecture_is_part_of_the_cache_key() -> None:
    assert recipe_hash(INTERPRETER, "x86_64") != recipe_hash(INTERPRETER, "arm64")
    assert recipe_hash(INTERPRETER, "x86_64") == recipe_hash(INTERPRETER, "x86_64")


def test_a_reader_never_sees_a_partial_archive(tmp_path: Path) -> None:
    archive = tmp_path / "python3.13-x86_64-key.tar"
    writing, may_finish = threading.Event(), threading.Event()

    def write(partial: Path) -> None:
        partial.write_bytes(b"half")
        writing.set()
        may_finish.wait(10)
        with partial.open("ab") as out:
            out.write(b" and the rest")

    writer = threading.Thread(target=publish, args=(archive, write))
    writer.start()
    assert writing.wait(10)
    assert not archive.exists()
    may_finish.set()
    writer.join(10)
    assert archive.read_bytes() == b"half and the rest"
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def fail(partial: Path) -> None:
        partial.write_bytes(b"half")
        raise RuntimeError("tar failed")

    with pytest.raises(RuntimeError, match="tar failed"):
        publish(tmp_path / "python3.13-x86_64-key.tar", fail)
    assert list(tmp_path.iterdir()) == []


def test_only_archives_unused_for_a_week_are_pruned(tmp_path: Path) -> None:
    now = 2_000_000_000.0
    recent = tmp_path / "python3.13-x86_64-other.tar"  # another run may be importing it
    building = tmp_path / "python3.13-x86_64-mine.tar.abc123.partial"  # a build under way
    old = tmp_path / "python3.13-x86_64-old.tar"
    dead_build = tmp_path / "python3.13-arm64-old.tar.def456.partial"
    unrelated = tmp_path / "notes.txt"
    for path in (recent, building, old, dead_build, unrelated):
        path.write_bytes(b"x")
    for path in (recent, building):
        os.utime(path, (now - 3600, now - 3600))
    for path in (old, dead_build, unrelated):
        os.utime(path, (now - STALE_AFTER - 1, now - STALE_AFTER - 1))
    assert sorted(prune_cache(tmp_path, now=now)) == sorted([old, dead_build])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([recent.name, building.name, unrelated.name])
