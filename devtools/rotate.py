"""Local rotation runner: a real rotation through all four steps, step by step.

Default (no arguments): starts a throwaway PostgreSQL (``--engine mariadb``: MariaDB)
with TLS and a local Secrets Manager endpoint (moto's server on 127.0.0.1), creates a
database user and its secret, rotates it exactly as Secrets Manager would (pending
version registered first, ARN as ``SecretId``, a ``RotationToken``) through the real
handler module, then proves with real logins that the new password works and the old
one is refused. Nothing is left behind.

With ``--secret-id``: asks a real Secrets Manager (or ``--endpoint-url``) to rotate that
secret with the rotation function configured on it and follows its labels until the
rotation ends. Passwords are never printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from devtools.service import STEPS, LambdaContext

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.embedded import Embedded


def say(message: str) -> None:
    print(message, flush=True)


def labels_of(client: SecretsManagerClient, arn: str) -> str:
    versions = client.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
    return ", ".join(f"{'+'.join(stages)}={version[:8]}" for version, stages in versions.items() if stages)


def rotate_once(env: Embedded, arn: str, handler: Any) -> None:
    """One rotation, played the way Secrets Manager plays it, with progress per step."""
    failed_before = env.server.failed_logins()
    calls_before = handler.secrets_manager_calls.total()
    request = env.service.start(arn)
    say(f"  pending version {request.token} registered (no value yet)")
    for index, step in enumerate(STEPS, 1):
        started = time.perf_counter()
        handler(request.event(step), LambdaContext("local-postgresql-rotation"))
        elapsed = (time.perf_counter() - started) * 1000
        say(f"  [{index}/4] {step:<12} done in {elapsed:4.0f} ms   labels: {labels_of(env.client, arn)}")
    calls = handler.secrets_manager_calls.total() - calls_before
    say(f"  Secrets Manager calls made by the function: {calls}")
    say(f"  logins refused by the server during the rotation: {env.server.failed_logins() - failed_before}")


def prove(env: Embedded, old: dict[str, Any], new: dict[str, Any], strategy: str) -> None:
    """The new credentials log in over verified TLS; a single user's old password is refused."""
    login, acting, protocol = env.server.whoami(new["username"], new["password"], new.get("dbname"))
    acting_note = f" acting as {acting!r}" if acting != login else ""
    say(f"  ✔ new credentials log in as {login!r}{acting_note} (TLS {protocol}, certificate verified)")
    old_works = env.server.can_login(old["username"], old["password"], old.get("dbname"))
    if getattr(env.server, "keeps_previous_password", False):
        # Redis holds two passwords: the previous one works until the next rotation.
        if not old_works:
            raise SystemExit("✘ the previous password no longer logs in")
        say("  ✔ previous password still logs in until the next rotation (two passwords held)")
    elif strategy == "alternating":
        if not old_works:
            raise SystemExit(f"✘ the previous user {old['username']!r} no longer logs in")
        say(f"  ✔ previous user {old['username']!r} still logs in until the next rotation")
    elif old_works:
        raise SystemExit("✘ the old password still logs in")
    else:
        say("  ✔ old password refused by the server")


def run_embedded(engine: str, strategy: str, rotations: int) -> int:
    """The default job; returns the exit status."""
    import importlib

    from devtools.embedded import embedded

    started = time.perf_counter()
    say(f"▶ starting a throwaway {engine} (TLS on, its own CA) and a local Secrets Manager ...")
    with embedded(engine) as env:
        say(f"  {engine} {env.server.host}:{env.server.port} (data in {env.server.root})")
        say(f"  Secrets Manager (moto) {env.endpoint}")
        arn = env.user_secret("app_user", strategy, dbname="appdb")
        say(f"▶ database user 'app_user' and its secret {arn}")
        # The handler exactly as Lambda imports it, configured by the environment alone.
        lambda_handler = importlib.import_module(env.handler_module).lambda_handler
        for number in range(1, rotations + 1):
            say(f"▶ rotation {number}/{rotations}, {strategy} strategy")
            old = env.current(arn)
            rotate_once(env, arn, lambda_handler)
            prove(env, old, env.current(arn), strategy)
    say(f"✔ done in {time.perf_counter() - started:.1f} s; servers stopped, temp files removed")
    return 0


def run_against_service(secret_id: str, endpoint_url: str | None, region: str | None, timeout: int) -> int:
    """Ask Secrets Manager to rotate ``secret_id`` with its configured function and follow it."""
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=endpoint_url, region_name=region)
    before = client.describe_secret(SecretId=secret_id)
    arn = before["ARN"]
    if not before.get("RotationEnabled") or not before.get("RotationLambdaARN"):
        say(f"✘ {arn} has no rotation function configured: attach one first (see README)")
        return 2
    say(f"▶ asking Secrets Manager to rotate {arn} with {before['RotationLambdaARN']}")
    token = client.rotate_secret(SecretId=arn, RotateImmediately=True)["VersionId"]
    say(f"  pending version {token}")
    deadline, seen = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        versions = client.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
        state = ", ".join(f"{'+'.join(s)}={v[:8]}" for v, s in versions.items() if s)
        if state != seen:
            say(f"  labels: {state}")
            seen = state
        if "AWSCURRENT" in versions.get(token, []) and "AWSPENDING" not in versions.get(token, []):
            say("✔ rotation finished: the new version is AWSCURRENT")
            return 0
        time.sleep(2)
    say(f"✘ the rotation did not finish within {timeout} s; see the function's log group")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--engine", choices=("postgresql", "mariadb", "mongodb", "redshift", "redis"), default="postgresql"
    )
    parser.add_argument("--strategy", choices=("single", "alternating"), default="single")
    parser.add_argument("--rotations", type=int, default=1, help="rotations in a row (default 1)")
    parser.add_argument("--secret-id", help="rotate this secret with a real Secrets Manager instead")
    parser.add_argument("--endpoint-url", help="Secrets Manager endpoint for --secret-id")
    parser.add_argument("--region", help="AWS region for --secret-id")
    parser.add_argument("--timeout", type=int, default=300, help="seconds to wait for --secret-id")
    args = parser.parse_args(argv)
    if args.secret_id:
        return run_against_service(args.secret_id, args.endpoint_url, args.region, args.timeout)
    return run_embedded(args.engine, args.strategy, max(1, args.rotations))


if __name__ == "__main__":
    sys.exit(main())
