"""A throwaway PostgreSQL server dies with a killed test run, client sessions open or not."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

from tests.unit.test_processes import ROOT, _gone

# A test run in miniature: starts a server, reports it, and waits to be killed.
RUN = """
import json, os, time
from devtools.postgres import PostgresServer
server = PostgresServer().start()
print(json.dumps([server._process.pid, str(server.root), server.port]), flush=True)
time.sleep(120)
"""


def test_a_killed_run_leaves_no_server_behind_a_session_still_open() -> None:
    """SIGTERM would be PostgreSQL's smart shutdown, which waits for this test's session
    to end: the server must get the signal that stops it at once."""
    run = subprocess.Popen([sys.executable, "-c", RUN], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    pid, root, port = json.loads(run.stdout.readline())
    session = psycopg2.connect(host=root, port=port, user="postgres", dbname="postgres")
    try:
        with session.cursor() as cursor:
            cursor.execute("SELECT 1")  # an open session, idle in the server's eyes
        started = time.monotonic()
        run.kill()  # SIGKILL: nothing of the run's own clean-up happens
        run.wait(timeout=10)
        assert _gone(pid, within=15), "the postmaster outlived the run"
        assert time.monotonic() - started < 15
    finally:
        session.close()
        shutil.rmtree(Path(root), ignore_errors=True)
