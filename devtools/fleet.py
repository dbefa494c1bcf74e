"""A fleet of rotations at once, each in a process of its own, as Lambda runs concurrent
invocations in separate containers.

Secrets Manager's side (registering each pending version) is played here, against moto's
server in this process; every rotation's four steps go to one child process (a
"container") that imports the handler module and its driver before it says ``ready``, so
that the time measured for a rotation is the rotation's, as in a warm container.
``concurrency`` bounds how many containers run at once, as the function's reserved
concurrency does (the template's ``ReservedConcurrency``); with it equal to the number of
secrets, every rotation has a process of its own and all start together.

Figures per fleet: each rotation's wall time in a warm container (each container first
runs one untimed rotation; those first rotations, all at once, are reported apart), the
CPU time each rotation used in its container, the database server's and this process's
CPU time per rotation (where the machine's time went), the peak number of client
sessions on the server (sampled every 20 ms: a figure, not a guarantee), the logins the
server refused (from its own log). When every member has a container of its own, the
rotations start together: each takes its container and is counted in flight, then all
wait at a barrier (bounded: ``BARRIER_TIMEOUT_S``), so that all are in progress at once
whatever the scheduler does (``peak_in_flight`` is counted before the barrier: it checks
the harness).
Secrets Manager is moto's server in this process: one Python process answers every
container's calls, which AWS's service does not have to do.

``python -m devtools.fleet`` is the benchmark (``make bench``); ``--child`` is the
container's entry point.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devtools.service import STEPS

if TYPE_CHECKING:
    from devtools.embedded import Embedded

#: engine -> (handler, driver module a container imports before it is ready).
HANDLERS = {
    "postgresql": ("rotators.postgresql.app:lambda_handler", "psycopg2"),
    "mariadb": ("rotators.mysql.app:lambda_handler", "pymysql"),
}
#: The template's ReservedConcurrency default (see template.yaml).
DEFAULT_CONCURRENCY = 10


@dataclass
class Member:
    """One secret of the fleet."""

    arn: str
    strategy: str


@dataclass
class FleetResult:
    """What a fleet run measured."""

    rotation_ms: list[float] = field(default_factory=list)
    #: Each rotation's time less the time its container waited for a CPU (run queue):
    #: what it would have taken with a CPU of its own, as each Lambda container has.
    own_cpu_ms: list[float] = field(default_factory=list)
    #: CPU time each rotation used in its container (user and system).
    cpu_ms: list[float] = field(default_factory=list)
    #: The container processes (pids) the rotations ran in.
    processes: set[int] = field(default_factory=set)
    #: The most rotations in progress at once (started and not finished).
    peak_in_flight: int = 0
    #: CPU time of the database server (its processes, ended backends included) during
    #: the run.
    server_cpu_s: float = 0.0
    #: The containers' first rotations (untimed warm-ups, all at once), when asked for.
    cold_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    refused_logins: int = 0
    peak_sessions: int = 0
    wall_s: float = 0.0
    #: CPU time of this process (moto's server answering every container, and the
    #: rotations' start) while the members rotated: near ``wall_s``, it is the bottleneck.
    service_cpu_s: float = 0.0

    def percentile(self, share: float, of: str = "rotation_ms") -> float:
        ordered = sorted(getattr(self, of))
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def make_fleet(env: Embedded, single: int, alternating: int, prefix: str = "fleet") -> list[Member]:
    """``single`` single-user secrets and ``alternating`` alternating-users secrets that
    share one master user and its secret, and one database (names start with ``prefix``
    and the engine's)."""
    server = env.server
    prefix = f"{prefix}_{server.engine_key}"
    master, master_password = f"{prefix}_master", secrets.token_urlsafe(24)
    server.create_master(master, master_password)
    base = {"engine": server.engine_key, "host": server.host, "port": server.port}
    master_arn = env.client.create_secret(
        Name=f"{prefix}/master",
        SecretString=json.dumps(
            base | {"username": master, "password": master_password, "dbname": server.admin_database}
        ),
    )["ARN"]
    # Every user may use one database: an alternating pair's proof needs something to hold.
    database = f"{prefix}_db"
    server.create_database(database)
    members = []
    for index in range(single + alternating):
        strategy = "single" if index < single else "alternating"
        user, password = f"{prefix}_{strategy[0]}{index:03}", secrets.token_urlsafe(24)
        server.create_user(user, password, database)
        body = base | {"username": user, "password": password, "dbname": database}
        if strategy == "alternating":
            body["masterarn"] = master_arn
        arn = env.client.create_secret(Name=f"{prefix}/{user}", SecretString=json.dumps(body))["ARN"]
        env.service.enable_rotation(arn)
        members.append(Member(arn, strategy))
    return members


class Container:
    """A child process that runs rotation steps, one JSON event per line."""

    def __init__(self, engine: str, environ: dict[str, str]) -> None:
        handler, driver = HANDLERS[engine]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.fleet", "--child", handler, "--preload", driver],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **environ},
        )
        answer, self.waited_ns, self.cpu_ns = self._answer()
        if answer != "ready":
            raise RuntimeError("the container did not start")

    def _answer(self) -> tuple[str, int, int]:
        """The child's answer, the time it has waited for a CPU so far and the CPU time it
        has used so far (ns)."""
        assert self.process.stdout is not None
        answer, waited, cpu = self.process.stdout.readline().strip().rsplit(" ", 2)
        return answer, int(waited), int(cpu)

    def rotate(self, env: Embedded, arn: str) -> tuple[float, float, float, str]:
        """Start a rotation and run its steps here; (milliseconds, of which milliseconds
        the container waited for a CPU, milliseconds of CPU it used, "" or the failure)."""
        assert self.process.stdin is not None
        request = env.service.start(arn)
        started, waited_before, cpu_before = time.perf_counter(), self.waited_ns, self.cpu_ns
        failure = ""
        for step in STEPS:
            self.process.stdin.write(json.dumps(request.event(step)) + "\n")
            self.process.stdin.flush()
            answer, self.waited_ns, self.cpu_ns = self._answer()
            if answer != "ok":
                failure = f"{step}: {answer}"
                break
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, (self.waited_ns - waited_before) / 1e6, (self.cpu_ns - cpu_before) / 1e6, failure

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


