"""``secrets-rotation doctor``: every check in its passing and failing form.

moto holds the account (Secrets Manager, Lambda's configuration and policy, EC2
endpoints, KMS); IAM's policy simulation is a Stubber that also checks what is asked;
the preflight is the real handler against the real throwaway PostgreSQL."""

from __future__ import annotations

import io
import json
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from common.handler import RotationFunction
from devtools.rds_endpoints import EndpointMap, instance_address, managed_cluster, managed_instance
from devtools.service import DEFAULT_ACCOUNT
from operator_tools.aws import Aws, ToolError
from operator_tools.cli import main
from rotators.postgresql.engine import PostgresEngine
from tests.conftest import REGION, new_password, pg_secret, unique
from tests.engines import PostgresHarness
from tests.helpers import handler_for, store_secret
from tests.operator.world import FUNCTION_ARN, TEMPLATE_ENVIRONMENT, World

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from devtools.postgres import PostgresServer
    from devtools.service import RotationService

CHECKS = [
    "secret",
    "rotation",
    "labels",
    "function",
    "invoke permission",
    "time-out",
    "network",
    "role permissions",
    "kms key",
    "environment",
]


@pytest.fixture
def world(sm_client: SecretsManagerClient, service: RotationService, postgres: PostgresServer) -> World:
    return World(sm_client, service, handler_for(PostgresEngine(), sm_client, DB_CA_BUNDLE=postgres.ca_file))


@pytest.fixture
def user(postgres: PostgresServer) -> tuple[str, str, str]:
    return PostgresHarness(postgres).new_user()


def make_secret(
    world: World, postgres: PostgresServer, user: tuple[str, str, str], *, rotation: bool = True, **extra: Any
) -> str:
    name, password, dbname = user
    body = pg_secret(postgres, name, password, dbname, **extra)
    options: dict[str, Any] = {}
    if "kms_key" in extra:
        options["KmsKeyId"] = body.pop("kms_key")
    arn = world.sm.create_secret(
        Name=unique("secret"),
        SecretString=json.dumps(body),
        Tags=[{"Key": "RotatedBy", "Value": "secrets-rotation"}],
        **options,
    )["ARN"]
    if rotation:
        world.service.enable_rotation(arn)
    return arn


@pytest.fixture
def secret(world: World, postgres: PostgresServer, user: tuple[str, str, str]) -> str:
    return make_secret(world, postgres, user)


def doctor(world: World, secret: str) -> tuple[int, dict[str, dict[str, str]]]:
    out = io.StringIO()
    code = main(["doctor", secret, "--json"], aws=world.aws, out=out)
    world.iam_stub.assert_no_pending_responses()
    document = json.loads(out.getvalue())
    assert document["ok"] is (code == 0)
    return code, {check["check"]: check for check in document["checks"]}


