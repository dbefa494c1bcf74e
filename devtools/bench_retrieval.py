"""Benchmark of secret retrieval for application functions (figures, never asserted).

* latency of a cached ``SecretCache.get`` against Powertools' ``get_secret`` (cached)
  and a plain boto3 ``GetSecretValue`` (to moto's server on loopback: a floor, not AWS);
* Secrets Manager reads per 1,000 application requests, without and with rotations;
* the added latency of the one request that meets a rotated password.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from devtools.embedded import Embedded


def per_call_us(function: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - started) / count * 1e6


def query(connection: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def requests_with_rotations(
    env: Embedded, arn: str, *, reuse: bool, requests: int, rotate_every: int | None
) -> tuple[int, list[float], list[int]]:
    """(Secrets Manager reads, per-request latencies in ms, indexes of the requests right
    after a rotation) for one warm container."""
    import importlib

    from appkit.connections import RotationAwareConnection
    from appkit.retrieval import PowertoolsFetcher, SecretCache
    from common.settings import Settings

    engine = importlib.import_module(env.handler_module).lambda_handler.rotator.engine
    rotator = importlib.import_module(env.handler_module).lambda_handler
    fetcher = PowertoolsFetcher(env.client)
    database = RotationAwareConnection(
        engine, arn, SecretCache(fetcher, max_age=300), settings=Settings.from_environ(env.env), reuse=reuse
    )
    database.prime()
    latencies, after_rotation = [], []
    for index in range(requests):
        if rotate_every and index and index % rotate_every == 0:
            env.service.rotate(rotator, arn)
            after_rotation.append(index)
        started = time.perf_counter()
        database.run(query)
        latencies.append((time.perf_counter() - started) * 1000)
    database.close()
    return fetcher.calls, latencies, after_rotation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args(argv)

    from aws_lambda_powertools.utilities import parameters

    from appkit.retrieval import PowertoolsFetcher, SecretCache
    from common.observability import logger
    from devtools.embedded import embedded

    logger.setLevel("WARNING")
    with embedded("postgresql") as env:
        arn = env.user_secret("bench_app")
        cache = SecretCache(PowertoolsFetcher(env.client), max_age=300)
        cache.get(arn)
        ours = per_call_us(lambda: cache.get(arn), 20000)
        parameters.get_secret(arn)
        powertools = per_call_us(lambda: parameters.get_secret(arn), 5000)
        plain = per_call_us(lambda: env.client.get_secret_value(SecretId=arn), 200)
        print("\nSecret retrieval for application functions (PostgreSQL, moto's server on loopback)")
        print(
            f"  cached SecretCache.get: {ours:.1f} us; Powertools get_secret (cached): {powertools:.1f} us; "
            f"boto3 GetSecretValue: {plain:.0f} us (loopback, no TLS: AWS adds network time)"
        )
        rotations = 5
        for reuse in (True, False):
            mode = "a reused session" if reuse else "a new session per request"
            steady_calls, steady, _ = requests_with_rotations(
                env,
                env.user_secret(f"bench_steady_{int(reuse)}"),
                reuse=reuse,
                requests=args.requests,
                rotate_every=None,
            )
            calls, latencies, after = requests_with_rotations(
                env,
                env.user_secret(f"bench_rotated_{int(reuse)}"),
                reuse=reuse,
                requests=args.requests,
                rotate_every=args.requests // (rotations + 1),
            )
            median = statistics.median(steady)
            met = [latencies[i] for i in after]
            print(
                f"  {mode}: Secrets Manager reads per {args.requests} requests: {steady_calls} without "
                f"rotations, {calls} with {len(after)} single-user rotations"
            )
            print(
                f"    request latency median {median:.2f} ms; the request after each rotation "
                f"{statistics.median(met):.2f} ms (+{statistics.median(met) - median:.2f} ms)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
