"""A fleet: single-user and alternating secrets (one shared master) rotated at once, each
rotation in a process of its own, against one PostgreSQL and one MariaDB. The benchmark
(``python -m devtools.fleet``) runs 50 and prints the timings; this keeps CI's size."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from devtools.embedded import Embedded, function_environment, local_secrets_manager
from devtools.fleet import logs_in_as_own_user, make_fleet, run_fleet
from devtools.service import RotationService
from tests.conftest import unique
from tests.helpers import local_client

if TYPE_CHECKING:
    from devtools.mariadb import MariaDBServer
    from devtools.postgres import PostgresServer

SINGLE = ALTERNATING = 10


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_a_fleet_rotates_at_once_without_a_refused_login(engine: str, request: pytest.FixtureRequest) -> None:
    server: PostgresServer | MariaDBServer = request.getfixturevalue(
        "postgres" if engine == "postgresql" else "mariadb"
    )
    with local_secrets_manager() as endpoint:
        env = Embedded(
            server,
            "",
            endpoint,
            local_client(endpoint),
            RotationService(),
            function_environment(endpoint, server.ca_file),
        )
        members = make_fleet(env, SINGLE, ALTERNATING, prefix=unique("fleet"))
        before = {member.arn: env.current(member.arn)["password"] for member in members}
        # As many containers as rotations: every rotation has a process of its own.
        result = run_fleet(env, engine, members, concurrency=len(members))
        assert result.failures == []
        assert len(result.rotation_ms) == SINGLE + ALTERNATING
        assert result.refused_logins == 0
        for member in members:
            assert env.current(member.arn)["password"] != before[member.arn]
            assert logs_in_as_own_user(env, member), member
        # These two check the harness, not the function: each rotation ran in a process of
        # its own, and all were counted in flight before any started (they start together
        # at a barrier). How many sessions the server held at once is timing, a figure of
        # the benchmark.
        assert len(result.processes) == len(members)
        assert result.peak_in_flight == len(members)
        assert len(result.cpu_ms) == len(members) and all(cpu > 0 for cpu in result.cpu_ms)