def statuses(checks: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


def only_failure(checks: dict[str, dict[str, str]], name: str) -> dict[str, str]:
    failing = [check for check in checks.values() if check["status"] == "fail"]
    assert [check["check"] for check in failing] == [name], failing
    assert failing[0]["fix"], failing[0]
    return failing[0]


# -- all well ---------------------------------------------------------------------------


def test_a_healthy_secret_passes_every_check(world: World, secret: str, user: tuple[str, str, str]) -> None:
    world.deploy()
    world.allow_rotation(secret)
    out = io.StringIO()
    code = main(["doctor", secret], aws=world.aws, out=out)
    text = out.getvalue()
    assert code == 0, text
    for name in CHECKS:
        assert any(line.startswith(f"✔ {name} ") for line in text.splitlines()), (name, text)
    assert "✘" not in text and "all checks passed" in text
    assert "✔ preflight: database login" in text and "✔ preflight: change its own password" in text
    assert user[1] not in text
    assert world.invocations == [{"Preflight": {"SecretId": secret}}]


# -- the secret ---------------------------------------------------------------------------


def test_a_missing_secret(world: World) -> None:
    code, checks = doctor(world, "no-such-secret")
    assert code == 1
    assert "no secret 'no-such-secret'" in only_failure(checks, "secret")["reason"]
    assert {s for name, s in statuses(checks).items() if name != "secret"} == {"skipped"}


def test_a_secret_the_caller_may_not_read(world: World, secret: str) -> None:
    described: dict[str, Any] = dict(world.sm.describe_secret(SecretId=secret))
    described.pop("ResponseMetadata")
    denied = boto3.client("secretsmanager", region_name=REGION)
    stub = Stubber(denied)
    stub.add_response("describe_secret", described, {"SecretId": secret})
    stub.add_client_error("get_secret_value", "AccessDeniedException", http_status_code=400)
    stub.activate()
    world.aws = Aws(REGION, clients={"secretsmanager": denied, "iam": world.iam}, invoker=world.invoke)
    world.deploy()
    world.allow_rotation(secret)
    code, checks = doctor(world, secret)
    assert code == 1
    assert "may not read its value (AccessDeniedException)" in only_failure(checks, "secret")["reason"]


def test_rotation_not_enabled(world: World, postgres: PostgresServer, user: tuple[str, str, str]) -> None:
    arn = make_secret(world, postgres, user, rotation=False)
    code, checks = doctor(world, arn)
    assert code == 1
    assert only_failure(checks, "rotation")["reason"] == "rotation is not enabled and no function is set"


def test_an_overdue_rotation(world: World, secret: str) -> None:
    from moto.secretsmanager.models import secretsmanager_backends

    secrets: Any = secretsmanager_backends[DEFAULT_ACCOUNT][REGION].secrets
    secrets[secret].next_rotation_date = int(time.time()) - 3 * 86400
    world.deploy()
    world.allow_rotation(secret)
    code, checks = doctor(world, secret)
    assert code == 1
    assert only_failure(checks, "rotation")["reason"].startswith("overdue: enabled, every 30 days")


def test_a_stuck_rotation(world: World, secret: str) -> None:
    world.deploy()
    world.allow_rotation(secret)
    request = world.service.start(secret)
    world.handler(request.event("createSecret"), None)
    world.age(secret, request.token, 10 * 60)  # past the window: 4 steps at 60 s, and 5 min
    code, checks = doctor(world, secret)
    assert code == 1
    labels = only_failure(checks, "labels")
    assert f"version {request.token} is labelled AWSPENDING since 20" in labels["reason"]
    assert labels["reason"].startswith("a rotation is stuck")
    assert labels["fix"] == f"secrets-rotation repair {secret}"
    assert "AWSPENDING refused" in checks["preflight: logins"]["reason"]


def test_a_rotation_in_progress_is_not_stuck(world: World, secret: str) -> None:
    world.deploy()
    world.allow_rotation(secret)
    request = world.service.start(secret)
    world.handler(request.event("createSecret"), None)
    world.age(secret, request.token, 8 * 60)
    code, checks = doctor(world, secret)
    assert code == 0, checks
    assert checks["labels"]["status"] == "info"
    assert checks["labels"]["reason"].startswith(
        f"a rotation is in progress: version {request.token} is labelled AWSPENDING since 20"
    )
    assert "within the 9 min a rotation may take" in checks["labels"]["reason"]


# -- the function -------------------------------------------------------------------------


def test_a_function_that_does_not_exist(world: World, secret: str) -> None:
    code, checks = doctor(world, secret)
    assert code == 1
    assert only_failure(checks, "function")["reason"] == f"{FUNCTION_ARN} does not exist"


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("lambda_function.lambda_handler", "runs 'lambda_function.lambda_handler', not one of this suite's"),
        (
            "rotators.mysql.app.lambda_handler",
            "serves aurora-mysql, mariadb, mysql; the secret's engine is 'postgres'",
        ),
    ],
)
def test_a_function_that_is_not_the_suites_for_this_engine(
    world: World, secret: str, handler: str, expected: str
) -> None:
    world.deploy(handler=handler)
    world.allow_rotation(secret)
    code, checks = doctor(world, secret)
    assert code == 1
    assert expected in checks["function"]["reason"]
    assert checks["function"]["status"] == "fail"


@pytest.mark.parametrize(
    ("permission", "expected"),
    [
        (None, "no resource policy"),
        ({}, "without an aws:SourceAccount condition"),
        ({"SourceAccount": "210987654321"}, "without an aws:SourceAccount condition"),
    ],
)
def test_secrets_manager_may_not_invoke_the_function(
    world: World, secret: str, permission: dict[str, str] | None, expected: str
) -> None:
    world.deploy(permission=permission)
    world.allow_rotation(secret)
    code, checks = doctor(world, secret)
    assert code == 1
    failure = only_failure(checks, "invoke permission")
    assert expected in failure["reason"]
    assert f"--source-account {DEFAULT_ACCOUNT}" in failure["fix"]


