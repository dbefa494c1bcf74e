"""``make local-invoke``: a throwaway PostgreSQL rotated through SAM CLI's own
``sam local invoke``, one container per step, with progress on the way.

Sets up what :mod:`devtools.sam_local` needs (a Docker daemon of its own, the Lambda
Python image, ``sam build``), a PostgreSQL server whose certificate names the Docker
bridge's address, and moto's server as Secrets Manager; creates a user and its secret,
runs createSecret, setSecret, testSecret and finishSecret with the ``sam/`` event files,
and lets the database judge: the new password logs in, the old one is refused. Then
everything it started is stopped, on SIGTERM and SIGHUP too. Needs root (the daemon)
and Python 3.13 (the image).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from devtools.embedded import local_secrets_manager
from devtools.postgres import PostgresServer
from devtools.processes import exit_on_termination
from devtools.sam_local import REGION, ROOT, SamLocalStack
from devtools.service import STEPS, RotationService

if TYPE_CHECKING:
    from collections.abc import Callable

FUNCTION = "PostgreSQLRotationFunction"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--built", type=Path, help="an existing `sam build` output directory")
    arguments = parser.parse_args(argv)
    # `timeout`, a CI runner's cancel and `kill PID` send SIGTERM; a closed terminal
    # SIGHUP: either one tears the stack down as ^C does.
    exit_on_termination()
    began = time.perf_counter()

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {line}", flush=True)

    with SamLocalStack(arguments.built, progress=progress) as stack:
        progress("PostgreSQL: starting a throwaway server (TLS, certificate for 127.0.0.1 and the bridge)")
        server = stack.start_server(PostgresServer())  # reachable from containers now
        try:
            return rotate(stack, server, stack.bridge_address, server.port, progress)
        finally:
            server.stop()


def rotate(
    stack: SamLocalStack, server: PostgresServer, host: str, port: int, progress: Callable[[str], None]
) -> int:
    import boto3

    with local_secrets_manager() as endpoint:
        client = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto's
        )
        service = RotationService(region=REGION)
        user, password = f"app_{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        server.create_database(user)
        server.create_user(user, password, user)
        body = {"engine": "postgres", "host": host, "port": port, "username": user, "password": password}
        arn = client.create_secret(
            Name=f"local-invoke/{user}", SecretString=json.dumps({**body, "dbname": user})
        )["ARN"]
        service.enable_rotation(arn)
        started = service.start(arn)
        progress(f"Secrets Manager (moto, {endpoint}): secret {arn}, pending version {started.token}")
        variables = {
            "DB_CA_BUNDLE": stack.place_ca_bundle(FUNCTION, server.ca_file),
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        for step in STEPS:
            event = json.loads((ROOT / "sam" / "events" / f"{step}.json").read_text())
            event.update(SecretId=arn, ClientRequestToken=started.token, RotationToken=started.rotation_token)
            progress(f"sam local invoke {FUNCTION} -e sam/events/{step}.json")
            invocation = stack.invoke(FUNCTION, event, endpoint, variables)
            response = invocation.response() if invocation.returncode == 0 else None
            if invocation.returncode != 0 or (isinstance(response, dict) and "errorType" in response):
                print(invocation.logs[-3000:], file=sys.stderr)
                progress(f"{step} failed")
                return 1
            progress(f"{step} done in {invocation.seconds:.1f} s")
        current = json.loads(client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    new_works = server.can_login(user, current["password"], user)
    old_refused = not server.can_login(user, password, user)
    progress(
        f"PostgreSQL judges: the new password {'logs in' if new_works else 'is REFUSED'}, "
        f"the old one {'is refused' if old_refused else 'still LOGS IN'}"
    )
    timings = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in stack.timings.items())
    progress(f"set-up: {timings}")
    return 0 if new_works and old_refused else 1


if __name__ == "__main__":
    sys.exit(main())
