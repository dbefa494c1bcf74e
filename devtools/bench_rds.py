"""Benchmark for RDS topologies: figures printed, never asserted.

* Secrets Manager and RDS calls per alternating-users rotation: a master secret that
  names its host (the figure before RDS-managed masters were served) against an
  RDS-managed master, with the user's secret on the writer and on a read replica; the
  first rotation in a container, and a later one in the same container;
* the wait for a streaming standby: setSecret's wait on the WAL position, testSecret's
  login retries and testSecret's duration, median and max over the rotations, single
  user and alternating, with the standby's own lag and with an apply delay;
* logins the standby refused during those rotations.

Runs in this process: moto as Secrets Manager and RDS, a throwaway PostgreSQL primary
and its streaming standby, the RDS names pointed at them.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

from devtools.service import STEPS, LambdaContext, RotationService, behave_like_aws

if TYPE_CHECKING:
    from collections import Counter

    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer, PostgresStandby

REGION = "us-east-1"


class Bench:
    """The servers, the clients and the handler factory of one benchmark run."""

    def __init__(
        self,
        primary: PostgresServer,
        standby: PostgresStandby,
        sm: SecretsManagerClient,
        rds: RDSClient,
    ) -> None:
        self.primary, self.standby, self.sm, self.rds = primary, standby, sm, rds
        self.service = RotationService(region=REGION)

    def container(self) -> RotationFunction[Any]:
        from common.handler import RotationFunction
        from common.settings import Settings
        from rotators.postgresql.engine import PostgresEngine

        settings = Settings.from_environ({"DB_CA_BUNDLE": self.primary.ca_file})
        return RotationFunction(PostgresEngine(), client=self.sm, settings=settings, rds_client=self.rds)

    def user_secret(self, host: str, masterarn: str | None) -> str:
        user, password, dbname = (
            f"bench_{secrets.token_hex(4)}",
            secrets.token_urlsafe(24),
            f"db_{secrets.token_hex(4)}",
        )
        self.primary.create_database(dbname)
        self.primary.create_user(user, password, dbname)
        body: dict[str, Any] = {
            "engine": "postgres",
            "host": host,
            "port": 5432,
            "username": user,
            "password": password,
            "dbname": dbname,
        }
        if masterarn:
            body["masterarn"] = masterarn
        arn = self.sm.create_secret(Name=user, SecretString=json.dumps(body))["ARN"]
        self.service.enable_rotation(arn)
        self.standby.catch_up()
        return arn

    def own_master(self, host: str) -> str:
        """A master secret that names its server, as before RDS managed it."""
        user, password = f"admin_{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        self.primary.create_master(user, password)
        body = {"engine": "postgres", "host": host, "port": 5432, "username": user, "password": password}
        return self.sm.create_secret(Name=user, SecretString=json.dumps(body))["ARN"]

    def rotate(self, handler: RotationFunction[Any], arn: str) -> tuple[Counter[str], float]:
        """One rotation: the calls it made (Secrets Manager and RDS) and testSecret's seconds."""
        before = handler.secrets_manager_calls + handler.rds_calls
        request = self.service.start(arn)
        test_seconds = 0.0
        for step in STEPS:
            started = time.perf_counter()
            handler(request.event(step), LambdaContext())
            if step == "testSecret":
                test_seconds = time.perf_counter() - started
        return handler.secrets_manager_calls + handler.rds_calls - before, test_seconds


def calls_figures(bench: Bench, writer: str, reader: str, managed_master: str) -> None:
    cases = {
        "master names its host, secret on writer": (bench.own_master(writer), writer),
        "RDS-managed master, secret on writer": (managed_master, writer),
        "RDS-managed master, secret on replica": (managed_master, reader),
    }
    print(f"\n  {'alternating users':<42} {'calls: 1st / later':<20} first rotation by operation")
    for name, (master, host) in cases.items():
        arn = bench.user_secret(host, master)
        handler = bench.container()
        first, _ = bench.rotate(handler, arn)
        later, _ = bench.rotate(handler, arn)
        print(f"  {name:<42} {f'{first.total()} / {later.total()}':<20} {dict(sorted(first.items()))}")


def wait_figures(bench: Bench, reader: str, managed_master: str, rotations: int, delays: list[int]) -> None:
    print(
        f"\n  {'standby wait (' + str(rotations) + ' rotations)':<34} {'setSecret WAL wait':<22} "
        f"{'testSecret login wait':<24} {'testSecret step':<20} refused"
    )
    for delay in delays:
        bench.standby.set_apply_delay(delay)
        for strategy in ("single", "alternating"):
            arn = bench.user_secret(reader, managed_master if strategy == "alternating" else None)
            handler = bench.container()
            refused = bench.standby.failed_logins()
            tests = [bench.rotate(handler, arn)[1] * 1000 for _ in range(rotations)]
            waits = handler.rotator.replica_wait.waits
            position = [seconds * 1000 for how, seconds in waits if how == "position"] or [0.0]
            login = [seconds * 1000 for how, seconds in waits if how == "login"] or [0.0]
            print(
                f"  {f'{strategy}, apply delay {delay} ms':<34} {_median_max(position):<22} "
                f"{_median_max(login):<24} {_median_max(tests):<20} {bench.standby.failed_logins() - refused}"
            )
    bench.standby.set_apply_delay(0)


def _median_max(samples: list[float]) -> str:
    return f"{statistics.median(samples):.0f} / {max(samples):.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rotations", type=int, default=20)
    parser.add_argument("--apply-delay-ms", type=int, default=200, help="the delayed standby's lag")
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # figures, not metric lines
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SecretsRotationBench")

    import boto3
    from moto import mock_aws

    from common.observability import logger
    from devtools.postgres import PostgresServer, PostgresStandby
    from devtools.rds_endpoints import CERTIFICATE_NAMES, EndpointMap, managed_instance

    logger.setLevel("WARNING")
    behave_like_aws()
    primary = PostgresServer()
    primary.certificate_hosts += CERTIFICATE_NAMES
    primary.start()
    standby: PostgresStandby | None = None
    try:
        primary.execute("ALTER SYSTEM SET synchronous_commit = on")
        primary.execute("SELECT pg_reload_conf()")
        standby = PostgresStandby(primary).start()
        with mock_aws(), EndpointMap().installed() as endpoints:
            sm = boto3.client("secretsmanager", region_name=REGION)
            rds = boto3.client("rds", region_name=REGION)
            bench = Bench(primary, standby, sm, rds)
            database = managed_instance(rds, sm, endpoints, (primary.port, standby.port))
            primary.create_master(database.master_user, database.master_password)
            print(
                "\nBenchmark: RDS topologies; moto as Secrets Manager and RDS, PostgreSQL + streaming standby"
            )
            calls_figures(bench, database.writer, database.reader, database.master_arn)
            wait_figures(
                bench, database.reader, database.master_arn, args.rotations, [0, args.apply_delay_ms]
            )
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