def test_a_time_out_too_short_for_a_step(world: World, secret: str) -> None:
    world.deploy(Timeout=20)
    world.allow_rotation(secret)
    code, checks = doctor(world, secret)
    assert code == 1
    failure = only_failure(checks, "time-out")
    assert failure["reason"].startswith("20 s; a step may need 55 s")
    assert failure["fix"] == "set the function's Timeout to at least 55 s"


def vpc_function(world: World, *, private_dns: bool | None) -> str:
    vpc = world.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = world.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    if private_dns is not None:
        world.ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=f"com.amazonaws.{REGION}.secretsmanager",
            VpcEndpointType="Interface",
            SubnetIds=[subnet],
            PrivateDnsEnabled=private_dns,
        )
    world.deploy(VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": []})
    return str(vpc)


def test_in_a_vpc_with_an_endpoint_for_secrets_manager(world: World, secret: str) -> None:
    vpc = vpc_function(world, private_dns=True)
    world.allow_rotation(secret)
    code, checks = doctor(world, secret)
    assert code == 0
    assert checks["network"]["status"] == "pass"
    assert checks["network"]["reason"].startswith(f"in {vpc}: interface endpoint vpce-")


def test_in_a_vpc_with_an_endpoint_without_private_dns(world: World, secret: str) -> None:
    vpc_function(world, private_dns=False)
    world.allow_rotation(secret)
    code, checks = doctor(world, secret)
    assert code == 1
    failure = only_failure(checks, "network")
    assert "private DNS off" in failure["reason"] and "--private-dns-enabled" in failure["fix"]


def test_in_a_vpc_without_an_endpoint_says_what_it_could_not_verify(world: World, secret: str) -> None:
    vpc_function(world, private_dns=None)
    world.allow_rotation(secret)
    code, checks = doctor(world, secret)
    assert code == 0  # not a failure: a NAT route may exist
    assert checks["network"]["status"] == "unknown"
    assert "NAT gateway could not be verified" in checks["network"]["reason"]


# -- permissions and keys ---------------------------------------------------------------


def test_a_role_that_may_not_rotate_the_secret(world: World, secret: str) -> None:
    world.deploy()
    world.allow_rotation(secret, decision="implicitDeny")
    code, checks = doctor(world, secret)
    assert code == 1
    failure = only_failure(checks, "role permissions")
    assert failure["reason"].startswith("role rotation-role may not: secretsmanager:DescribeSecret")


@pytest.mark.parametrize("decision", ["allowed", "implicitDeny"])
def test_the_role_and_the_master_secret(
    world: World, postgres: PostgresServer, user: tuple[str, str, str], decision: str
) -> None:
    master_user, master_password = unique("admin"), new_password()
    postgres.create_master(master_user, master_password)
    master = store_secret(
        world.sm,
        world.service,
        master_user,
        pg_secret(postgres, master_user, master_password, "postgres"),
        rotation=False,
    )
    arn = make_secret(world, postgres, user, masterarn=master)
    world.deploy()
    world.allow_rotation(arn)
    world.simulate(["secretsmanager:GetSecretValue"], master, decision, ContextEntries=[])
    code, checks = doctor(world, arn)
    if decision == "allowed":
        assert code == 0, checks
        assert checks["role permissions"]["reason"].endswith("and read the master secret")
        assert checks["preflight: create and alter roles (CREATEROLE)"]["status"] == "pass"
    else:
        assert (
            "secretsmanager:GetSecretValue on the master secret"
            in only_failure(checks, "role permissions")["reason"]
        )


RDS_ACTIONS = ["rds:DescribeDBInstances", "rds:DescribeDBClusters"]


@pytest.mark.parametrize("decision", ["allowed", "implicitDeny"])
def test_the_role_and_an_rds_managed_master_secret(
    world: World, postgres: PostgresServer, user: tuple[str, str, str], decision: str
) -> None:
    """An RDS-managed master: the function reads its tags (DescribeSecret) and asks RDS."""
    database = managed_instance(boto3.client("rds", region_name=REGION), world.sm, EndpointMap(), (1, 2))
    arn = make_secret(world, postgres, user, masterarn=database.master_arn)
    world.deploy()
    world.allow_rotation(arn)
    master_actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    world.simulate(master_actions, database.master_arn, decision, ContextEntries=[])
    world.simulate(RDS_ACTIONS, "*", decision, ContextEntries=[])
    _, checks = doctor(world, arn)
    role = checks["role permissions"]
    if decision == "allowed":
        assert role["status"] == "pass", role
        assert role["reason"].endswith("and read the master secret and describe RDS databases")
    else:
        reason = role["reason"]  # the preflight's master check fails too: another host
        assert role["status"] == "fail"
        assert "secretsmanager:DescribeSecret on the master secret" in reason
        assert "rds:DescribeDBClusters (the master secret is RDS-managed)" in reason
        assert "rds:DescribeDBInstances" in reason and "RdsLookups" in role["fix"]


@pytest.mark.parametrize(
    ("where", "need"),
    [
        ("replica", "the secret's host is a read replica"),
        ("cluster reader instance", "the secret's host is a cluster's reader instance"),
        ("cluster reader endpoint", "the secret's host is a cluster's reader endpoint"),
        ("key", "the secret names its RDS database (dbInstanceIdentifier)"),
        ("writer instance", None),
        ("cluster writer instance", None),
    ],
)
def test_the_role_and_a_secret_on_a_reader(
    world: World, postgres: PostgresServer, user: tuple[str, str, str], where: str, need: str | None
) -> None:
    """RDS is asked about a reader's database (its writer, the wait on it) only: the RDS
    actions are checked then, and not for a writer."""
    rds = boto3.client("rds", region_name=REGION)
    instance = managed_instance(rds, world.sm, EndpointMap(), (1, 2))
    cluster = managed_cluster(rds, world.sm, EndpointMap(), (1, 2))
    host: dict[str, Any] = {
        "replica": {"host": instance.reader},
        "cluster reader instance": {"host": instance_address(f"{cluster.identifier}-b")},
        "cluster reader endpoint": {"host": cluster.reader},
        "key": {"dbInstanceIdentifier": instance.identifier},
        "writer instance": {"host": instance.writer},
        "cluster writer instance": {"host": instance_address(f"{cluster.identifier}-a")},
    }[where]
    arn = make_secret(world, postgres, user, **host)
    world.deploy()
    world.allow_rotation(arn)
    if need is not None:
        world.simulate(RDS_ACTIONS, "*", "implicitDeny", ContextEntries=[])
    _, checks = doctor(world, arn)
    role = checks["role permissions"]
    if need is None:
        assert role["status"] == "pass" and "RDS" not in role["reason"], role
    else:
        assert role["status"] == "fail" and f"rds:DescribeDBInstances ({need})" in role["reason"]


def customer_key(world: World, policy: dict[str, Any] | None = None, enabled: bool = True) -> str:
    key = world.kms.create_key()["KeyMetadata"]
    if policy is not None:
        world.kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    if not enabled:
        world.kms.disable_key(KeyId=key["KeyId"])
    return str(key["Arn"])


def kms_simulation(world: World, key: str, decision: str) -> None:
    via = [
        {
            "ContextKeyName": "kms:ViaService",
            "ContextKeyValues": [f"secretsmanager.{REGION}.amazonaws.com"],
            "ContextKeyType": "string",
        }
    ]
    world.simulate(["kms:Decrypt"], key, decision, ContextEntries=via)


@pytest.mark.parametrize("decision", ["allowed", "implicitDeny"])
def test_a_customer_key_trusting_the_accounts_iam(
    world: World, postgres: PostgresServer, user: tuple[str, str, str], decision: str
) -> None:
    key = customer_key(world)
    arn = make_secret(world, postgres, user, kms_key=key)
    world.deploy()
    world.allow_rotation(arn)
    kms_simulation(world, key, decision)
    code, checks = doctor(world, arn)
    if decision == "allowed":
        assert code == 0
        assert checks["kms key"]["reason"].startswith("the key trusts the account's IAM")
    else:
        assert "has no IAM permission to kms:Decrypt" in only_failure(checks, "kms key")["reason"]


def test_a_customer_key_whose_policy_lets_nobody_in(
    world: World, postgres: PostgresServer, user: tuple[str, str, str]
) -> None:
    other = f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/someone-else"
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": other}, "Action": "kms:*", "Resource": "*"}],
    }
    key = customer_key(world, policy)
    arn = make_secret(world, postgres, user, kms_key=key)
    world.deploy()
    world.allow_rotation(arn)
    kms_simulation(world, key, "allowed")
    code, checks = doctor(world, arn)
    assert code == 1
    assert (
        "lets neither role rotation-role nor the account's IAM" in only_failure(checks, "kms key")["reason"]
    )