class SessionSampler:
    """Samples the server's client sessions every 20 ms; ``peak`` is the highest seen."""

    def __init__(self, env: Embedded) -> None:
        self.count = _session_counter(env)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.count())


def _session_counter(env: Embedded) -> Any:
    """A function returning the server's client sessions, the sampler's own excluded."""
    from devtools.mariadb import MariaDBServer
    from devtools.postgres import PostgresServer

    server = env.server
    if isinstance(server, MariaDBServer):
        mariadb = server.connect_as(server.admin_user, server.admin_password)

        def count_mariadb() -> int:
            with mariadb.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) - 1 FROM information_schema.PROCESSLIST")
                return int(cursor.fetchone()[0])

        return count_mariadb
    assert isinstance(server, PostgresServer)
    postgres = server.admin_connection()

    def count_postgres() -> int:
        with postgres.cursor() as cursor:
            cursor.execute("SELECT count(*) - 1 FROM pg_stat_activity WHERE backend_type = 'client backend'")
            row = cursor.fetchone()
            return int(row[0]) if row else 0

    return count_postgres


#: How long the rotations of a batch wait for each other at the starting barrier.
BARRIER_TIMEOUT_S = 120.0


def run_fleet(
    env: Embedded, engine: str, members: list[Member], concurrency: int, warmups: list[Member] | None = None
) -> FleetResult:
    """Rotate every member once, at most ``concurrency`` at a time, each rotation in its own
    container (containers are started first and reused, as warm Lambda containers are).
    With ``warmups`` (one per container), every container first rotates one of them, all
    at once: their times are ``cold_ms``, and the members' are those of warm containers."""
    containers = [Container(engine, env.env) for _ in range(min(concurrency, len(members)))]
    free = list(containers)
    lock = threading.Lock()
    result = FleetResult()
    refused_before = env.server.failed_logins()
    in_flight = 0

    def rotate(member: Member, into: list[float], together: threading.Barrier | None) -> None:
        nonlocal in_flight
        # Counted before the barrier: every rotation of the batch is counted before any
        # starts, so a fast one that ends before a slow thread is scheduled cannot lower
        # the peak (which then checks the harness, not the database).
        with lock:
            container = free.pop()
            in_flight += 1
            if into is result.rotation_ms:
                result.peak_in_flight = max(result.peak_in_flight, in_flight)
        try:
            if together is not None:
                # Every rotation holds its container: all start together. Bounded, so that a
                # thread that never arrives fails the fleet (BrokenBarrierError) instead of
                # hanging it.
                together.wait(timeout=BARRIER_TIMEOUT_S)
            elapsed, waited, cpu, failure = container.rotate(env, member.arn)
        finally:
            with lock:
                in_flight -= 1
                free.append(container)
        with lock:
            into.append(elapsed)
            if into is result.rotation_ms:
                result.own_cpu_ms.append(elapsed - waited)
                result.cpu_ms.append(cpu)
                result.processes.add(container.process.pid)
            if failure:
                result.failures.append(f"{member.arn} ({member.strategy}) {failure}")

    def phase(batch: list[Member], into: list[float]) -> None:
        together = threading.Barrier(len(batch)) if len(batch) == len(containers) else None
        list(pool.map(lambda member: rotate(member, into, together), batch))

    try:
        with SessionSampler(env) as sampler, ThreadPoolExecutor(len(containers)) as pool:
            if warmups:
                phase(warmups[: len(containers)], result.cold_ms)
            started, cpu, server_cpu = time.perf_counter(), time.process_time(), server_cpu_s(env)
            phase(members, result.rotation_ms)
            result.wall_s = time.perf_counter() - started
            result.service_cpu_s = time.process_time() - cpu
        result.peak_sessions = sampler.peak
    finally:
        for container in containers:
            container.stop()
    # The server's CPU once the containers are gone (their sessions ended and counted).
    result.server_cpu_s = server_cpu_s(env) - server_cpu
    result.refused_logins = env.server.failed_logins() - refused_before
    return result


