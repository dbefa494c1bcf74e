"""The template's functions run by SAM CLI's own ``sam local invoke``, in containers.

:class:`SamLocalStack` sets up what that needs on this machine and tears it down: a
throwaway Docker daemon (:mod:`devtools.docker_daemon`), the Lambda Python image
(:mod:`devtools.lambda_image`; or ``LAMBDA_INVOKE_IMAGE``: the path of an image archive,
such as AWS's ``public.ecr.aws/lambda/python:3.13`` saved by ``docker save``, or the name
of an image in the daemon), one ``sam build``, and
forwarders that let containers reach servers on 127.0.0.1 through the bridge's address.
:meth:`SamLocalStack.invoke` runs one ``sam local invoke`` and returns what SAM printed.

SAM CLI looks up the caller's account through STS before each invoke: pointed at the
local endpoint (``AWS_ENDPOINT_URL_STS``) it answers at once, where an unreachable
network would cost seconds. Shared by the test suite and ``make local-invoke``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from devtools.docker_daemon import DockerDaemon
from devtools.forwarder import Forwarder
from devtools.lambda_image import (
    IMAGE,
    ImageUnavailable,
    docker_import_changes,
    image_architecture,
    root_filesystem,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from devtools.throwaway import ThrowawayServer

ServerT = TypeVar("ServerT", bound="ThrowawayServer")

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
#: The Python versions pyenv offers to ``sam build`` (it checks for the runtime's).
PYENV_VERSION = "3.11.7:3.12.1:3.13.0"
#: How the file names of CA bundles placed in a function's build output begin.
LOCAL_CA_BUNDLE_PREFIX = "local-ca-bundle-"


def emulated_function_arn(function: str) -> str:
    """The ARN a function sees as its own under ``sam local invoke`` (SAM CLI's runtime
    interface emulator fixes the region and account)."""
    return f"arn:aws:lambda:us-east-1:012345678912:function:{function}"


def sam_cli() -> str:
    """SAM CLI from its own virtualenv (``make sam-cli``), or ``SAM_CLI``."""
    return os.environ.get("SAM_CLI") or str(ROOT / ".venv-sam" / "bin" / "sam")


def docker_cli() -> str:
    found = shutil.which("docker")
    if found is None:
        raise ImageUnavailable("the docker command is missing (apt-get install docker.io)")
    return found


@dataclass(frozen=True)
class Invocation:
    """One ``sam local invoke``: its exit code, the function's response (stdout), SAM's
    and the function's log lines (stderr), and the wall time."""

    function: str
    returncode: int
    output: str
    logs: str
    seconds: float

    def response(self) -> Any:
        """The function's JSON response (SAM prints it as the last line of stdout)."""
        lines = [line for line in self.output.splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None


def sam_build(sam: str, build_dir: Path, architecture: str, template: Path = ROOT / "template.yaml") -> Path:
    """``sam build`` of ``template`` into ``build_dir`` for ``architecture`` (the
    Makefile's ``LAMBDA_ARCHITECTURE`` and the template's ``Architecture``, set together);
    the built template's path."""
    environment = {**os.environ, "SAM_CLI_TELEMETRY": "0", "LAMBDA_ARCHITECTURE": architecture}
    environment.setdefault("PYENV_VERSION", PYENV_VERSION)
    result = subprocess.run(
        # In source: the Makefile targets copy only what each artifact needs, where a
        # scratch copy of the repository would also copy the virtualenvs.
        [
            sam,
            "build",
            "--build-in-source",
            "--build-dir",
            str(build_dir),
            "--template-file",
            str(template),
            "--parameter-overrides",
            f"Architecture={architecture}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=environment,
    )
    if result.returncode != 0:
        raise RuntimeError("sam build failed:\n" + result.stdout[-3000:] + result.stderr[-3000:])
    return build_dir / "template.yaml"


def configured_image() -> str | None:
    """``LAMBDA_INVOKE_IMAGE``: an image archive's path or an image's name, to invoke with
    instead of building the stand-in; None when unset."""
    return os.environ.get("LAMBDA_INVOKE_IMAGE") or None


def invoke_architecture(requested: str | None = None) -> str:
    """The architecture to build and invoke for: :func:`devtools.lambda_image.image_architecture`,
    whose rule for this machine's architecture holds only for the stand-in image."""
    return image_architecture(requested, stand_in=configured_image() is None)


class SamLocalStack:
    """A Docker daemon, the Lambda image and a built template, for ``sam local invoke``.

    ``built`` is an existing ``sam build`` output directory (built for ``architecture``);
    without it, :meth:`start` builds into a temp dir. ``architecture`` is decided by
    :func:`invoke_architecture`; the build and every invoke use it as the template's
    ``Architecture``. ``progress`` receives one line per stage.
    """

    def __init__(
        self,
        built: Path | None = None,
        progress: Callable[[str], None] | None = None,
        architecture: str | None = None,
    ) -> None:
        self.architecture = invoke_architecture(architecture)
        self.sam = sam_cli()
        self.daemon = DockerDaemon()
        self.built = built
        self.image = ""
        self.progress = progress or (lambda _line: None)
        self.timings: dict[str, float] = {}
        self._forwarders: dict[int, Forwarder] = {}
        self._scratch: Path | None = None
        self._placed: list[Path] = []

    @property
    def bridge_address(self) -> str:
        """The address containers reach this machine at."""
        return self.daemon.bridge_address

    def start(self) -> SamLocalStack:
        if not Path(self.sam).exists():
            raise ImageUnavailable(f"SAM CLI not found at {self.sam}: run `make sam-cli`")
        try:
            self._timed("daemon", self._start_daemon)
            self._timed("image", self._prepare_image)
            if self.built is None:
                self._scratch = Path(tempfile.mkdtemp(prefix="sam-build-"))
                self.progress("sam build (all functions and the shared layer)")
                self._timed("build", lambda: sam_build(self.sam, self._scratch or Path(), self.architecture))
                self.built = self._scratch
        except BaseException:
            self.stop()
            raise
        return self

    def _timed(self, stage: str, action: Callable[[], object]) -> None:
        started = time.perf_counter()
        action()
        self.timings[stage] = time.perf_counter() - started

    def _start_daemon(self) -> None:
        self.progress("Docker daemon: starting (state in a temp dir, bridge of its own, no IP forwarding)")
        self.daemon.start()
        self.progress(f"Docker daemon: up, bridge {self.daemon.bridge} at {self.bridge_address}")

    def _prepare_image(self) -> None:
        configured = configured_image()
        docker = [docker_cli(), "--host", self.daemon.host]
        if configured and Path(configured).is_file():
            self.progress(f"Lambda image: loading {configured}")
            loaded = subprocess.run(
                [*docker, "load", "--input", configured], capture_output=True, text=True, check=False
            )
            names = [line.split(": ", 1)[1] for line in loaded.stdout.splitlines() if "Loaded image" in line]
            if loaded.returncode != 0 or not names:
                raise ImageUnavailable(f"docker load {configured} failed: {loaded.stderr[-500:]}")
            self.image = names[0]
        elif configured:
            if not self.daemon.has_image(configured):
                raise ImageUnavailable(f"LAMBDA_INVOKE_IMAGE={configured} is neither an archive nor an image")
            self.image = configured
        else:
            archive, key = root_filesystem(self.progress, self.architecture)
            self.image = f"{IMAGE}:{key}"
            self.progress(f"Lambda image: importing {self.image}")
            changes = [part for change in docker_import_changes() for part in ("--change", change)]
            imported = subprocess.run(
                [*docker, "import", *changes, str(archive), self.image],
                capture_output=True,
                text=True,
                check=False,
            )
            if imported.returncode != 0:
                raise RuntimeError(f"docker import failed: {imported.stderr[-1000:]}")
        self.progress(f"Lambda image: {self.image}")

    def __enter__(self) -> SamLocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def place_ca_bundle(self, function: str, ca_file: str) -> str:
        """Copy ``ca_file`` into ``function``'s build output (``/var/task`` in the
        container); the name to set as ``DB_CA_BUNDLE`` (relative to the function).

        The name is this stack's own: two stacks on one build output (two ``make
        local-invoke --built DIR``, the suite beside a user's run) neither overwrite nor
        delete each other's CA; :meth:`stop` removes only what this stack placed."""
        assert self.built is not None, "start() the stack first"
        name = f"{LOCAL_CA_BUNDLE_PREFIX}{secrets.token_hex(6)}.pem"
        target = self.built / function / name
        shutil.copyfile(ca_file, target)
        self._placed.append(target)
        return name

    def start_server(self, server: ServerT) -> ServerT:
        """Start a throwaway ``server`` with a certificate that also names the bridge's
        address, and make it reachable from containers there (stopping it is the caller's)."""
        server.certificate_hosts.append(self.bridge_address)
        server.start()
        self.expose(server.port)
        return server

    def expose(self, port: int) -> tuple[str, int]:
        """Make the loopback server on ``port`` reachable from containers on the bridge,
        and from nowhere else (the forwarder is bound to the bridge's device): (host,
        port). A forwarder that died since (OOM killer, a crash, a kill) is replaced."""
        forwarder = self._forwarders.get(port)
        if forwarder is None or not forwarder.running():
            if forwarder is not None:
                forwarder.stop()  # reaps it
            self._forwarders[port] = Forwarder(self.bridge_address, port, device=self.daemon.bridge).start()
        return self.bridge_address, port

    def invoke(
        self,
        function: str,
        event: dict[str, Any],
        endpoint: str,
        env_vars: dict[str, str] | None = None,
        *,
        parameters: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> Invocation:
        """``sam local invoke function`` with ``event``, the ``--env-vars`` ``env_vars``
        (for every function) and the template ``parameters``; ``endpoint`` is the local
        AWS endpoint on 127.0.0.1: SAM's STS look-up goes there, the function's Secrets
        Manager calls through the bridge."""
        assert self.built is not None, "start() the stack first"
        port = int(endpoint.rsplit(":", 1)[1])
        host, _ = self.expose(port)
        variables = {**(env_vars or {}), "SECRETS_MANAGER_ENDPOINT": f"http://{host}:{port}"}
        with tempfile.TemporaryDirectory(prefix="sam-invoke-") as scratch:
            event_file, env_file = Path(scratch) / "event.json", Path(scratch) / "env.json"
            event_file.write_text(json.dumps(event))
            env_file.write_text(json.dumps({"Parameters": variables}))
            command = [
                self.sam,
                "local",
                "invoke",
                function,
                "--template",
                str(self.built / "template.yaml"),
                "--event",
                str(event_file),
                "--env-vars",
                str(env_file),
                "--invoke-image",
                self.image,
                "--skip-pull-image",
                "--region",
                REGION,
            ]
            overrides = {"Architecture": self.architecture, **(parameters or {})}
            command += ["--parameter-overrides", *(f"{k}={v}" for k, v in overrides.items())]
            environment = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", "/root"),
                "LANG": "C.UTF-8",
                "SAM_CLI_TELEMETRY": "0",
                "DOCKER_HOST": self.daemon.host,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL_STS": endpoint,
            }
            started = time.perf_counter()
            result = subprocess.run(
                command,
                cwd=self.built,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env=environment,
            )
        return Invocation(
            function, result.returncode, result.stdout, result.stderr, time.perf_counter() - started
        )

    def stop(self) -> None:
        for forwarder in self._forwarders.values():
            forwarder.stop()
        self._forwarders.clear()
        for placed in self._placed:
            placed.unlink(missing_ok=True)
        self.daemon.stop()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
