"""Benchmark of a cold start: what a new container pays before the first statement.

Three whole processes (interpreter start included), run as interleaved triples so that
the machine's load falls on each alike; the figure is the median of ``--pairs`` runs:

* ours: the PostgreSQL handler module imported, then its Secrets Manager client built
  (boto3 imported) and psycopg2 imported: what a new container does before its first
  statement;
* floor: boto3 and psycopg2 imported and a Secrets Manager client built, nothing else;
* AWS-sample-like: what AWS's sample PostgreSQL function does at module level (imports
  boto3, json, logging, os and psycopg2, sets up the root logger, builds a client);
* ours with ``common.coldstart``'s collector handling undone: the cost of our modules
  and Powertools by themselves.

Figures are printed, never asserted; the goal is ours <= 1.05x the floor and below the
AWS-sample-like process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

# In Lambda's order: the runtime imports the handler module, then the first invocation
# builds the rotator (boto3 and its client) and connects (psycopg2).
OURS = """
import rotators.postgresql.app as app
app.lambda_handler.rotator
import psycopg2
"""

# The same with common.coldstart's collector handling undone: what our imports and
# Powertools cost by themselves.
OURS_COLLECTOR_UNTOUCHED = (
    """
import gc
gc.disable = gc.freeze = lambda: None
"""
    + OURS
)

FLOOR = """
import boto3, psycopg2
boto3.client("secretsmanager")
"""

# Written for this benchmark after the shape of AWS's sample function's module level.
AWS_SAMPLE_LIKE = """
import json, logging, os
import boto3, psycopg2
logger = logging.getLogger()
logger.setLevel(logging.INFO)
service_client = boto3.client("secretsmanager", endpoint_url=os.environ.get("SECRETS_MANAGER_ENDPOINT"))
"""

PROGRAMS = {
    "ours": OURS,
    "ours-untouched": OURS_COLLECTOR_UNTOUCHED,
    "floor": FLOOR,
    "aws-sample-like": AWS_SAMPLE_LIKE,
}


def run_ms(program: str, environ: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh interpreter running
    ``program``, in milliseconds. CPU time is what a loaded machine distorts least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", program], env=environ, check=True)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def cold_start_ms(pairs: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU time of each program over ``pairs`` interleaved runs."""
    environ = {
        **os.environ,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        # As on Lambda: no .pyc written by the measured runs (they are read if present).
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    compiling = {**environ, "PYTHONDONTWRITEBYTECODE": ""}
    for program in PROGRAMS.values():  # writes each module's .pyc once, outside the figures
        subprocess.run([sys.executable, "-c", program], env=compiling, check=True)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in PROGRAMS}
    for _ in range(pairs):
        for name, program in PROGRAMS.items():
            samples[name].append(run_ms(program, environ))
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=10)
    args = parser.parse_args(argv)
    figures = cold_start_ms(args.pairs)
    version = "Python " + sys.version.split()[0]
    print(f"\nCold start, PostgreSQL (whole process, median of {args.pairs} interleaved runs, {version})")
    print(f"  {'':<44} {'wall':>8} {'CPU':>8}")
    for label, name in (
        ("ours (handler, then client, then psycopg2)", "ours"),
        ("  the same, collector handling undone", "ours-untouched"),
        ("boto3 + psycopg2 + client alone", "floor"),
        ("AWS-sample-like module level", "aws-sample-like"),
    ):
        wall, cpu = figures[name]
        print(f"  {label:<44} {wall:>5.0f} ms {cpu:>5.0f} ms")
    for index, measure in enumerate(("wall", "CPU")):
        ours, floor, sample = (figures[name][index] for name in ("ours", "floor", "aws-sample-like"))
        print(
            f"  {measure}: ours / alone x{ours / floor:.3f} (goal <= 1.05); "
            f"ours / AWS-sample-like x{ours / sample:.3f} (goal < 1)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
