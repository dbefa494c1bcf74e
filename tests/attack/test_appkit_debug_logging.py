"""An application function using appkit under a DEBUG root logger (Lambda's advanced
logging controls at DEBUG) logs no secret: appkit holds the SDK's wire loggers, which
would log the GetSecretValue response body with the password in it, at INFO."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PASSWORD = "Leaky-Password-0123456789"
STARTS = "=== APPKIT STARTS ==="

# Run in a process of its own: the root logger's level and handlers are process-wide, and
# the guard must be installed by importing appkit, not by anything pytest loaded before.
SCRIPT = textwrap.dedent(
    f"""
    import json, logging, sys
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)  # what Lambda's DEBUG level does
    import boto3
    from moto import mock_aws
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="app", SecretString=json.dumps({{
            "engine": "postgres", "host": "db.example.internal", "username": "app",
            "password": "{PASSWORD}"}}))
        print("{STARTS}", flush=True)
        from appkit.retrieval import SecretCache, PowertoolsFetcher
        from appkit.connections import RotationAwareConnection
        from rotators.postgresql.engine import PostgresEngine
        fetcher = PowertoolsFetcher(client)
        connection = RotationAwareConnection(PostgresEngine(), "app", SecretCache(fetcher, max_age=0))
        connection.prime()
    """
)


def test_appkit_under_a_debug_root_logger_logs_no_secret() -> None:
    """Every line the process prints after appkit starts is free of the password, while
    before it the SDK's wire loggers really did log at DEBUG (so the setting bites)."""
    env = {name: text for name, text in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:].replace(PASSWORD, "<password>")
    before, printed = done.stdout.split(STARTS, 1)
    assert "DEBUG:botocore" in before, "botocore logged nothing at DEBUG: the root logger is not at DEBUG"
    leaks = sum(PASSWORD in line for line in printed.splitlines())
    assert leaks == 0, f"{leaks} log lines after appkit started hold the password"
