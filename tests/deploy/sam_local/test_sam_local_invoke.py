"""Every function of the template run by SAM CLI's own ``sam local invoke``, in a
container of the Lambda Python image, against the suite's real servers.

Each rotation function answers the preflight event (``sam/events/preflight.json``), then
goes through the four steps with the ``sam/`` event files and
``sam/env.json`` (what SAM passes into the container: only the variables the template
declares), Secrets Manager being moto's server; the database judges the result, and
nothing SAM printed holds a password or the RotationToken.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from devtools.embedded import local_secrets_manager
from devtools.sam_local import emulated_function_arn
from devtools.service import STEPS, RotationService
from tests.deploy.template import ROOT, Function, functions, load
from tests.engines import Harness, MariaDBHarness, MongoHarness, PostgresHarness, RedshiftHarness
from tests.helpers import handler_for, labels, local_client, store_secret, value

if TYPE_CHECKING:
    from collections.abc import Callable

    from devtools.postgres import PostgresServer
    from devtools.sam_local import Invocation, SamLocalStack

# The first test also waits for the session's set-up: on a fresh machine the Lambda image
# is built (a minute or more on a busy 2-core machine) besides `sam build`.
pytestmark = pytest.mark.timeout(1200)

EXAMPLE_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:example-AbCdEf"
ALL_FUNCTIONS = functions(load(), {"ExampleSecretArn": EXAMPLE_SECRET})
ROTATION_FUNCTIONS = [f for f in ALL_FUNCTIONS if f.module.startswith("rotators.")]
EXAMPLE = next(f for f in ALL_FUNCTIONS if f.module.startswith("apps."))
#: rotators package -> (the fixture of its bridged server, its harness).
SERVERS: dict[str, tuple[str, Callable[[Any], Harness]]] = {
    "postgresql": ("sam_postgres", PostgresHarness),
    "mysql": ("sam_mariadb", MariaDBHarness),
    "mongodb": ("sam_mongo", MongoHarness),
    "redshift": ("sam_redshift", RedshiftHarness),
}
ENV_FILE = json.loads((ROOT / "sam" / "env.json").read_text())
PREFLIGHT = json.loads((ROOT / "sam" / "events" / "preflight.json").read_text())


def event(step: str, **ids: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((ROOT / "sam" / "events" / f"{step}.json").read_text())
    assert body["Step"] == step
    return {**body, **ids}


def env_vars(function: Function, **overrides: str) -> dict[str, str]:
    """sam/env.json's values for ``function`` (common, then its own), then ``overrides``."""
    return {**ENV_FILE.get("Parameters", {}), **ENV_FILE.get(function.logical_id, {}), **overrides}


def succeeded(invocation: Invocation) -> None:
    assert invocation.returncode == 0, invocation.logs[-3000:]
    response = invocation.response()
    assert not (isinstance(response, dict) and "errorType" in response), response


@pytest.mark.parametrize("function", ROTATION_FUNCTIONS, ids=lambda f: f.logical_id)
def test_sam_local_invoke_rotates(
    sam_local: SamLocalStack,
    function: Function,
    request: pytest.FixtureRequest,
) -> None:
    fixture, harness_class = SERVERS[function.module.split(".")[1]]
    harness = harness_class(request.getfixturevalue(fixture))
    # The server's CA in the function's build output: DB_CA_BUNDLE names it relative to it.
    ca_bundle = sam_local.place_ca_bundle(function.logical_id, harness.server.ca_file)
    # One engine logs at WARNING: the log level SAM passes in is the one the function uses.
    level = (
        "WARNING"
        if function.logical_id.startswith("Redshift")
        else ENV_FILE["Parameters"]["POWERTOOLS_LOG_LEVEL"]
    )
    with local_secrets_manager() as endpoint:
        client, service = local_client(endpoint), RotationService()
        user, password, dbname = harness.new_user()
        host, _ = sam_local.expose(harness.server.port)
        arn = store_secret(
            client, service, f"sam-local-{user}", {**harness.secret(user, password, dbname), "host": host}
        )
        # The preflight answers only for secrets whose rotation function is the one invoked.
        service.enable_rotation(arn, function_arn=emulated_function_arn(function.logical_id))
        variables = env_vars(function, DB_CA_BUNDLE=ca_bundle, POWERTOOLS_LOG_LEVEL=level)
        preflight = sam_local.invoke(
            function.logical_id,
            {"Preflight": {**PREFLIGHT["Preflight"], "SecretId": arn}},
            endpoint,
            variables,
        )
        succeeded(preflight)
        report = preflight.response()
        assert report["ok"], report
        assert [(login["labels"], login["outcome"]) for login in report["logins"]] == [
            (["AWSCURRENT"], "accepted")
        ]
        started = service.start(arn)
        printed, seconds = [preflight.output + preflight.logs], []
        for step in STEPS:
            invocation = sam_local.invoke(
                function.logical_id,
                event(
                    step, SecretId=arn, ClientRequestToken=started.token, RotationToken=started.rotation_token
                ),
                endpoint,
                variables,
            )
            succeeded(invocation)
            printed.append(invocation.output + invocation.logs)
            seconds.append(invocation.seconds)
        assert labels(client, arn)["AWSCURRENT"] == started.token
        assert "AWSPENDING" not in labels(client, arn)
        new = value(client, arn, "AWSCURRENT")
    assert harness.can_login(user, new["password"], dbname)
    assert not harness.can_login(user, password, dbname)
    output = "".join(printed)
    assert output.count("rotation step done") == (0 if level == "WARNING" else 4)
    for secret in (password, new["password"], started.rotation_token):
        assert secret not in output
    print(
        f"{function.logical_id}: " + ", ".join(f"{s} {t:.1f} s" for s, t in zip(STEPS, seconds, strict=True))
    )


def test_sam_local_invoke_example_application_across_a_rotation(
    sam_local: SamLocalStack,
    sam_postgres: PostgresServer,
) -> None:
    """The example reads its secret (its ARN a template parameter) and answers as the
    user; after a rotation the next container reads the new password and still does."""
    harness = PostgresHarness(sam_postgres)
    ca_bundle = sam_local.place_ca_bundle(EXAMPLE.logical_id, sam_postgres.ca_file)
    with local_secrets_manager() as endpoint:
        client, service = local_client(endpoint), RotationService()
        user, password, dbname = harness.new_user()
        host, _ = sam_local.expose(sam_postgres.port)
        arn = store_secret(
            client, service, f"sam-example-{user}", {**harness.secret(user, password, dbname), "host": host}
        )

        def invoke() -> Invocation:
            invocation = sam_local.invoke(
                EXAMPLE.logical_id,
                {},
                endpoint,
                env_vars(EXAMPLE, DB_CA_BUNDLE=ca_bundle),
                parameters={"ExampleSecretArn": arn},
            )
            succeeded(invocation)
            return invocation

        before = invoke()
        assert before.response()["user"] == user
        service.rotate(handler_for(harness.engine, client, DB_CA_BUNDLE=sam_postgres.ca_file), arn)
        after = invoke()
        assert after.response()["user"] == user
        new = value(client, arn, "AWSCURRENT")
    assert not harness.can_login(user, password, dbname)
    assert harness.can_login(user, new["password"], dbname)
    for secret in (password, new["password"]):
        assert secret not in before.output + before.logs + after.output + after.logs
    print(f"{EXAMPLE.logical_id}: {before.seconds:.1f} s, after the rotation {after.seconds:.1f} s")