def server_cpu_s(env: Embedded) -> float:
    """CPU time the database server has used so far (user and system): its main process
    and its children that have ended (PostgreSQL's backends), from Linux's /proc; 0.0
    where that cannot be read."""
    from devtools.mariadb import MariaDBServer

    server: Any = env.server
    pid_file = (
        server.root / "mysqld.pid"
        if isinstance(server, MariaDBServer)
        else server.data_dir / "postmaster.pid"
    )
    try:
        pid = int(pid_file.read_text().split()[0])
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
        ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    except (OSError, ValueError, IndexError):
        return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")


def logs_in_as_own_user(env: Embedded, member: Member) -> bool:
    """Whether the secret's AWSCURRENT logs in, as the user it names."""
    current = env.current(member.arn)
    login, _, _ = env.server.whoami(current["username"], current["password"], current.get("dbname"))
    return bool(login == current["username"])


def child(handler_name: str, preload: list[str]) -> None:
    """The container: import, say ``ready``, then run one event per line."""
    from devtools.lambda_child import answers_apart, serve

    answers = answers_apart()
    for module in ["boto3", *preload]:
        importlib.import_module(module)
    module_name, attribute = handler_name.split(":")
    handler = getattr(importlib.import_module(module_name), attribute)
    print(f"ready {run_queue_wait_ns()} {time.process_time_ns()}", file=answers, flush=True)
    serve(handler, module_name, answers, note=lambda: f" {run_queue_wait_ns()} {time.process_time_ns()}")