def test_a_disabled_customer_key(world: World, postgres: PostgresServer, user: tuple[str, str, str]) -> None:
    key = customer_key(world, enabled=False)
    arn = make_secret(world, postgres, user, kms_key=key)
    world.deploy()
    world.allow_rotation(arn)
    code, checks = doctor(world, arn)
    assert code == 1
    assert checks["kms key"]["status"] == "fail"
    assert checks["kms key"]["reason"].endswith("is Disabled")


# -- the environment and the preflight --------------------------------------------------


@pytest.mark.parametrize("variable", ["DB_PASSWORD", "API_TOKEN"])
def test_secrets_in_the_functions_environment(
    world: World, secret: str, user: tuple[str, str, str], variable: str
) -> None:
    value = user[1] if variable == "DB_PASSWORD" else "not-in-the-secret"
    world.deploy(Environment={"Variables": {**TEMPLATE_ENVIRONMENT, variable: value}})
    world.allow_rotation(secret)
    out = io.StringIO()
    code = main(["doctor", secret], aws=world.aws, out=out)
    assert code == 1
    line = next(line for line in out.getvalue().splitlines() if line.startswith("✘ environment"))
    expected = "holds the secret's password" if variable == "DB_PASSWORD" else "looks like a secret"
    assert variable in line and expected in line
    assert user[1] not in out.getvalue()


