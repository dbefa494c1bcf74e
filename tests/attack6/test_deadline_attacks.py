"""Attack round 6 (issue 11): step deadlines from the Lambda context, against the real
PostgreSQL throwaway."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from common.errors import ConfigurationError, StepTimeLimitError
from devtools.service import LambdaContext
from rotators.postgresql.engine import PostgresEngine
from tests.conftest import pg_secret
from tests.engines import PostgresHarness
from tests.helpers import handler_for, store_secret, value

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.postgres import PostgresServer
    from devtools.service import RotationService

TIME_OUT = 9  # the function's time-out in this test; the step's deadline is 3 s less
#: The blocked-statement test's time-out: a login (5 s) or a statement (9 s) fits in its
#: 9 s deadline, both together do not; 4 s to spare before the first login, so that a
#: loaded machine does not stop the step before the statement it is about.
BLOCKED_TIME_OUT = 12


def single_user(
    postgres: PostgresServer, sm_client: SecretsManagerClient, service: RotationService
) -> tuple[str, str, str, str]:
    """A new user with its single-user secret: (user, password, database, the secret's ARN)."""
    name, password, dbname = PostgresHarness(postgres).new_user()
    arn = store_secret(sm_client, service, name, pg_secret(postgres, name, password, dbname))
    return name, password, dbname, arn


def limited_handler(
    postgres: PostgresServer, sm_client: SecretsManagerClient, *, connect_timeout: str, statement_timeout: str
) -> RotationFunction[Any]:
    """The PostgreSQL function with these time limits and no replica wait."""
    return handler_for(
        PostgresEngine(),
        sm_client,
        DB_CA_BUNDLE=postgres.ca_file,
        DB_CONNECT_TIMEOUT=connect_timeout,
        DB_STATEMENT_TIMEOUT=statement_timeout,
        REPLICA_WAIT_SECONDS="0",
    )


def test_a_blocked_password_change_stops_before_the_steps_deadline(
    postgres: PostgresServer, sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """Every limit fits in the time-out on its own (DB_CONNECT_TIMEOUT 5 s, DB_STATEMENT_
    TIMEOUT 9 s, REPLICA_WAIT_SECONDS 0, function time-out 12 s, margin 3 s: the start-up
    check passes), but a login and a statement together do not. Another session holds
    the user's pg_authid row (an open ALTER ROLE), so setSecret's ALTER ROLE ... PASSWORD
    blocks.

    Expected: the step stops by its deadline (time-out less the margin, 9 s) with
    StepTimeLimitError naming what did not fit, keeping the margin to report. Actual (if
    broken): the statement runs to DB_STATEMENT_TIMEOUT whatever the step has left, and
    the step overruns its deadline into the margin (on Lambda, with more such statements,
    into the time-out: the invocation is killed without the named error)."""
    name, password, dbname, arn = single_user(postgres, sm_client, service)
    handler = limited_handler(postgres, sm_client, connect_timeout="5", statement_timeout="9")
    request = service.start(arn)
    handler(request.event("createSecret"), LambdaContext(timeout_s=BLOCKED_TIME_OUT))
    holder = postgres.admin_connection()
    try:
        holder.autocommit = False
        with holder.cursor() as cursor:
            cursor.execute(f'ALTER ROLE "{name}" CONNECTION LIMIT 50')  # row locked until rollback
        context = LambdaContext(timeout_s=BLOCKED_TIME_OUT)
        deadline_s = context.get_remaining_time_in_millis() / 1000 - 3
        started = time.monotonic()
        error: Exception | None = None
        try:
            handler(request.event("setSecret"), context)
        except Exception as raised:  # noqa: BLE001 - which error is what is judged
            error = raised
        took = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert value(sm_client, arn, "AWSCURRENT")["password"] == password
    assert error is not None, "setSecret succeeded although the user's row was locked throughout"
    pending = value(sm_client, arn, "AWSPENDING")
    harness = PostgresHarness(postgres)
    assert harness.can_login(name, password, dbname), "the stopped step left AWSCURRENT refused"
    assert not harness.can_login(name, pending["password"], dbname), "the blocked ALTER ROLE took effect"
    assert isinstance(error, StepTimeLimitError) or took <= deadline_s, (
        f"setSecret took {took:.1f} s against a {deadline_s:.1f} s deadline and raised {error!r}"
    )


def test_limits_the_start_up_check_accepts_let_a_step_log_in(
    postgres: PostgresServer, sm_client: SecretsManagerClient, service: RotationService
) -> None:
    """DB_CONNECT_TIMEOUT 6 s in a 9 s time-out: the start-up check accepts it (6 s plus
    the 3 s margin fit). Every login then requires DB_CONNECT_TIMEOUT to be left before
    the deadline (time-out less margin), which is 6 s less the milliseconds already spent.

    Expected: a configuration the start-up check accepts can run a step: createSecret
    succeeds here (or the start-up check refuses it with a ConfigurationError naming
    DB_CONNECT_TIMEOUT). Actual (if broken): every step stops with StepTimeLimitError
    ("Secrets Manager runs the step again"), which fails again on every retry: the
    rotation can never run and the error blames time, not the setting."""
    *_, arn = single_user(postgres, sm_client, service)
    handler = limited_handler(postgres, sm_client, connect_timeout="6", statement_timeout="5")
    request = service.start(arn)
    try:
        handler(request.event("createSecret"), LambdaContext(timeout_s=TIME_OUT))
    except StepTimeLimitError as error:
        raise AssertionError(f"a configuration the start-up check accepted cannot log in: {error}") from None
    except ConfigurationError as error:
        assert "DB_CONNECT_TIMEOUT" in str(error)
