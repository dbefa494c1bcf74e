"""A stand-in for AWS's Lambda Python 3.13 image (``public.ecr.aws/lambda/python:3.13``),
built from nothing pulled from a container registry, for ``sam local invoke``.

The recipe: a Debian root (``debootstrap --variant=minbase``, from Debian's package
mirror) with the shared libraries CPython needs and the CA store; this machine's CPython
3.13 copied to ``/var/lang`` (it must be a self-contained build such as pyenv's:
``bin/python3.13`` plus ``lib/``, relocatable); ``awslambdaric`` and boto3 from PyPI at
``/var/runtime``; and ``/var/runtime/bootstrap``, which starts the handler with
Lambda's ``sys.path`` order (function, layer, runtime libraries, standard library).
SAM CLI adds its runtime interface emulator and the layers on top when it invokes.

The image is for one Lambda architecture, this machine's (it runs this machine's
interpreter); :func:`image_architecture` states how ``LAMBDA_ARCHITECTURE`` is checked.

The root file system is cached as a tar archive under ``~/.cache`` (or
``$XDG_CACHE_HOME``), keyed by a hash of the recipe: the architecture, the interpreter's
version, the packages and the files written. An archive is written under a temp name and
renamed into place, so a reader sees it whole or not at all; builds may run side by side.
Other recipes' archives are left alone unless unused for :data:`STALE_AFTER` (another
run may be importing one). Importing it into a daemon takes seconds; building it takes
about a minute. Every command of a build runs in PID and mount namespaces of its own
that die with the build (:func:`devtools.processes.start_child`, ``contained``): a
killed build leaves no ``debootstrap`` running and nothing mounted; its scratch dir is
removed by the next build. Differences from AWS's image are listed in the README ("`sam local
invoke` for real").
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from devtools.processes import run_child
from devtools.scratch import owned_scratch_dir, reclaim_stale, unmount_below

PYTHON_VERSION = "3.13"
#: Raise when the way the image is built changes in a way the values below do not show.
RECIPE_VERSION = 1
IMAGE = "secrets-rotation/lambda-python"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: The shared libraries of CPython's extension modules (ssl, ctypes, sqlite3, ...).
DEBIAN_PACKAGES = (
    "ca-certificates",
    "libbz2-1.0",
    "libexpat1",
    "libffi8",
    "liblzma5",
    "libncursesw6",
    "libreadline8",
    "libsqlite3-0",
    "libssl3",
    "libuuid1",
    "zlib1g",
)
RUNTIME_PACKAGES = ("awslambdaric==4.2.2", "boto3==1.40.4")
#: Lambda's architecture names -> (pip's wheel platform, Debian's architecture).
ARCHITECTURES = {
    "x86_64": ("manylinux2014_x86_64", "amd64"),
    "arm64": ("manylinux2014_aarch64", "arm64"),
}
#: ``platform.machine()`` -> Lambda's architecture name.
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
#: Another recipe's archive (or a partial one) untouched this long is no run's: removed.
STALE_AFTER = 7 * 24 * 3600.0
#: How a build's scratch dir (in the temp dir) is named; a killed build's is removed by
#: the next build (:func:`devtools.scratch.reclaim_stale`).
SCRATCH_PREFIX = "lambda-root-"
#: What a function sees in AWS (the Lambda documentation's reserved variables).
ENVIRONMENT = {
    "LANG": "en_US.UTF-8",
    "TZ": ":/etc/localtime",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": (
        "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
    ),
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}
# Parts of a CPython installation no function imports: the test suite, Tk, IDLE, the
# headers and pip (AWS's runtime has no pip on the function's path either).
_PYTHON_SKIPPED = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "include", "share", "pkgconfig"}

BOOTSTRAP = """#!/bin/sh
# Lambda's runtime bootstrap for Python: the runtime interface client on the runtime API.
export AWS_EXECUTION_ENV=AWS_Lambda_python{version}
exec /var/lang/bin/python{version} /var/runtime/bootstrap.py
"""
BOOTSTRAP_PY = '''"""Start the runtime interface client with Lambda's module search order."""
import os
import sys

task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
version = "python%d.%d" % sys.version_info[:2]
first = [
    task_root,
    f"/opt/python/lib/{version}/site-packages",
    "/opt/python",
    f"/var/lang/lib/{version}/site-packages",
    "/var/runtime",
]
sys.path[:] = first + [p for p in sys.path if p not in first and p != os.path.dirname(__file__)]
os.chdir(task_root)

from awslambdaric.__main__ import main  # noqa: E402

