"""Session fixtures for ``sam local invoke`` tests: the stack (Docker daemon, Lambda image,
the session's ``sam build``) and servers whose certificates name the bridge's address.

Where no Docker daemon can run or no Python 3.13 can be had, the tests skip with the
reason; under CI (``CI`` set) that is a failure instead: CI sets everything up.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pytest

from devtools.docker_daemon import DaemonUnavailable
from devtools.lambda_image import ImageUnavailable
from devtools.mariadb import MariaDBServer
from devtools.mongo_peer import MongoPeer, MongoServer
from devtools.mongod import MongodServer, find_mongod
from devtools.postgres import PostgresServer
from devtools.redshift import RedshiftStandIn
from devtools.sam_local import SamLocalStack

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class Startable(Protocol):
    certificate_hosts: list[str]
    port: int

    def start(self) -> Any: ...


Server = TypeVar("Server", bound=Startable)


@pytest.fixture(scope="session")
def sam_local(built: Path) -> Iterator[SamLocalStack]:
    stack = SamLocalStack(built)
    try:
        stack.start()
    except (DaemonUnavailable, ImageUnavailable) as reason:
        if os.environ.get("CI"):
            pytest.fail(f"sam local invoke cannot run in CI: {reason}")
        pytest.skip(str(reason))
    print(", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in stack.timings.items()))
    try:
        yield stack
    finally:
        stack.stop()


def bridged(server: Server, stack: SamLocalStack) -> Server:
    """``server`` started with a certificate that also names the bridge's address, and
    reachable from containers there."""
    server.certificate_hosts.append(stack.bridge_address)
    server.start()
    stack.expose(server.port)
    return server


@pytest.fixture(scope="session")
def sam_postgres(sam_local: SamLocalStack) -> Iterator[PostgresServer]:
    server = bridged(PostgresServer(), sam_local)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sam_mariadb(sam_local: SamLocalStack) -> Iterator[MariaDBServer]:
    server = bridged(MariaDBServer(), sam_local)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sam_mongo(sam_local: SamLocalStack) -> Iterator[MongoServer]:
    server = bridged(MongodServer() if find_mongod() else MongoPeer(), sam_local)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sam_redshift(sam_local: SamLocalStack) -> Iterator[RedshiftStandIn]:
    server = bridged(RedshiftStandIn(), sam_local)
    yield server
    server.stop()
