"""Rotation under load on Redis: with two passwords held, applications that open a
session per request, and never refresh the secret on purpose, see no failed request."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from appkit.connections import RotationAwareConnection
from appkit.retrieval import PowertoolsFetcher, SecretCache
from common.settings import Settings
from devtools.embedded import local_secrets_manager
from devtools.service import RotationService
from rotators.redis.engine import RedisEngine, RedisSession
from tests.helpers import handler_for, local_client
from tests.redis.conftest import make_account

if TYPE_CHECKING:
    from devtools.redis_server import RedisServer

ROTATIONS_PER_STRATEGY = 3
WORKERS_PER_SECRET = 3
CACHE_AGE = 0.5
# Rotations further apart than the cache's age: an application reads each new secret
# before the next rotation drops the password it still holds, as with any schedule.
ROTATION_GAP = 2 * CACHE_AGE


def ping(session: RedisSession) -> int:
    assert session.client is not None
    return int(session.client.ping() is True)


def test_no_request_fails_and_no_refresh_with_two_passwords(redis_server: RedisServer) -> None:
    engine = RedisEngine()
    settings = Settings.from_environ({"DB_CA_BUNDLE": redis_server.ca_file})
    with local_secrets_manager() as endpoint:
        client, service = local_client(endpoint), RotationService()
        arns = [
            make_account(redis_server, client, service, with_master=with_master).arn
            for with_master in (False, True)
        ]
        stop, rotating = threading.Event(), threading.Event()
        totals: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        lock = threading.Lock()

        def worker(secret_id: str) -> None:
            fetcher = PowertoolsFetcher(local_client(endpoint))
            database: RotationAwareConnection[Any] = RotationAwareConnection(
                engine, secret_id, SecretCache(fetcher, max_age=CACHE_AGE), settings=settings, reuse=False
            )
            database.prime()
            done = failed = during = 0
            while not stop.is_set():
                during += rotating.is_set()  # a request inside a setSecret-to-finishSecret window
                try:
                    done += database.run(ping)
                except Exception as error:  # noqa: BLE001 - every failure counts, by type
                    failed += 1
                    with lock:
                        failures[f"{type(error).__name__}: {error}"] += 1
            with lock:
                totals["requests"] += done + failed
                totals["failed"] += failed
                totals["refreshes"] += database.refreshes
                totals["during_rotation"] += during

        threads = [
            threading.Thread(target=worker, args=(arn,), daemon=True)
            for arn in arns
            for _ in range(WORKERS_PER_SECRET)
        ]
        for thread in threads:
            thread.start()
        rotator = handler_for(engine, client, DB_CA_BUNDLE=redis_server.ca_file)
        refused_before = redis_server.failed_logins()
        started = time.monotonic()
        for _ in range(ROTATIONS_PER_STRATEGY):
            time.sleep(ROTATION_GAP)
            for arn in arns:
                service.rotate(rotator, arn, lambda step: rotating.set() if step == "setSecret" else None)
                rotating.clear()
        time.sleep(ROTATION_GAP)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        elapsed = time.monotonic() - started
        refused = redis_server.failed_logins() - refused_before

    print(
        f"\nredis: {totals['requests']} requests, a session each, by {len(threads)} workers "
        f"in {elapsed:.1f} s "
        f"({totals['during_rotation']} inside a rotation's setSecret-finishSecret window) across "
        f"{2 * ROTATIONS_PER_STRATEGY} rotations: {totals['failed']} failed {dict(failures)}; "
        f"{totals['refreshes']} refreshes; {refused} logins refused by the server"
    )
    assert totals["failed"] == 0, dict(failures)
    assert totals["refreshes"] == 0
    # The machine may be busy: what matters is that requests met every state of a rotation.
    assert totals["requests"] > 10 * len(threads)
    assert totals["during_rotation"] > 0
