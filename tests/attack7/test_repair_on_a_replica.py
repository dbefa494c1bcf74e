"""Attack round 7: the operator's ``repair`` (operator_tools/repair.py) on a secret whose
host is an RDS read replica (issue 11's topologies), a single user whose rotation stopped
after setSecret because the replica stopped applying (its SQL thread stopped: the very
reason such a rotation gets stuck). Real MariaDB primary and GTID replica, moto's RDS
naming them, the real handler answering the preflight."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from devtools.service import LambdaContext
from operator_tools.cli import main
from tests.helpers import labels, value
from tests.operator.world import World as OperatorWorld
from tests.rds.conftest import endpoints, rds
from tests.rds.test_mariadb_topologies import maria, maria_world, replica

if TYPE_CHECKING:
    from devtools.mariadb import MariaDBReplica
    from tests.rds.conftest import World

__all__ = ["endpoints", "maria", "maria_world", "rds", "replica"]

import pytest


def test_repair_of_a_stuck_rotation_on_a_stalled_replica_keeps_a_working_label(
    maria_world: World, replica: MariaDBReplica
) -> None:
    """Severity: high (the operator's repair tool locks the application out: every
    session with AWSCURRENT is refused as soon as the replica resumes; only the next
    rotation's search of unlabelled versions brings it back).

    Expected: repair sees that the writer refuses AWSCURRENT (a replica's answer is not
    the database's) and completes the rotation or refuses; either way, after the replica
    catches up, AWSCURRENT logs in on the replica and the writer.
    Actual: plan "discard", AWSPENDING removed; AWSCURRENT refused on both servers."""
    world = maria_world
    user = world.user_on(world.instance("mysql").reader)
    replica.catch_up()
    handler = world.handler(REPLICA_WAIT_SECONDS="1")
    request = world.service.start(user.arn)
    handler(request.event("createSecret"), LambdaContext())
    replica.bootstrap("STOP SLAVE SQL_THREAD;")
    try:
        handler(request.event("setSecret"), LambdaContext())  # the wait is cut: the change is made
        with pytest.raises(Exception):  # noqa: B017 - testSecret fails: the replica is behind
            handler(request.event("testSecret"), LambdaContext())
        assert not world.writer.can_login(user.name, user.password, user.dbname)
        # The rotation is stuck; the operator runs repair, as the README says to.
        operator = OperatorWorld(world.sm, world.service, handler)
        out = io.StringIO()
        code = main(["repair", user.arn, "--json", "--apply"], aws=operator.aws, out=out)
        shown: dict[str, Any] = json.loads(out.getvalue())
        assert code == 0 or shown.get("plan") == "refuse", shown.get("reason")
    finally:
        replica.bootstrap("START SLAVE SQL_THREAD;")
        replica.catch_up(timeout=40)
    found = labels(world.sm, user.arn)
    working = [
        label
        for label in ("AWSCURRENT", "AWSPENDING")
        if label in found
        and world.writer.can_login(user.name, value(world.sm, user.arn, label)["password"], user.dbname)
    ]
    current = value(world.sm, user.arn, "AWSCURRENT")
    on_writer = world.writer.can_login(user.name, current["password"], user.dbname)
    on_replica = replica.can_login(user.name, current["password"], user.dbname)
    assert on_writer and on_replica, (
        f"plan {shown.get('plan')!r} left AWSCURRENT refused (writer accepts: {on_writer}, replica "
        f"accepts: {on_replica}); labels that work: {working}"
    )


def test_the_preflight_of_a_single_user_on_a_replica_finds_no_problem(
    maria_world: World, replica: MariaDBReplica
) -> None:
    """Severity: low (a false alarm that tells the operator to change a working set-up
    the README lists as served).

    Expected: the capability is checked where the password changes (the writer) or not
    reported as missing. Actual: 'change its own password' held False."""
    world = maria_world
    user = world.user_on(world.instance("mysql").reader)
    replica.catch_up()
    handler = world.handler()
    world.service.rotate(handler, user.arn)  # the set-up is served: a rotation completes
    replica.catch_up()
    answer = handler({"Preflight": {"SecretId": user.arn}}, LambdaContext("rotation-function"))
    assert answer is not None
    missing = [c for c in answer.get("capabilities", []) if c.get("held") is False]
    assert missing == [], missing


def test_a_writable_read_replica_still_changes_the_password_on_the_writer(
    maria_world: World, replica: MariaDBReplica
) -> None:
    """Severity: medium (the same user on the writer keeps the old password: anything that
    reads the secret and connects to the writer, or a promoted replica's peers, is refused;
    the writer's next change of that account replicates over the replica's, and then
    AWSCURRENT is refused on the replica too).

    Expected: the replica is recognised as a replica (it replicates: SHOW SLAVE STATUS,
    @@gtid_slave_pos) and the password changes on the writer, as for a read-only one.
    Actual: the password changes on the replica; the writer refuses AWSCURRENT."""
    world = maria_world
    user = world.user_on(world.instance("mysql").reader)
    replica.catch_up()
    handler = world.handler(REPLICA_WAIT_SECONDS="5")
    replica.bootstrap("SET GLOBAL read_only = 0;")
    try:
        world.service.rotate(handler, user.arn)
    finally:
        replica.bootstrap("SET GLOBAL read_only = 1;")
    current = value(world.sm, user.arn, "AWSCURRENT")
    on_replica = replica.can_login(user.name, current["password"], user.dbname)
    on_writer = world.writer.can_login(user.name, current["password"], user.dbname)
    assert on_replica and on_writer, f"AWSCURRENT: replica accepts {on_replica}, writer accepts {on_writer}"
