"""Benchmark: figures per rotation, printed (never asserted).

* Secrets Manager calls per rotation by operation (a warm container, and a new
  container for every step), logins refused by the server, wall time;
* the handler module's import time against importing boto3 alone (fresh interpreters);
* peak memory of a separate process that runs rotations the way Lambda does.

Runs on the embedded default: a throwaway PostgreSQL and MariaDB, and moto's server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from devtools.service import STEPS, LambdaContext

if TYPE_CHECKING:
    from devtools.embedded import Embedded

DRIVERS = {
    "postgresql": "psycopg2",
    "mariadb": "pymysql",
    "mongodb": "pymongo",
    "redshift": "redshift_connector",
    "redis": "redis",
}


def import_time_ms(modules: str, runs: int) -> float:
    """Median import time of ``modules`` in fresh interpreters (interpreter start excluded)."""
    code = f"import time; t = time.perf_counter(); import {modules}; print((time.perf_counter() - t) * 1000)"
    samples = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]
    return statistics.median(samples)


def rotation_figures(env: Embedded, strategy: str, rotations: int) -> dict[str, Any]:
    """Calls, refused logins and wall time of ``rotations`` rotations in one warm container,
    then the calls of one rotation with a new container for every step."""
    import importlib

    from common.handler import RotationFunction
    from common.settings import Settings

    engine = importlib.import_module(env.handler_module).lambda_handler.rotator.engine

    def container() -> RotationFunction[Any]:
        return RotationFunction(engine, client=env.client, settings=Settings.from_environ(env.env))

    arn = env.user_secret(f"bench_{strategy}", strategy)
    handler = container()
    walls, per_rotation = [], []
    refused_before = env.server.failed_logins()
    for _ in range(rotations):
        before = handler.secrets_manager_calls
        started = time.perf_counter()
        env.service.rotate(handler, arn)
        walls.append((time.perf_counter() - started) * 1000)
        per_rotation.append(handler.secrets_manager_calls - before)
    request, cold = env.service.start(arn), 0
    for step in STEPS:
        fresh = container()
        fresh(request.event(step), LambdaContext())
        cold += fresh.secrets_manager_calls.total()
    return {
        "first": per_rotation[0],
        "later": per_rotation[-1],
        "cold": cold,
        "refused": env.server.failed_logins() - refused_before,
        "median_ms": statistics.median(walls),
        "max_ms": max(walls),
    }


def peak_memory_mib(env: Embedded, rotations: int) -> float:
    """Peak RSS of a child process that imports only the handler and runs rotations."""
    arn = env.user_secret("bench_memory")
    child = subprocess.Popen(
        [sys.executable, "-m", "devtools.lambda_child", f"{env.handler_module}:lambda_handler"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env.env},
    )
    assert child.stdin is not None and child.stdout is not None
    for _ in range(rotations):
        request = env.service.start(arn)
        for step in STEPS:
            child.stdin.write(json.dumps(request.event(step)) + "\n")
            child.stdin.flush()
            answer = child.stdout.readline().strip()
            if answer != "ok":
                raise SystemExit(f"the function process failed at {step}: {answer}")
    child.stdin.close()
    summary = child.stdout.readline().split()
    child.wait(timeout=30)
    return int(summary[1]) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rotations", type=int, default=20)
    parser.add_argument("--import-runs", type=int, default=21)
    parser.add_argument("--engine", choices=sorted(DRIVERS), action="append", help="default: all")
    args = parser.parse_args(argv)

    from common.observability import logger
    from devtools.embedded import ENGINES, embedded

    logger.setLevel("WARNING")  # figures, not a line per step
    boto3_ms = import_time_ms("boto3", args.import_runs)
    print(
        f"\nBenchmark: {args.rotations} rotations per strategy and engine; moto's server as Secrets Manager"
    )
    print(f"import boto3 alone: {boto3_ms:.0f} ms (median of {args.import_runs} fresh interpreters)")
    for engine in args.engine or sorted(DRIVERS):
        with embedded(engine) as env:
            figures = {s: rotation_figures(env, s, args.rotations) for s in ("single", "alternating")}
            memory = peak_memory_mib(env, args.rotations)
        handler = ENGINES[engine][1]
        handler_ms = import_time_ms(handler, args.import_runs)
        # The handler imports boto3 and its driver lazily; a cold start pays for all three.
        with_boto3_ms = import_time_ms(f"{handler}, boto3", args.import_runs)
        cold_ms = import_time_ms(f"{handler}, boto3, {DRIVERS[engine]}", args.import_runs)
        print(f"\n{engine}")
        print(
            f"  {'strategy':<12} {'SM calls: 1st / later / cold':<30} {'refused logins':<16} wall median/max"
        )
        for strategy, f in figures.items():
            calls = f"{f['first'].total()} / {f['later'].total()} / {f['cold']}"
            wall = f"{f['median_ms']:.0f} / {f['max_ms']:.0f} ms"
            print(f"  {strategy:<12} {calls:<30} {f['refused']:<16} {wall}")
            print(f"  {'':<12} first rotation by operation: {dict(sorted(f['first'].items()))}")
        print(
            f"  import: handler module {handler_ms:.0f} ms; + boto3 {with_boto3_ms:.0f} ms "
            f"(x{with_boto3_ms / boto3_ms:.2f} boto3); + {DRIVERS[engine]} {cold_ms:.0f} ms "
            f"(x{cold_ms / boto3_ms:.2f})"
        )
        print(f"  peak memory of a Lambda-like process over {args.rotations} rotations: {memory:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
