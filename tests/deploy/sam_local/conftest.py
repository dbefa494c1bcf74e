"""Fixtures for ``sam local invoke`` tests: the stack (Docker daemon, Lambda image, the
session's ``sam build``) and servers whose certificates name the bridge's address; all
of one module's, so that the daemon and servers are gone once its tests are done.

Where no Docker daemon can run or no Python 3.13 can be had, the tests skip with the
reason; under CI (``CI`` set) that is a failure instead: CI sets everything up.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from devtools.docker_daemon import DaemonUnavailable
from devtools.lambda_image import ImageUnavailable
from devtools.mariadb import MariaDBServer
from devtools.mongo_peer import MongoPeer
from devtools.mongod import MongodServer, find_mongod
from devtools.postgres import PostgresServer
from devtools.redis_server import RedisServer
from devtools.redshift import RedshiftStandIn
from devtools.sam_local import SamLocalStack, invoke_architecture

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from devtools.throwaway import ThrowawayServer


@pytest.fixture(scope="module")
def sam_local(request: pytest.FixtureRequest) -> Iterator[SamLocalStack]:
    # The architecture as invoke_architecture decides it (a bad LAMBDA_ARCHITECTURE is an
    # error, not a skip); the session's build for it.
    try:
        architecture = invoke_architecture()
        built: Path = request.getfixturevalue("built" if architecture == "x86_64" else "built_arm64")
        stack = SamLocalStack(built, architecture=architecture).start()
    except (DaemonUnavailable, ImageUnavailable) as reason:
        if os.environ.get("CI"):
            pytest.fail(f"sam local invoke cannot run in CI: {reason}")
        pytest.skip(str(reason))
    print(", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in stack.timings.items()))
    try:
        yield stack
    finally:
        stack.stop()


def _bridged(make: Callable[[], ThrowawayServer]) -> Any:
    """A fixture: the server ``make`` returns, started by ``sam_local`` (its
    certificate names the bridge's address, containers reach it there)."""

    @pytest.fixture(scope="module")
    def server(sam_local: SamLocalStack) -> Iterator[ThrowawayServer]:
        started = sam_local.start_server(make())
        yield started
        started.stop()

    return server


sam_postgres = _bridged(PostgresServer)
sam_mariadb = _bridged(MariaDBServer)
sam_mongo = _bridged(lambda: MongodServer() if find_mongod() else MongoPeer())
sam_redshift = _bridged(RedshiftStandIn)
sam_redis = _bridged(RedisServer)