main([sys.argv[0], os.environ.get("_HANDLER") or os.environ["AWS_LAMBDA_FUNCTION_HANDLER"]])
'''

Progress = Callable[[str], None]


class ImageUnavailable(RuntimeError):  # noqa: N818 - a reason to skip, not a failure
    """The stand-in cannot be built on this machine; the message says why."""


class ArchitectureMismatch(ValueError):  # noqa: N818 - a refusal, named after its cause
    """``LAMBDA_ARCHITECTURE`` names another architecture than this machine's, for the
    stand-in image (a name that is no Lambda architecture is a plain ValueError)."""


def host_architecture(machine: str | None = None) -> str:
    """This machine's Lambda architecture (``x86_64`` or ``arm64``)."""
    machine = machine or platform.machine()
    if machine not in _MACHINES:
        raise ImageUnavailable(f"no Lambda architecture runs on this machine ({machine})")
    return _MACHINES[machine]


def image_architecture(
    requested: str | None = None, machine: str | None = None, *, stand_in: bool = True
) -> str:
    """The Lambda architecture the functions are built and invoked for locally.

    ``requested`` (default: ``LAMBDA_ARCHITECTURE``) must be ``x86_64`` or ``arm64``
    (ValueError naming it otherwise). For the stand-in image (``stand_in``), which runs
    this machine's Python, it can only be this machine's: that is the default, and
    another one is refused (ArchitectureMismatch) rather than build an image whose
    runtime packages and interpreter disagree. For an image of the caller's (AWS's, say)
    the requested one is taken as the image's; this machine's when none is requested.
    """
    wanted = requested or os.environ.get("LAMBDA_ARCHITECTURE")
    if wanted is not None and wanted not in ARCHITECTURES:
        raise ValueError(f"LAMBDA_ARCHITECTURE must be one of {', '.join(ARCHITECTURES)}, not {wanted!r}")
    if wanted is not None and not stand_in:
        return wanted
    host = host_architecture(machine)
    if wanted is not None and wanted != host:
        raise ArchitectureMismatch(
            f"LAMBDA_ARCHITECTURE={wanted} but this machine is {host}: the local Lambda image runs "
            f"this machine's Python, so it can only be {host} (unset LAMBDA_ARCHITECTURE, or set it "
            f"to {host}, for sam local invoke)"
        )
    return host


def find_python(version: str = PYTHON_VERSION) -> Path:
    """The installation prefix of a self-contained CPython ``version``: ``LAMBDA_PYTHON_HOME``,
    else pyenv's newest build of it; raises ImageUnavailable naming what is missing."""
    configured = os.environ.get("LAMBDA_PYTHON_HOME")
    candidates = [Path(configured)] if configured else []
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not configured and pyenv_root.is_dir():
        builds = [
            p for p in pyenv_root.iterdir() if p.name.startswith(f"{version}.") and p.name[5:].isdigit()
        ]
        candidates += sorted(builds, key=lambda p: int(p.name.rsplit(".", 1)[1]), reverse=True)
    for prefix in candidates:
        if (prefix / "bin" / f"python{version}").exists() and (
            prefix / "lib" / f"python{version}" / "os.py"
        ).exists():
            return prefix
    where = configured or f"{pyenv_root}/{version}.*"
    raise ImageUnavailable(
        f"no self-contained Python {version} found (looked in {where}; set LAMBDA_PYTHON_HOME)"
    )


def recipe_key(python: Path, architecture: str) -> str:
    """A hash of everything the image is built from."""
    described = subprocess.run(
        [str(python / "bin" / f"python{PYTHON_VERSION}"), "-VV"], capture_output=True, text=True, check=True
    ).stdout
    return recipe_hash(described, architecture)


def recipe_hash(interpreter: str, architecture: str) -> str:
    """The recipe's key for an interpreter (as ``python -VV`` describes it) and an architecture."""
    recipe = repr(
        (
            RECIPE_VERSION,
            architecture,
            ARCHITECTURES[architecture],
            interpreter,
            DEBIAN_SUITE,
            DEBIAN_PACKAGES,
            RUNTIME_PACKAGES,
            sorted(_PYTHON_SKIPPED),
            BOOTSTRAP,
            BOOTSTRAP_PY,
            ENVIRONMENT,
        )
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "secrets-rotation" / "lambda-image"


def root_filesystem(progress: Progress = print, architecture: str | None = None) -> tuple[Path, str]:
    """(the cached root file system archive, its recipe key), built when missing, for
    ``architecture`` (default: :func:`image_architecture`)."""
    architecture = image_architecture(architecture)
    python = find_python()
    key = recipe_key(python, architecture)
    archive = cache_dir() / f"python{PYTHON_VERSION}-{architecture}-{key}.tar"
    if archive.exists():
        archive.touch()  # in use: see prune_cache
        progress(f"Lambda image: cached root file system {archive}")
        return archive, key
    missing = [tool for tool in ("debootstrap", "tar") if shutil.which(tool) is None]
    if missing:
        raise ImageUnavailable(f"building the Lambda image needs {', '.join(missing)} (apt-get install)")
    if os.geteuid() != 0:
        raise ImageUnavailable("building the Lambda image needs root (debootstrap)")
    archive.parent.mkdir(parents=True, exist_ok=True)
    for stale in prune_cache(archive.parent):
        progress(f"Lambda image: removed {stale.name} (unused for {STALE_AFTER / 86400:.0f} days)")
    for stale in reclaim_stale(SCRATCH_PREFIX):
        progress(f"Lambda image: removed {stale}, left by a build that was killed")
    scratch = owned_scratch_dir(SCRATCH_PREFIX)
    try:
        _build_root(scratch / "root", python, architecture, archive, progress)
    finally:
        if unmount_below(scratch):  # none expected: the build's mounts are its namespace's
            shutil.rmtree(scratch, ignore_errors=True)
    progress(f"Lambda image: root file system cached at {archive} ({archive.stat().st_size / 1e6:.0f} MB)")
    return archive, key


def prune_cache(directory: Path, now: float | None = None) -> list[Path]:
    """Remove the archives (whole or partial) in ``directory`` not modified for
    :data:`STALE_AFTER`; the paths removed. A recipe's archive is touched whenever it is
    used, so one that another run may be importing, or a build still being written, is
    never removed."""
    now = time.time() if now is None else now
    removed = []
    for candidate in directory.glob(f"python{PYTHON_VERSION}-*"):
        try:
            if now - candidate.stat().st_mtime > STALE_AFTER:
                candidate.unlink()
                removed.append(candidate)
        except FileNotFoundError:
            continue  # another run's clean-up came first
    return removed


def publish(archive: Path, write: Callable[[Path], None]) -> None:
    """Write ``archive`` at once: ``write`` fills a temp file of a name no other build
    uses, in the same directory, which is then renamed into place (a reader sees the
    whole archive or none; two builds side by side each rename a complete one)."""
    descriptor, name = tempfile.mkstemp(prefix=f"{archive.name}.", suffix=".partial", dir=archive.parent)
    os.close(descriptor)
    partial = Path(name)
    try:
        write(partial)
        partial.chmod(0o644)
        partial.rename(archive)
    finally:
        partial.unlink(missing_ok=True)


def _build_root(root: Path, python: Path, architecture: str, archive: Path, progress: Progress) -> None:
    wheels, debian = ARCHITECTURES[architecture]
    progress(f"Lambda image ({architecture}): debootstrap {DEBIAN_SUITE} (minbase) from {DEBIAN_MIRROR}")
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--arch={debian}",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            DEBIAN_SUITE,
            str(root),
            DEBIAN_MIRROR,
        ]
    )
    for cached in (
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
    ):
        shutil.rmtree(root / cached, ignore_errors=True)
    progress(f"Lambda image: CPython from {python} to /var/lang")
    _copy_python(python, root / "var" / "lang")
    progress(f"Lambda image: {' '.join(RUNTIME_PACKAGES)} to /var/runtime")
    runtime = root / "var" / "runtime"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            PYTHON_VERSION,
            "--platform",
            wheels,
            "--target",
            str(runtime),
            *RUNTIME_PACKAGES,
        ]
    )
    shutil.rmtree(runtime / "bin", ignore_errors=True)
    (runtime / "bootstrap").write_text(BOOTSTRAP.format(version=PYTHON_VERSION))
    (runtime / "bootstrap").chmod(0o755)
    (runtime / "bootstrap.py").write_text(BOOTSTRAP_PY)
    (root / "var" / "task").mkdir(exist_ok=True)
    (root / "opt").mkdir(exist_ok=True)
    # Byte-compile once here, as AWS's image ships compiled modules: a cold start then
    # does not write .pyc files into a read-only image layer.
    _run(
        [
            shutil.which("chroot") or "/usr/sbin/chroot",
            str(root),
            f"/var/lang/bin/python{PYTHON_VERSION}",
            "-m",
            "compileall",
            "-q",
            "-j0",
            "/var/runtime",
        ],
        env={**ENVIRONMENT},
    )
    publish(
        archive, lambda partial: _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."])
    )


def _copy_python(prefix: Path, target: Path) -> None:
    def skipped(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        dropped = {n for n in names if n in _PYTHON_SKIPPED}
        if here.name == "site-packages":
            dropped |= set(names)
        if here.name == "lib-dynload":
            dropped |= {n for n in names if n.startswith("_tkinter")}
        if here.name == "__pycache__":
            dropped |= {n for n in names if ".opt-" in n}  # -O/-OO variants: Lambda runs neither
        if here == prefix / "lib":
            dropped |= {n for n in names if n.endswith(".a")}
        return dropped

    shutil.copytree(prefix, target, symlinks=True, ignore=skipped)


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    # Contained: the command and all it starts (debootstrap's dpkg, wget, chroot) die
    # with this build however it ends, and what they mount (/proc, /sys in the root)
    # exists only in their mount namespace.
    result = run_child(command, contained=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr[-2000:]}")


def docker_import_changes() -> list[str]:
    """The ``docker import --change`` instructions: Lambda's environment and working dir."""
    changes = [f"ENV {name}={value}" for name, value in ENVIRONMENT.items()]
    changes += ["WORKDIR /var/task", 'ENTRYPOINT ["/var/runtime/bootstrap"]']
    return changes


if __name__ == "__main__":
    path, recipe = root_filesystem()
    print(path)
