"""`make local-invoke` stopped the way a CI runner or `timeout` stops it: SIGTERM."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.docker_daemon import DaemonUnavailable, DockerDaemon
from devtools.sam_local import invoke_architecture
from tests.attack3.procfs import cmdline, descendants
from tests.deploy.template import ROOT


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except OSError:
        return False


def _command(pid: int) -> str:
    return cmdline(pid)[:80] or "?"


def _servers_naming(address: str) -> dict[int, Path]:
    """Running throwaway PostgreSQL postmasters whose certificate names ``address``."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        command = _command(int(entry.name))
        matched = re.search(r"postgres -D (/tmp/rotation-pg-[^/ ]+)/data", command)
        if not matched:
            continue
        root = Path(matched.group(1))
        names = subprocess.run(
            ["openssl", "x509", "-in", str(root / "tls" / "server.crt"), "-noout", "-ext", "subjectAltName"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if re.search(rf"IP Address:{re.escape(address)}\b", names):
            found[int(entry.name)] = root
    return found


def test_sigterm_during_local_invoke_leaves_the_daemon_state_and_bridge_behind(
    sam_cli: str, request: pytest.FixtureRequest
) -> None:
    """SIGTERM (what `timeout`, CI cancellation and `kill PID` send) of `make
    local-invoke` cleans up as ^C does: devtools.local_invoke turns SIGTERM and SIGHUP
    into SystemExit, so `with SamLocalStack(...)` and the server's `finally` run. No
    process of the run, no bridge, no daemon data root and no throwaway PostgreSQL (whose
    Unix socket takes `trust` logins as any role) outlives it. (Attack round 3 found all
    of them left.) The run uses the session's `sam build`."""
    try:
        DockerDaemon.check()
    except DaemonUnavailable as reason:
        if os.environ.get("CI"):
            pytest.fail(f"sam local invoke cannot run in CI: {reason}")
        pytest.skip(str(reason))
    built: Path = request.getfixturevalue("built" if invoke_architecture() == "x86_64" else "built_arm64")
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.local_invoke", "--built", str(built)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SAM_CLI": sam_cli},
    )
    assert process.stdout is not None
    bridge = address = ""
    lines = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"bridge (srbr[0-9a-f]+) at (\S+)", line)
        bridge, address = (found.group(1), found.group(2)) if found else (bridge, address)
        if "sam local invoke" in line and "createSecret" in line:
            break
    children = descendants(process.pid)
    roots = {
        m.group(1) for pid in children for m in [re.search(r"--data-root=(\S+)/data", _command(pid))] if m
    }
    process.send_signal(signal.SIGTERM)  # the process this test started, by its PID
    process.wait(timeout=30)
    time.sleep(5)
    left_processes = {pid: _command(pid) for pid in children if _alive(pid)}
    left_bridge = (
        bool(bridge)
        and subprocess.run(["ip", "link", "show", bridge], capture_output=True, check=False).returncode == 0
    )
    left_roots = [root for root in roots if Path(root).exists()]
    left_servers = _servers_naming(address) if address else {}
    # Clean up what the terminated run left (all of it started by this test).
    for pid in left_processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for postmaster, server_root in left_servers.items():
        os.kill(postmaster, signal.SIGTERM)  # the server this test's run started (its certificate says so)
        for _ in range(50):
            if not _alive(postmaster):
                break
            time.sleep(0.2)
        shutil.rmtree(server_root, ignore_errors=True)
    if left_bridge:
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
    for root in left_roots:
        subprocess.run(["umount", "-R", f"{root}/data"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
    assert bridge, "".join(lines)[-2000:]
    assert not (left_processes or left_bridge or left_roots or left_servers), (
        f"after SIGTERM: PostgreSQL still running {sorted(map(str, left_servers.values()))}, "
        f"processes {left_processes}, "
        f"bridge {bridge if left_bridge else None}, dirs {left_roots}"
    )