def run_queue_wait_ns() -> int:
    """How long this process has waited for a CPU, runnable but not running (Linux's
    schedstat; 0 where there is none)."""
    try:
        with open("/proc/self/schedstat", encoding="ascii") as schedstat:
            return int(schedstat.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def bench(engine: str, single: int, alternating: int, concurrency_levels: list[int], lone_runs: int) -> None:
    from devtools.embedded import embedded

    with embedded(engine) as env:
        lone = run_fleet(
            env,
            engine,
            make_fleet(env, lone_runs, lone_runs, prefix="lone"),
            1,
            warmups=make_fleet(env, 1, 0, prefix="lone_warmup"),
        )
        lone_ms = statistics.median(lone.rotation_ms)
        lone_own = statistics.median(lone.own_cpu_ms)
        print(
            f"\n{engine}: a lone rotation in a warm container: {lone_ms:.0f} ms, {lone_own:.0f} ms without "
            f"waiting for a CPU (medians of {len(lone.rotation_ms)}); its container's first: "
            f"{lone.cold_ms[0]:.0f} ms; CPU per rotation: {_cpu_per_rotation(lone)}"
        )
        print(
            f"  {'fleet':<26} {'p50 ms':>6} {'p95 ms':>6} {'x lone':>6} | {'own CPU p50':>11} {'p95':>5} "
            f"{'x lone':>6} | {'1st p95':>7} {'sessions':>8} {'refused':>7} {'failed':>6} {'wall s':>6} "
            f"{'moto CPU s':>10}"
        )
        for level, concurrency in enumerate(concurrency_levels):
            members = make_fleet(env, single, alternating, prefix=f"fleet{level}")
            warmups = make_fleet(env, min(concurrency, len(members)), 0, prefix=f"warmup{level}")
            result = run_fleet(env, engine, members, concurrency, warmups)
            own = sum(logs_in_as_own_user(env, member) for member in members)
            label = f"{single}+{alternating}, concurrency {concurrency}"
            p95, own_p95 = result.percentile(0.95), result.percentile(0.95, "own_cpu_ms")
            print(
                f"  {label:<26} {result.percentile(0.5):>6.0f} {p95:>6.0f} {p95 / lone_ms:>6.1f} | "
                f"{result.percentile(0.5, 'own_cpu_ms'):>11.0f} {own_p95:>5.0f} {own_p95 / lone_own:>6.1f} | "
                f"{result.percentile(0.95, 'cold_ms'):>7.0f} {result.peak_sessions:>8} "
                f"{result.refused_logins:>7} {len(result.failures):>6} {result.wall_s:>6.1f} "
                f"{result.service_cpu_s:>10.1f}"
            )
            print(f"  {'':<26} CPU per rotation: {_cpu_per_rotation(result)}")
            print(f"  {'':<26} AWSCURRENT logs in as its own user: {own}/{len(members)}")
            for failure in result.failures[:3]:
                print(f"  failed: {failure}")


def _cpu_per_rotation(result: FleetResult) -> str:
    """Where a rotation's time went, in CPU milliseconds per rotation: its container
    (median), the database server and moto's server (this process), averaged."""
    count = len(result.rotation_ms) or 1
    container = statistics.median(result.cpu_ms) if result.cpu_ms else 0.0
    return (
        f"container {container:.0f} ms, database server {result.server_cpu_s * 1000 / count:.0f} ms, "
        f"moto {result.service_cpu_s * 1000 / count:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--preload", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=sorted(HANDLERS), action="append", help="default: both")
    parser.add_argument("--single", type=int, default=25)
    parser.add_argument("--alternating", type=int, default=25)
    parser.add_argument(
        "--concurrency",
        type=int,
        action="append",
        help=f"containers at once (repeatable; default: all at once, {DEFAULT_CONCURRENCY}, one per core)",
    )
    parser.add_argument("--lone-runs", type=int, default=5)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.preload)
        return 0
    from common.observability import logger

    logger.setLevel("WARNING")
    # All at once; the template's default; one container per core of this machine (each
    # Lambda container has a CPU of its own, these share the machine's).
    cores = os.cpu_count() or 1
    levels = args.concurrency or [args.single + args.alternating, DEFAULT_CONCURRENCY, cores]
    print(
        f"\nFleet benchmark: {args.single} single-user + {args.alternating} alternating secrets "
        "(one shared master), each rotation in its own process"
    )
    for engine in args.engine or sorted(HANDLERS):
        bench(engine, args.single, args.alternating, levels, args.lone_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