def test_a_preflight_that_finds_the_password_refused(
    world: World, secret: str, user: tuple[str, str, str], postgres: PostgresServer
) -> None:
    PostgresHarness(postgres).set_password(user[0], new_password(), user[2])
    world.deploy()
    world.allow_rotation(secret)
    code, checks = doctor(world, secret)
    assert code == 1
    failure = only_failure(checks, "preflight: database login")
    assert "accepts none of the labelled versions' credentials" in failure["reason"]
    assert checks["preflight: logins"]["reason"] == "AWSCURRENT refused"


def test_a_function_that_fails_to_answer(world: World, secret: str) -> None:
    world.deploy()
    world.allow_rotation(secret)

    def broken(function: str, event: dict[str, Any]) -> dict[str, Any]:
        raise ToolError("the function failed: Runtime.ImportModuleError: No module named 'rotators'")

    world.invoke = broken  # type: ignore[method-assign]
    code, checks = doctor(world, secret)
    assert code == 1
    assert "Runtime.ImportModuleError" in only_failure(checks, "preflight")["reason"]


def test_lambda_answers_are_read_as_lambda_gives_them() -> None:
    client = boto3.client("lambda", region_name=REGION)
    stub = Stubber(client)

    def payload(document: object) -> StreamingBody:
        data = json.dumps(document).encode()
        return StreamingBody(io.BytesIO(data), len(data))

    event = {"Preflight": {"SecretId": "s"}}
    expected = {
        "FunctionName": FUNCTION_ARN,
        "InvocationType": "RequestResponse",
        "Payload": json.dumps(event).encode(),
    }
    stub.add_response("invoke", {"StatusCode": 200, "Payload": payload({"ok": True})}, expected)
    stub.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": payload({"errorType": "DatabaseLoginError", "errorMessage": "refused"}),
        },
        expected,
    )
    stub.add_response("invoke", {"StatusCode": 200, "Payload": payload(None)}, expected)
    stub.activate()
    aws = Aws(REGION, clients={"lambda": client})
    assert aws.invoke(FUNCTION_ARN, event) == {"ok": True}
    with pytest.raises(ToolError, match="the function failed: DatabaseLoginError: refused"):
        aws.invoke(FUNCTION_ARN, event)
    with pytest.raises(ToolError, match="answered no report"):
        aws.invoke(FUNCTION_ARN, event)


def test_the_preflight_key_is_the_functions() -> None:
    from common.rotation import PREFLIGHT_KEY
    from operator_tools.aws import PREFLIGHT_KEY as CLIENT_KEY

    assert CLIENT_KEY == PREFLIGHT_KEY
    assert isinstance(RotationFunction, type)
