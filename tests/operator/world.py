"""A small AWS account on moto for the operator tools: a secret of the real throwaway
PostgreSQL, its rotation function (the real handler, invoked in process), the function's
role, permission and configuration; Stubbers where moto has no model (IAM policy
simulation, CloudTrail's LookupEvents)."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.stub import Stubber

from devtools.service import DEFAULT_ACCOUNT, STEPS, LambdaContext
from operator_tools.aws import Aws
from tests.conftest import REGION

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from common.handler import RotationFunction
    from devtools.service import RotationRequest, RotationService

FUNCTION = "rotation-function"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT}:function:{FUNCTION}"
ROTATION_ACTIONS = [
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:ListSecretVersionIds",
]
TEMPLATE_ENVIRONMENT = {
    "EXCLUDE_CHARACTERS": "/@\"'\\",
    "EXCLUDE_PUNCTUATION": "false",
    "PASSWORD_LENGTH": "32",
    "DB_CONNECT_TIMEOUT": "5",
    "POWERTOOLS_SERVICE_NAME": "secrets-rotation",
}


def code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")  # moto stores it; the handler runs in process
    return buffer.getvalue()


@dataclass
class World:
    """One test's account; ``aws`` is what the command is given.

    ``RotateSecret`` behaves as on AWS: it registers the pending version and returns, and
    the four steps run later, once ``rotation_takes_s`` of the tool's time has passed (the
    tool's ``sleep`` moves this world's clock; nothing really waits). With
    ``rotation_takes_s`` None the steps run before ``rotate`` returns."""

    sm: SecretsManagerClient
    service: RotationService
    handler: RotationFunction[Any]
    role_arn: str = ""
    iam: Any = None
    iam_stub: Stubber = field(init=False)
    aws: Aws = field(init=False)
    cloudtrail_stub: Stubber = field(init=False)
    invocations: list[dict[str, Any]] = field(default_factory=list)
    rotation_takes_s: float | None = 5.0
    clock_s: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    running: list[tuple[float, RotationRequest]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.role_arn = boto3.client("iam", region_name=REGION).create_role(
            RoleName="rotation-role", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        self.iam = boto3.client("iam", region_name=REGION)
        self.iam_stub = Stubber(self.iam)
        self.cloudtrail = boto3.client("cloudtrail", region_name=REGION)
        self.cloudtrail_stub = Stubber(self.cloudtrail)
        self.iam_stub.activate()
        self.cloudtrail_stub.activate()
        # Other clients are made on first use (an EC2 client alone takes ~0.4 s to build).
        self.aws = Aws(
            REGION,
            clients={"secretsmanager": self.sm, "iam": self.iam, "cloudtrail": self.cloudtrail},
            invoker=lambda function, event: self.invoke(function, event),  # noqa: PLW0108 - tests replace invoke
            rotate=self.rotate,
            sleep=self.sleep,
            clock=self.clock,
        )

    @property
    def lambda_(self) -> Any:
        return self.aws.client("lambda")

    @property
    def ec2(self) -> Any:
        return self.aws.client("ec2")

    @property
    def kms(self) -> Any:
        return self.aws.client("kms")

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        """Lambda's synchronous invocation of the real handler: JSON in, JSON out."""
        assert function.rsplit(":", maxsplit=1)[-1] == FUNCTION, function
        self.invocations.append(event)
        answer = self.handler(json.loads(json.dumps(event)), LambdaContext(FUNCTION))
        result: dict[str, Any] = json.loads(json.dumps(answer))
        return result

    def rotate(self, arn: str) -> str:
        """RotateSecret: Secrets Manager's side played by the suite's service emulation;
        the new version's id."""
        if self.rotation_takes_s is None:
            return self.service.rotate(self.handler, arn).token
        request = self.service.start(arn)
        self.running.append((self.clock_s + self.rotation_takes_s, request))
        return request.token

    def clock(self) -> float:
        return self.clock_s

    def sleep(self, seconds: float) -> None:
        """The tool's time passes; the rotations due by then run their steps."""
        self.sleeps.append(seconds)
        self.clock_s += seconds
        for due, request in list(self.running):
            if due <= self.clock_s:
                self.running.remove((due, request))
                for step in STEPS:
                    self.handler(request.event(step), LambdaContext(FUNCTION))

    def age(self, arn: str, version: str, seconds: float) -> None:
        """Make a version ``seconds`` older (its creation date, which ListSecretVersionIds
        answers under ``behave_like_aws``)."""
        from moto.secretsmanager.models import secretsmanager_backends

        stored: Any = secretsmanager_backends[DEFAULT_ACCOUNT][REGION].secrets[arn].versions[version]
        stored["createdate"] -= int(seconds)

    def deploy(self, *, handler: str = "rotators.postgresql.app.lambda_handler", **options: Any) -> str:
        """The function as the template makes it, with Secrets Manager's permission."""
        permission = options.pop("permission", {"SourceAccount": DEFAULT_ACCOUNT})
        configuration = {
            "FunctionName": FUNCTION,
            "Runtime": "python3.13",
            "Role": self.role_arn,
            "Handler": handler,
            "Code": {"ZipFile": code_zip()},
            "Timeout": 60,
            "Environment": {"Variables": dict(TEMPLATE_ENVIRONMENT)},
            **options,
        }
        arn: str = self.lambda_.create_function(**configuration)["FunctionArn"]
        if permission is not None:
            self.lambda_.add_permission(
                FunctionName=FUNCTION,
                StatementId="SecretsManager",
                Action="lambda:InvokeFunction",
                Principal="secretsmanager.amazonaws.com",
                **permission,
            )
        return arn

    def simulate(self, actions: list[str], resource: str, decision: str = "allowed", **expected: Any) -> None:
        """Queue IAM's answer to one SimulatePrincipalPolicy call, checking what is asked."""
        self.iam_stub.add_response(
            "simulate_principal_policy",
            {"EvaluationResults": [{"EvalActionName": a, "EvalDecision": decision} for a in actions]},
            {
                "PolicySourceArn": self.role_arn,
                "ActionNames": actions,
                "ResourceArns": [resource],
                **expected,
            },
        )

    def allow_rotation(self, arn: str, decision: str = "allowed") -> None:
        tags = [
            {
                "ContextKeyName": "secretsmanager:ResourceTag/RotatedBy",
                "ContextKeyValues": ["secrets-rotation"],
                "ContextKeyType": "string",
            }
        ]
        self.simulate(ROTATION_ACTIONS, arn, decision, ContextEntries=tags)
