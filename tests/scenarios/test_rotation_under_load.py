"""Application workers query continuously through the retrieval module while rotations
run back to back: not one request may fail."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

from appkit.connections import RotationAwareConnection
from appkit.retrieval import PowertoolsFetcher, SecretCache
from common.settings import Settings
from devtools.embedded import local_secrets_manager
from devtools.service import RotationService
from tests.conftest import new_password, unique
from tests.helpers import handler_for, local_client, store_secret

if TYPE_CHECKING:
    from tests.engines import Harness

ROTATIONS_PER_STRATEGY = 3
WORKERS_PER_SECRET = 4  # half reuse one session, half open one per request


def test_no_request_fails_while_rotations_run(harness: Harness) -> None:
    settings = Settings.from_environ({"DB_CA_BUNDLE": harness.server.ca_file})
    with local_secrets_manager() as endpoint:
        client, service = local_client(endpoint), RotationService()
        user, password, dbname = harness.new_user()
        single = store_secret(client, service, unique("load-single"), harness.secret(user, password, dbname))
        master, master_password = unique("admin"), new_password()
        harness.create_master(master, master_password)
        master_arn = store_secret(
            client,
            service,
            unique("load-master"),
            harness.secret(master, master_password, harness.server.admin_database),
            rotation=False,
        )
        other, other_password, other_db = harness.new_user()
        alternating = store_secret(
            client,
            service,
            unique("load-alternating"),
            harness.secret(other, other_password, other_db, masterarn=master_arn),
        )

        stop = threading.Event()
        totals: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        lock = threading.Lock()

        def worker(secret_id: str, reuse: bool) -> None:
            # Each worker is one warm container: its own client, cache and session.
            fetcher = PowertoolsFetcher(local_client(endpoint))
            cache = SecretCache(fetcher, max_age=1.0)
            database = RotationAwareConnection(
                harness.engine, secret_id, cache, settings=settings, reuse=reuse
            )
            database.prime()
            done = failed = 0
            while not stop.is_set():
                try:
                    database.run(harness.probe)
                    done += 1
                except Exception as error:  # noqa: BLE001 - every failure counts, by type
                    failed += 1
                    with lock:
                        failures[f"{type(error).__name__}: {error}"] += 1
            database.close()
            with lock:
                totals["requests"] += done + failed
                totals["failed"] += failed
                totals["secrets_manager_calls"] += fetcher.calls
                totals["refreshes"] += database.refreshes

        threads = [
            threading.Thread(target=worker, args=(secret_id, index % 2 == 0), daemon=True)
            for secret_id in (single, alternating)
            for index in range(WORKERS_PER_SECRET)
        ]
        for thread in threads:
            thread.start()
        rotator = handler_for(harness.engine, client, DB_CA_BUNDLE=harness.server.ca_file)
        started = time.monotonic()
        time.sleep(0.3)
        for _ in range(ROTATIONS_PER_STRATEGY):
            service.rotate(rotator, single)
            service.rotate(rotator, alternating)
        time.sleep(1.5)  # past the caches' time limit: every worker meets the new secrets
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        elapsed = time.monotonic() - started

    print(
        f"\n{harness.name}: {totals['requests']} requests by {len(threads)} workers in {elapsed:.1f} s "
        f"across {2 * ROTATIONS_PER_STRATEGY} rotations: {totals['failed']} failed {dict(failures)}; "
        f"{totals['secrets_manager_calls']} Secrets Manager reads, {totals['refreshes']} refreshes"
    )
    assert totals["failed"] == 0, dict(failures)
    assert totals["requests"] > 100 * len(threads)
