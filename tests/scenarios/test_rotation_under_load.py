"""Application workers query continuously through the application kit while rotations
run back to back: not one request may fail.

Nothing here depends on the machine's speed: each rotation step starts only after every
worker has completed a request since the step before (so every worker is served in
every window of every rotation, however fast or slow it runs), and after the last
rotation each worker serves a fixed number of requests more, past its cache's time
limit. The loops are bounded by a deadline that only a hung worker reaches.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

from appkit.connections import RotationAwareConnection
from appkit.retrieval import PowertoolsFetcher, SecretCache
from common.settings import Settings
from devtools.embedded import local_secrets_manager
from devtools.service import STEPS, RotationService
from tests.conftest import new_password, unique
from tests.helpers import handler_for, local_client, store_secret

if TYPE_CHECKING:
    from tests.engines import Harness

ROTATIONS_PER_STRATEGY = 3
WORKERS_PER_SECRET = 4  # half reuse one session, half open one per request
CACHE_MAX_AGE = 1.0
REQUESTS_AFTER_ROTATIONS = 20  # per worker, once the rotations are over and caches expired
DEADLINE = 180.0  # seconds; reached only by a worker that hangs


class Progress:
    """Requests completed per worker, so that the rotation can wait for every worker."""

    def __init__(self, workers: int) -> None:
        self.counts = [0] * workers
        self._changed = threading.Condition()

    def served(self, worker: int) -> None:
        with self._changed:
            self.counts[worker] += 1
            self._changed.notify_all()

    def wait_for_every_worker(self, timeout: float = 60.0) -> None:
        """Return once every worker has completed one more request than now."""
        with self._changed:
            targets = [count + 1 for count in self.counts]
            served = self._changed.wait_for(
                lambda: all(c >= t for c, t in zip(self.counts, targets, strict=True)), timeout
            )
        assert served, f"a worker served no request within {timeout} s: {self.counts}"


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

        secret_ids = [secret_id for secret_id in (single, alternating) for _ in range(WORKERS_PER_SECRET)]
        progress = Progress(len(secret_ids))
        rotations_over = threading.Event()
        deadline = time.monotonic() + DEADLINE
        totals: Counter[str] = Counter()
        after_rotations: list[int] = [0] * len(secret_ids)
        failures: Counter[str] = Counter()
        lock = threading.Lock()

        def worker(index: int, secret_id: str, reuse: bool) -> None:
            # Each worker is one warm container: its own client, cache and session.
            fetcher = PowertoolsFetcher(local_client(endpoint))
            cache = SecretCache(fetcher, max_age=CACHE_MAX_AGE)
            database = RotationAwareConnection(
                harness.engine, secret_id, cache, settings=settings, reuse=reuse
            )
            database.prime()
            done = failed = 0
            while after_rotations[index] < REQUESTS_AFTER_ROTATIONS and time.monotonic() < deadline:
                over = rotations_over.is_set()
                try:
                    database.run(harness.probe)
                    done += 1
                except Exception as error:  # noqa: BLE001 - every failure counts, by type
                    failed += 1
                    with lock:
                        failures[f"{type(error).__name__}: {error}"] += 1
                if over:
                    after_rotations[index] += 1
                progress.served(index)
            database.close()
            with lock:
                totals["requests"] += done + failed
                totals["failed"] += failed
                totals["secrets_manager_calls"] += fetcher.calls
                totals["refreshes"] += database.refreshes

        threads = [
            threading.Thread(target=worker, args=(index, secret_id, index % 2 == 0), daemon=True)
            for index, secret_id in enumerate(secret_ids)
        ]
        for thread in threads:
            thread.start()
        rotator = handler_for(harness.engine, client, DB_CA_BUNDLE=harness.server.ca_file)
        started = time.monotonic()
        windows = 0
        try:
            for _ in range(ROTATIONS_PER_STRATEGY):
                for secret_id in (single, alternating):
                    # Before each step, and once after the last: every worker is served in
                    # every window, including setSecret..finishSecret of a single user.
                    service.rotate(rotator, secret_id, on_step=lambda _step: progress.wait_for_every_worker())
                    progress.wait_for_every_worker()
                    windows += len(STEPS) + 1
            time.sleep(CACHE_MAX_AGE * 1.5)  # past the caches' time limit: every worker meets the new secrets
        finally:
            rotations_over.set()
            for thread in threads:
                thread.join(timeout=DEADLINE)
        elapsed = time.monotonic() - started

    print(
        f"\n{harness.name}: {totals['requests']} requests by {len(threads)} workers in {elapsed:.1f} s "
        f"across {2 * ROTATIONS_PER_STRATEGY} rotations: {totals['failed']} failed {dict(failures)}; "
        f"{totals['secrets_manager_calls']} Secrets Manager reads, {totals['refreshes']} refreshes"
    )
    assert totals["failed"] == 0, dict(failures)
    assert not any(thread.is_alive() for thread in threads)
    assert after_rotations == [REQUESTS_AFTER_ROTATIONS] * len(threads)  # none stopped at the deadline
    assert min(progress.counts) >= windows + REQUESTS_AFTER_ROTATIONS  # served in every window
